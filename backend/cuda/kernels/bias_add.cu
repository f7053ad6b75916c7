// Bias add. A grid-stride loop over the elements of y; memory-bound.
#include "backend/cuda/kernels/bias_add.cuh"

#include "backend/cuda/kernels/common.cuh"
#include "backend/cuda/launch_shapes.h"

namespace tandem::cuda {
namespace {

template <typename T>
__global__ void BiasAddKernel(T* __restrict__ y, const float* __restrict__ bias, int64_t rows, int64_t cols) {
  const int64_t total = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = FromFloat<T>(ToFloat(y[i]) + bias[i % cols]);
  }
}

}  // namespace

cudaError_t LaunchBiasAdd(void* y, const float* bias, int64_t rows, int64_t cols, DType dtype, cudaStream_t stream) {
  if (rows * cols == 0) return cudaSuccess;
  const LaunchShape shape = ElementwiseShape(rows * cols, DeviceLimits{});
  bool ok = DispatchFloat(dtype, [&](auto zero) {
    using T = decltype(zero);
    BiasAddKernel<T><<<GridDim(shape.grid_x), shape.block, 0, stream>>>(static_cast<T*>(y), bias, rows, cols);
  });
  return ok ? cudaGetLastError() : cudaErrorInvalidValue;
}

}  // namespace tandem::cuda
