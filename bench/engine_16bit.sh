#!/usr/bin/env bash
# 16-bit weights on the CPU (issue 14): TinyLlama-1.1B-shaped decode at batch 1 and a 128-token prefill,
# the bf16 checkpoint held as stored (bf16, unfused matrices in the file mapping), copied (bf16 in
# anonymous memory) and widened to f32 (the old path), at 1 and 2 threads, ROUNDS times interleaved.
# With LLAMACPP_RUN set to a command taking "TYPE THREADS" (printing llama.cpp's decode tokens/s on a
# model of the same shape), llama.cpp runs of each type in LLAMACPP_TYPES (default "f16 bf16") are
# interleaved with ours. llama.cpp itself is not built or shipped by this repository. Our decode runs at
# 512 tokens of context; give llama.cpp the same (llama-bench -d 512) for a like-for-like figure.
# At the end: peak resident memory of `tandem run` on the same checkpoint, held bf16 and widened to f32.
#
#   bash bench/engine_16bit.sh [BUILD_DIR] [ROUNDS] > bench/engine_16bit_DATE.txt
set -euo pipefail
build=${1:-build}
rounds=${2:-3}
for round in $(seq 1 "$rounds"); do
  for threads in 1 2; do
    echo "## round $round, $threads thread(s), $(date -u +%H:%M:%S)"
    TANDEM_BENCH_THREADS=$threads "$build/bench/engine_bench" \
      --benchmark_filter='BM_Decode/1/1/|BM_Prefill/1/128/' --benchmark_format=json 2>/dev/null |
      /usr/bin/python3 -c '
import json, sys
for b in json.load(sys.stdin)["benchmarks"]:
    if "step_ms" in b:
        print("%-30s decode step %6.1f ms  %5.2f tok/s  floor %5.1f ms  x_floor %4.2f  read %4.1f GB/s" % (
            b["label"], b["step_ms"], 1e3 / b["step_ms"], b["floor_ms"], b["x_floor"], b["read_GBps"]))
    else:
        print("%-30s prefill 128: %6.1f prompt tok/s" % (b["label"], b["prompt_tok_per_s"]))'
    if [[ -n ${LLAMACPP_RUN:-} ]]; then
      for type in ${LLAMACPP_TYPES:-f16 bf16}; do $LLAMACPP_RUN "$type" "$threads"; done
    fi
  done
done

# Peak memory: the engine_bench checkpoint (written on first use) through tandem run, 1 thread.
model=${TANDEM_BENCH_MODELS:-/tmp/tandem-bench-models}/tinyllama-1.1b
echo "## peak resident memory, tandem run (3 prompt tokens, 4 generated), $(date -u +%H:%M:%S)"
for dtype in bfloat16 float32; do
  /usr/bin/python3 - "$build/cli/tandem" "$model" "$dtype" <<'PY'
import os, resource, subprocess, sys
tandem, model, dtype = sys.argv[1:4]
subprocess.run([tandem, "run", "--model", model, "--tokens", "1,2,3", "--max-tokens", "4", "--print-ids",
                "--threads", "1", "--dtype", dtype], check=True, stdout=subprocess.DEVNULL)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
weights = os.path.getsize(os.path.join(model, "model.safetensors"))
print("held %-8s peak RSS %5.2f GB  checkpoint file %5.2f GB  peak / file %4.2f" % (dtype, peak / 1e9, weights / 1e9, peak / weights))
PY
done
