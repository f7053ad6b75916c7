#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a bounded time over a copy of
# its corpus. Fails when any target finds a crash, a leak, a hang (-timeout) or runs out of memory.
#   bash fuzz/run.sh SECONDS_PER_TARGET [BUILD_DIR]      # CI: scripts/test.sh runs it with 10 s
#   bash fuzz/run.sh 300 /tmp/fb --merge                  # longer; keep new coverage in fuzz/corpus/
# BUILD_DIR defaults to build-fuzz under the repository. Without clang or its libFuzzer runtime (Debian:
# clang, libclang-rt-dev; scripts/install-deps.sh installs both) it says so and exits 0, unless
# TANDEM_FUZZ_REQUIRED=1 (set by scripts/test.sh where it installed them), when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
seconds=${1:?usage: fuzz/run.sh SECONDS_PER_TARGET [BUILD_DIR] [--merge]}
build=${2:-build-fuzz}
merge=0
[[ ${3:-} == --merge ]] && merge=1

skip() {
  if [[ ${TANDEM_FUZZ_REQUIRED:-0} == 1 ]]; then
    echo "fuzz: FAILED: $1" >&2
    exit 1
  fi
  echo "fuzz: SKIPPED: $1 (install clang and libclang-rt-dev, e.g. with scripts/install-deps.sh)"
  exit 0
}
command -v clang++ >/dev/null || skip "clang++ not found"
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$probe/p.cc"
clang++ -fsanitize=fuzzer,address,undefined "$probe/p.cc" -o "$probe/p" 2>/dev/null ||
  skip "clang++ cannot link -fsanitize=fuzzer (libFuzzer runtime missing)"

start=$(date +%s)
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTANDEM_WITH_CUDA=OFF \
  -DTANDEM_BUILD_TESTS=OFF -DTANDEM_BUILD_BENCH=OFF -DTANDEM_FUZZ=ON \
  -DTANDEM_SANITIZE=fuzzer-no-link,address,undefined >/dev/null
cmake --build "$build" -j "$(nproc)" --target tandem_fuzzers
echo "fuzz: built in $(($(date +%s) - start)) s"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
work=$(mktemp -d)
trap 'rm -rf "$probe" "$work"' EXIT
summary=()
failed=0
for corpus in fuzz/corpus/*/; do
  name=$(basename "$corpus")
  fuzzer="$build/fuzz/${name}_fuzzer"
  [[ -x $fuzzer ]] || { echo "fuzz: no $fuzzer for $corpus" >&2; exit 1; }
  mkdir -p "$work/$name" "$work/$name-artifacts"
  cp -r "$corpus". "$work/$name/"
  # -max_len: inputs up to 8 KB (libFuzzer would otherwise take the largest corpus file, and a few
  # regression inputs are large; the replay tests run those in full).
  args=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=8192 -print_final_stats=1
        -artifact_prefix="$work/$name-artifacts/")
  [[ -f fuzz/dict/$name.dict ]] && args+=(-dict="fuzz/dict/$name.dict")
  echo "fuzz: $name for ${seconds} s"
  if "$fuzzer" "${args[@]}" "$work/$name" >"$work/$name.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log")
    summary+=("$(printf '%-18s ok      %9s runs, corpus %4s -> %4s inputs' "$name" "${runs:-?}" \
      "$(find "$corpus" -type f | wc -l)" "$(find "$work/$name" -type f | wc -l)")")
    if ((merge)); then
      "$fuzzer" -merge=1 "$corpus" "$work/$name" >>"$work/$name.log" 2>&1
    fi
  else
    failed=1
    tail -n 60 "$work/$name.log"
    mkdir -p "$build/fuzz-artifacts"
    cp "$work/$name-artifacts/"* "$build/fuzz-artifacts/" 2>/dev/null || true
    summary+=("$(printf '%-18s FAILED  input(s) in %s/fuzz-artifacts/' "$name" "$build")")
  fi
done
echo "fuzz: summary (${seconds} s per target, $(($(date +%s) - start)) s in all)"
printf '  %s\n' "${summary[@]}"
if ((failed)); then
  echo "fuzz: reproduce with $build/fuzz/NAME_fuzzer INPUT; once fixed, add INPUT to fuzz/corpus/NAME/" >&2
  exit 1
fi
