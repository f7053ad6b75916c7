// Gather rows. One block per output row copies one input row; memory-bound.
#include "backend/cuda/kernels/gather_rows.cuh"

#include "backend/cuda/kernels/common.cuh"
#include "backend/cuda/launch_shapes.h"

namespace tandem::cuda {
namespace {

template <typename T>
__global__ void GatherRowsKernel(const T* __restrict__ x, const int32_t* __restrict__ rows, T* __restrict__ out,
                                 int64_t width) {
  const int64_t j = blockIdx.x;
  const T* src = x + static_cast<int64_t>(rows[j]) * width;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x) out[j * width + c] = src[c];
}

}  // namespace

cudaError_t LaunchGatherRows(const GatherRowsArgs& a, cudaStream_t stream) {
  if (a.num_rows == 0) return cudaSuccess;
  const LaunchShape shape = RowShape(a.num_rows, a.width);
  bool ok = DispatchFloat(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    GatherRowsKernel<T><<<GridDim(shape.grid_x), shape.block, 0, stream>>>(
        static_cast<const T*>(a.x), a.rows, static_cast<T*>(a.out), a.width);
  });
  return ok ? cudaGetLastError() : cudaErrorInvalidValue;
}

}  // namespace tandem::cuda
