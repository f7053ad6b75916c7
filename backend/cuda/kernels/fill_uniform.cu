// Uniform fill. A grid-stride loop; element i's value is a splitmix64 hash of (seed, i), so the result
// does not depend on the launch shape. Write-bound.
#include "backend/cuda/kernels/fill_uniform.cuh"

#include "backend/cuda/kernels/common.cuh"
#include "backend/cuda/launch_shapes.h"

namespace tandem::cuda {
namespace {

__device__ __forceinline__ uint64_t Mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

template <typename T>
__global__ void FillUniformKernel(T* __restrict__ data, int64_t count, uint64_t seed, float offset, float scale) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint64_t bits = Mix(seed * 0x2545f4914f6cdd1dull + static_cast<uint64_t>(i));
    const float u = static_cast<float>(bits >> 40) * 0x1.0p-24f * 2.0f - 1.0f;  // [-1, 1)
    data[i] = FromFloat<T>(offset + scale * u);
  }
}

}  // namespace

cudaError_t LaunchFillUniform(const FillUniformArgs& a, cudaStream_t stream) {
  if (a.count == 0) return cudaSuccess;
  const LaunchShape shape = ElementwiseShape(a.count, DeviceLimits{});
  bool ok = DispatchFloat(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    FillUniformKernel<T><<<GridDim(shape.grid_x), shape.block, 0, stream>>>(static_cast<T*>(a.data), a.count,
                                                                              a.seed, a.offset, a.scale);
  });
  return ok ? cudaGetLastError() : cudaErrorInvalidValue;
}

}  // namespace tandem::cuda
