// Fast CPU paths, checked against backend/cpu/reference_ops.h by tests/backend_conformance_test.cc.
//
// Linear: for one row (decode at batch 1) a threaded matrix-vector kernel that streams each weight row
// once (memory-bound: the floor is weight bytes / memory bandwidth); for more rows BLAS sgemm. (A
// multi-row streaming kernel measured slower than OpenBLAS at 8 rows on the 2-core development machine,
// bench/engine.md.) Attention: threaded over (token, head) with float accumulation and an online
// softmax. Elementwise ops: threaded over rows.
#ifndef TANDEM_BACKEND_CPU_FAST_OPS_H_
#define TANDEM_BACKEND_CPU_FAST_OPS_H_

#include "backend/backend.h"
#include "common/thread_pool.h"

namespace tandem::cpu_fast {

void RmsNorm(ThreadPool& pool, const Tensor& x, const Tensor& weight, float eps, const Tensor& out);
void AddRmsNorm(ThreadPool& pool, const Tensor& residual, const Tensor& delta, const Tensor& weight,
                float eps, const Tensor& out);
void Linear(ThreadPool& pool, const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y);
void Attention(ThreadPool& pool, const Tensor& qkv, const BatchLayout& layout,
               const AttentionShape& shape, const LayerKv& kv, const Tensor& out);
void SiluMul(ThreadPool& pool, const Tensor& gate_up, const Tensor& out);

}  // namespace tandem::cpu_fast

#endif  // TANDEM_BACKEND_CPU_FAST_OPS_H_
