// RMSNorm (optionally fused with the residual add). One block per row: pass 1 adds the delta (storing
// the rounded sum back, as a framework computing in the activation dtype would) and sums squares in
// float; a block reduction gives 1/rms; pass 2 scales by it and the weight. Memory-bound: the row is
// read twice (the second time from L1/L2) and written once or twice.
#include "backend/cuda/kernels/rms_norm.cuh"

#include "backend/cuda/kernels/common.cuh"
#include "backend/cuda/launch_shapes.h"

namespace tandem::cuda {
namespace {

template <typename T>
__global__ void RmsNormKernel(T* __restrict__ residual, const T* __restrict__ delta, const T* __restrict__ weight,
                              T* __restrict__ out, int64_t hidden, float eps) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  T* r = residual + row * hidden;
  float sum_squares = 0.0f;
  for (int64_t j = threadIdx.x; j < hidden; j += blockDim.x) {
    float x = ToFloat(r[j]);
    if (delta != nullptr) {
      const T stored = FromFloat<T>(x + ToFloat(delta[row * hidden + j]));
      r[j] = stored;
      x = ToFloat(stored);
    }
    sum_squares += x * x;
  }
  const float total = BlockSum(sum_squares, scratch);
  const float inv = rsqrtf(total / static_cast<float>(hidden) + eps);
  T* o = out + row * hidden;
  for (int64_t j = threadIdx.x; j < hidden; j += blockDim.x) {
    o[j] = FromFloat<T>(ToFloat(r[j]) * inv * ToFloat(weight[j]));
  }
}

}  // namespace

cudaError_t LaunchRmsNorm(const RmsNormArgs& a, cudaStream_t stream) {
  if (a.rows == 0) return cudaSuccess;
  const LaunchShape shape = RowShape(a.rows, a.hidden);
  bool ok = DispatchFloat(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    RmsNormKernel<T><<<GridDim(shape.grid_x), shape.block, 0, stream>>>(
        static_cast<T*>(a.residual), static_cast<const T*>(a.delta), static_cast<const T*>(a.weight),
        static_cast<T*>(a.out), a.hidden, a.eps);
  });
  return ok ? cudaGetLastError() : cudaErrorInvalidValue;
}

}  // namespace tandem::cuda
