// Plain-loop reference implementations of every Backend op on float32 host tensors: the spec that
// every faster path (CPU or CUDA) is checked against. Written for clarity, not speed. Arguments and
// shapes are those of the matching Backend methods (backend/backend.h).
#ifndef TANDEM_BACKEND_CPU_REFERENCE_OPS_H_
#define TANDEM_BACKEND_CPU_REFERENCE_OPS_H_

#include "backend/backend.h"

namespace tandem::cpu_ref {

// Embedding and Linear take float32, bfloat16 or float16 tables and weights (widened exactly); every
// other tensor is float32.
void Embedding(const Tensor& tokens, const Tensor& table, const Tensor& out);
void RmsNorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out);
void AddRmsNorm(const Tensor& residual, const Tensor& delta, const Tensor& weight, float eps,
                const Tensor& out);
void Linear(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y);
void RopeAndStoreKv(const Tensor& qkv, const Tensor& rope, const BatchLayout& layout,
                    const AttentionShape& shape, const LayerKv& kv);
void Attention(const Tensor& qkv, const BatchLayout& layout, const AttentionShape& shape,
               const LayerKv& kv, const Tensor& out);
void SiluMul(const Tensor& gate_up, const Tensor& out);
void GatherRows(const Tensor& x, const Tensor& rows, const Tensor& out);

}  // namespace tandem::cpu_ref

#endif  // TANDEM_BACKEND_CPU_REFERENCE_OPS_H_
