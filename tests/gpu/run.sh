#!/usr/bin/env bash
# The GPU checks of the CUDA backend, in one script that runs in a few minutes on the lent GPU machine
# (one H200; Ubuntu 24.04, CUDA 13.0 driver, no gRPC).
#
# 1. Here (the development machine, no GPU), build and pack what the GPU machine needs:
#
#      bash tests/gpu/run.sh --prepare          # BUILD_DIR=build-gpu by default; -DTANDEM_WITH_CUDA=ON
#
#    It builds tandem, the gpu-labelled tests, cluster_process_test and gpu_bench; strips them into
#    .gpu/bundle/bin; copies the shared libraries they need that the GPU machine lacks
#    (../shared/tools/gpu-carry.sh) into .gpu/bundle/lib; adds stories260K from ../shared/testdata;
#    and packs everything as .gpu/bundle.tar.xz (git-ignored).
#
# 2. On the GPU machine, through the device tool, from the repository root:
#
#      run(command="bash tests/gpu/run.sh", carry=[".gpu/bundle.tar.xz"], timeout_s=420)
#
#    It unpacks the bundle and runs, each step with its own time limit:
#      conformance   every CUDA op vs the CPU reference in f32/bf16/f16 (table of worst errors)
#      model         whole models vs the CPU backend: greedy ids, logits, graphs, chunking, sampling, KV
#      stories260K   llama2.c's greedy output reproduced on the GPU (when `tandem convert` exists)
#      memcheck      compute-sanitizer on one conformance run and one short generation: 0 errors
#      cluster       32 concurrent requests through real prefill and decode processes on the GPU equal
#                    `tandem run --backend cuda`, every KV block freed; and a `tandem up` smoke run
#      bench         gpu_bench: decode and prefill beside same-run floors (bench/gpu.md's table)
#    and prints a summary table last. Logs and results go to $OUT (the device tool brings them back) or
#    .gpu/out. `bash tests/gpu/run.sh STEP...` runs only the named steps.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

if [[ ${1:-} == --prepare ]]; then
  set -e
  build=${BUILD_DIR:-build-gpu}
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTANDEM_WITH_CUDA=ON \
    -DTANDEM_BUILD_TESTS=ON -DTANDEM_BUILD_BENCH=ON >/dev/null
  cmake --build "$build" -j "$(nproc)" --target tandem cuda_conformance_test cuda_model_test \
    backend_registry_test cluster_process_test colocated_cluster_test gpu_bench
  rm -rf .gpu/bundle .gpu/bundle.tar.xz
  mkdir -p .gpu/bundle/bin .gpu/bundle/testdata
  bins=("$build/cli/tandem" "$build/tests/cuda_conformance_test" "$build/tests/cuda_model_test"
        "$build/backend/backend_registry_test" "$build/tests/cluster_process_test"
        "$build/tests/colocated_cluster_test" "$build/bench/gpu_bench")
  for b in "${bins[@]}"; do strip -o ".gpu/bundle/bin/$(basename "$b")" "$b"; done
  bash ../shared/tools/gpu-carry.sh .gpu/bundle/lib "${bins[@]}" >/dev/null
  rm -f .gpu/bundle/lib.tar.xz
  if [[ -d ../shared/testdata/models/stories260K ]]; then
    cp -r ../shared/testdata/models/stories260K .gpu/bundle/testdata/
  fi
  tar -cJf .gpu/bundle.tar.xz -C .gpu bundle
  grep -qx '/.gpu/' .gitignore || echo "warning: add /.gpu/ to .gitignore" >&2
  echo "packed .gpu/bundle.tar.xz ($(du -h .gpu/bundle.tar.xz | cut -f1)); on the GPU machine:"
  echo '  run(command="bash tests/gpu/run.sh", carry=[".gpu/bundle.tar.xz"], timeout_s=420)'
  exit 0
fi

out=${OUT:-$root/.gpu/out}
mkdir -p "$out"
if [[ -f .gpu/bundle.tar.xz && ! -d .gpu/bundle/bin ]]; then tar -xJf .gpu/bundle.tar.xz -C .gpu; fi
bin=$root/.gpu/bundle/bin
if [[ ! -x $bin/tandem ]]; then
  echo "tests/gpu/run.sh: no bundle: run 'bash tests/gpu/run.sh --prepare' on the build machine first" >&2
  exit 2
fi
export LD_LIBRARY_PATH=$root/.gpu/bundle/lib:${LD_LIBRARY_PATH:-}
export TANDEM_BINARY=$bin/tandem
export TANDEM_REQUIRE_GPU=1  # a GPU test that cannot find the device fails instead of skipping
tandem=$bin/tandem
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

steps=("$@")
[[ ${#steps[@]} -eq 0 ]] && steps=(conformance model stories260K memcheck cluster bench)
summary=()

# run_step NAME LIMIT_S FUNCTION: runs the step function in a child bash with a time limit, logs to
# $out/NAME.log, records the outcome.
run_step() {
  local name=$1 limit=$2 fn=$3
  local start=$SECONDS
  echo "=== $name (limit ${limit}s)"
  timeout --kill-after=10 "$limit" bash -c "$fn" >"$out/$name.log" 2>&1
  local rc=$?
  local took=$((SECONDS - start))
  tail -n 40 "$out/$name.log"
  local verdict=PASS
  [[ $rc -eq 124 || $rc -eq 137 ]] && verdict="TIMEOUT"
  [[ $rc -ne 0 && $verdict == PASS ]] && verdict="FAIL (rc $rc)"
  summary+=("$(printf '%-12s %-14s %5ss' "$name" "$verdict" "$took")")
}

step_conformance() {
  "$bin/backend_registry_test" --gtest_brief=1 && "$bin/cuda_conformance_test" --gtest_brief=1
}

step_model() { "$bin/cuda_model_test" --gtest_brief=1; }

step_stories260K() {
  local src=$root/.gpu/bundle/testdata/stories260K
  [[ -d $src ]] || { echo "stories260K not in the bundle"; return 3; }
  if ! "$tandem" convert --help >/dev/null 2>&1; then echo "tandem convert is not built (issue 14): skipped"; return 3; fi
  "$tandem" convert --from llama2c --checkpoint "$src/stories260K.bin" --tokenizer "$src/tok512.bin" \
    --out "$work/stories" || return 1
  local failed=0
  for f in "$src"/expected_greedy_*.txt; do
    local prompt expected got n
    prompt=$(sed -n 's/^PROMPT_IDS: //p' "$f" | xargs | tr ' ' ',')
    # llama2.c's IDS are its 256 steps: the prompt after BOS, then the generated ids.
    local skip
    skip=$(($(tr ',' ' ' <<<"$prompt" | wc -w) - 1))
    expected=$(sed -n 's/^IDS: //p' "$f" | xargs | cut -d' ' -f$((skip + 1))-)
    n=$(wc -w <<<"$expected")
    for dtype in float32 bfloat16; do
      got=$("$tandem" run --backend cuda --dtype "$dtype" --model "$work/stories" --tokens "$prompt" \
              --max-tokens "$n" --ignore-eos --print-ids 2>/dev/null | xargs)
      if [[ $got == "$expected" ]]; then
        echo "$(basename "$f") $dtype: $n ids equal llama2.c's"
      else
        echo "$(basename "$f") $dtype: MISMATCH"; echo " want: ${expected:0:200}"; echo " got:  ${got:0:200}"
        [[ $dtype == float32 ]] && failed=1
      fi
    done
  done
  return $failed
}

step_memcheck() {
  local sanitizer
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  "$tandem" mkmodel --preset tiny --out "$work/tiny" >/dev/null || return 1
  "$sanitizer" --tool memcheck --error-exitcode 9 \
    "$bin/cuda_conformance_test" --gtest_brief=1 \
    --gtest_filter='Backends/OpConformanceTest.*/cuda_float32_gemv:Backends/OpConformanceTest.Sample*/cuda_bfloat16' \
    || return 1
  "$sanitizer" --tool memcheck --error-exitcode 9 \
    "$tandem" run --backend cuda --model "$work/tiny" --tokens 1,2,3,4,5 --max-tokens 12 --print-ids \
    --temperature 0.8 --seed 3 || return 1
  "$sanitizer" --tool racecheck --error-exitcode 9 \
    "$bin/cuda_conformance_test" --gtest_brief=1 \
    --gtest_filter='Backends/OpConformanceTest.Attention*/cuda_float32_gemv:Backends/OpConformanceTest.Sample*/cuda_float32_gemv'
}

step_cluster() {
  TANDEM_TEST_BACKEND_FLAGS="--backend cuda --dtype float32" "$bin/cluster_process_test" --gtest_brief=1 \
    --gtest_filter='*ThirtyTwoConcurrent*:*ClientCancel*:HungEngine*' || return 1
  # Colocated workers (chunked prefill in one continuous batch) on the device, exact against tandem run.
  TANDEM_TEST_BACKEND_FLAGS="--backend cuda --dtype float32" "$bin/colocated_cluster_test" --gtest_brief=1 \
    --gtest_filter='*Concurrent*:*Cancel*' || return 1
  # The `tandem up` path: 1 prefill + 1 decode CUDA worker on one device, a few real requests.
  "$tandem" mkmodel --preset small --out "$work/small" >/dev/null || return 1
  "$tandem" up --model "$work/small" --backend cuda --prefill 1 --decode 1 --port 18731 --http-port -1 --log-level warning \
    >"$work/up.log" 2>&1 &
  local up=$!
  for _ in $(seq 1 120); do grep -q "cluster up" "$work/up.log" && break; sleep 0.5; done
  local rc=0
  for p in "Once upon a time" "The GPU says"; do
    "$tandem" generate --router 127.0.0.1:18731 --prompt "$p" --max-tokens 24 --ignore-eos || rc=1
  done
  kill -TERM $up; wait $up
  cat "$work/up.log"
  return $rc
}

step_bench() {
  "$bin/gpu_bench" --models tinyllama-1.1b,llama3.2-1b,llama3-8b --batches 1,8,32,128 --context 512 \
    --prompts 512,2048 | tee "$out/gpu_bench.md"
}

export root out bin tandem work
export -f step_conformance step_model step_stories260K step_memcheck step_cluster step_bench
for s in "${steps[@]}"; do
  case $s in
    conformance) run_step conformance 120 step_conformance ;;
    model) run_step model 60 step_model ;;
    stories260K) run_step stories260K 40 step_stories260K ;;
    memcheck) run_step memcheck 120 step_memcheck ;;
    cluster) run_step cluster 90 step_cluster ;;
    bench) run_step bench 120 step_bench ;;
    *) echo "unknown step $s (conformance model stories260K memcheck cluster bench)"; exit 2 ;;
  esac
done

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/device: /'
echo "=== summary (logs in $out)"
grep -h -E '^(op |[A-Za-z].* cuda_)' "$out/conformance.log" 2>/dev/null | head -60
printf '%s\n' "${summary[@]}"
