// SiLU-and-multiply. A grid-stride loop over the output elements; memory-bound (3 elements moved per
// output). silu(g) = g / (1 + exp(-g)) in float, as the CPU reference computes it.
#include "backend/cuda/kernels/silu_mul.cuh"

#include "backend/cuda/kernels/common.cuh"
#include "backend/cuda/launch_shapes.h"

namespace tandem::cuda {
namespace {

template <typename T>
__global__ void SiluMulKernel(const T* __restrict__ gate_up, T* __restrict__ out, int64_t rows, int64_t inter) {
  const int64_t total = rows * inter;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / inter, j = i % inter;
    const float g = ToFloat(gate_up[row * 2 * inter + j]);
    const float u = ToFloat(gate_up[row * 2 * inter + inter + j]);
    out[i] = FromFloat<T>(g / (1.0f + expf(-g)) * u);
  }
}

}  // namespace

cudaError_t LaunchSiluMul(const SiluMulArgs& a, cudaStream_t stream) {
  if (a.rows * a.inter == 0) return cudaSuccess;
  const LaunchShape shape = ElementwiseShape(a.rows * a.inter, DeviceLimits{});
  bool ok = DispatchFloat(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    SiluMulKernel<T><<<GridDim(shape.grid_x), shape.block, 0, stream>>>(
        static_cast<const T*>(a.gate_up), static_cast<T*>(a.out), a.rows, a.inter);
  });
  return ok ? cudaGetLastError() : cudaErrorInvalidValue;
}

}  // namespace tandem::cuda
