// Fast CPU paths, checked against backend/cpu/reference_ops.h by tests/backend_conformance_test.cc.
//
// Linear: for up to kMaxStreamedRows rows (decode) a threaded kernel that streams each weight row once
// (memory-bound: the floor is weight bytes / memory bandwidth), reusing it from L1 for groups of 4 rows
// (OpenBLAS's small-M sgemm cost 3-4x a batch-1 step there, bench/engine.md); for more rows BLAS sgemm.
// 16-bit weights (bf16, f16) take the same two shapes with the widening inside (half_ops.h). Attention:
// threaded over (token, KV head) with float accumulation. Elementwise ops: threaded over rows.
#ifndef TANDEM_BACKEND_CPU_FAST_OPS_H_
#define TANDEM_BACKEND_CPU_FAST_OPS_H_

#include <vector>

#include "backend/backend.h"
#include "common/thread_pool.h"

namespace tandem::cpu_fast {

// Rows up to which Linear streams weights instead of calling sgemm.
inline constexpr int64_t kMaxStreamedRows = 8;
// Floats of weights in one prompt GEMM block (1 MiB of float32: a thread's widened 16-bit block stays
// in its L2).
inline constexpr int64_t kGemmBlockFloats = int64_t{1} << 19;

void RmsNorm(ThreadPool& pool, const Tensor& x, const Tensor& weight, float eps, const Tensor& out);
void AddRmsNorm(ThreadPool& pool, const Tensor& residual, const Tensor& delta, const Tensor& weight,
                float eps, const Tensor& out);
// w is float32, bfloat16 or float16 (backend/cpu/half_ops.h); x and y are float32. `scratch` holds the
// activations as the 16-bit decode kernel reads them.
// batch_invariant: prompts (more than kMaxStreamedRows rows) too are summed row by row as the decode
// kernel sums them, in register tiles (slower than sgemm, but a row's result never depends on the rows
// beside it).
// bf16_dot: bf16 weights take cpu_bf16dot's dot products (activations rounded to bf16) where the CPU
// has them (cpu_bf16dot::Available()), for prompts and decode steps (with batch_invariant, prompt tiles
// that sum each output as their decode kernel does), instead of the widening kernels.
void Linear(ThreadPool& pool, const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y,
            std::vector<float>& scratch, bool batch_invariant = false, bool bf16_dot = true);
// out[i] = table[tokens[i]], the table float32 or 16-bit.
void Embedding(ThreadPool& pool, const Tensor& tokens, const Tensor& table, const Tensor& out);
void Attention(ThreadPool& pool, const Tensor& qkv, const BatchLayout& layout,
               const AttentionShape& shape, const LayerKv& kv, const Tensor& out);
void SiluMul(ThreadPool& pool, const Tensor& gate_up, const Tensor& out);

}  // namespace tandem::cpu_fast

#endif  // TANDEM_BACKEND_CPU_FAST_OPS_H_
