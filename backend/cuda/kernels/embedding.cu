// Embedding gather. One block per token copies one row of the table; memory-bound (hidden * bytes read
// and written per token). Token ids were validated by the model against the vocabulary.
#include "backend/cuda/kernels/embedding.cuh"

#include "backend/cuda/kernels/common.cuh"
#include "backend/cuda/launch_shapes.h"

namespace tandem::cuda {
namespace {

template <typename T>
__global__ void EmbeddingKernel(const int32_t* __restrict__ tokens, const T* __restrict__ table,
                                T* __restrict__ out, int64_t hidden) {
  const int64_t row = blockIdx.x;
  const T* src = table + static_cast<int64_t>(tokens[row]) * hidden;
  T* dst = out + row * hidden;
  for (int64_t j = threadIdx.x; j < hidden; j += blockDim.x) dst[j] = src[j];
}

}  // namespace

cudaError_t LaunchEmbedding(const EmbeddingArgs& a, cudaStream_t stream) {
  if (a.num_tokens == 0) return cudaSuccess;
  const LaunchShape shape = RowShape(a.num_tokens, a.hidden);
  bool ok = DispatchFloat(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    EmbeddingKernel<T><<<GridDim(shape.grid_x), shape.block, 0, stream>>>(
        a.tokens, static_cast<const T*>(a.table), static_cast<T*>(a.out), a.hidden);
  });
  return ok ? cudaGetLastError() : cudaErrorInvalidValue;
}

}  // namespace tandem::cuda
