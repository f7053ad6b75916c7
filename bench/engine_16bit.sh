#!/usr/bin/env bash
# 16-bit weights on the CPU (issue 14): TinyLlama-1.1B-shaped decode at batch 1 and a 128-token prefill,
# the bf16 checkpoint held as stored (bf16, unfused matrices in the file mapping), copied (bf16 in
# anonymous memory) and widened to f32 (the old path), at 1 and 2 threads, ROUNDS times interleaved.
# With LLAMACPP_RUN set to a command taking "TYPE THREADS" (printing llama.cpp's decode tokens/s on a
# model of the same shape), llama.cpp F16 and BF16 runs are interleaved with ours. llama.cpp itself is
# not built or shipped by this repository.
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
      for type in f16 bf16; do $LLAMACPP_RUN "$type" "$threads"; done
    fi
  done
done
