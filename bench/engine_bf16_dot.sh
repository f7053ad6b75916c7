#!/usr/bin/env bash
# Issue 14: bf16 weights through AVX512_BF16 dot products (backend/cpu/bf16_dot.h, the default where the
# CPU has them) against the kernels they replace (TANDEM_CPU_BF16_DOT=off: widen + sgemm for prompts, the
# widening matrix-vector kernel for decode) and float32 weights, interleaved in rounds (the machine's
# memory bandwidth drifts): a 128- and a 512-token prefill and a batch-1 decode step at 512 tokens of
# context (x_floor: step time over the bandwidth floor measured just before it), TinyLlama-1.1B shape,
# at 1 and 2 threads.
#   bash bench/engine_bf16_dot.sh [ROUNDS] > bench/engine_bf16_dot_DATE.txt
# Decode lines: copy_GBps floor_ms read_GBps step_ms tok_per_s weights_MB x_floor (tabular counters).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
bench=build/bench/engine_bench
echo "# bash bench/engine_bf16_dot.sh $rounds   ($(date -u +%F), $(nproc) CPUs)"
echo "# held: bf16 (default: dot products where the CPU has them), f32; 'widen' = bf16 with TANDEM_CPU_BF16_DOT=off"
for r in $(seq 1 "$rounds"); do
  for t in 1 2; do
    echo "## round $r, $t thread(s), $(date -u +%T)"
    for filter in 'BM_Prefill/1/(128|512)/0/' 'BM_Prefill/1/(128|512)/1/' 'BM_Decode/1/1/[01]/'; do
      TANDEM_BENCH_THREADS=$t $bench --benchmark_filter="$filter" --benchmark_counters_tabular=true 2>/dev/null |
        grep '^BM_' | sed 's/^/  /'
    done
    TANDEM_CPU_BF16_DOT=off TANDEM_BENCH_THREADS=$t $bench --benchmark_filter='BM_(Prefill/1/(128|512)|Decode/1/1)/0/' \
      --benchmark_counters_tabular=true 2>/dev/null | grep '^BM_' | sed 's/^/  widen /'
  done
done
