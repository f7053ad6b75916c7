// y[i, o] += bias[o]: the bias of a GEMM where the library cannot fuse it.
#ifndef TANDEM_BACKEND_CUDA_KERNELS_BIAS_ADD_CUH_
#define TANDEM_BACKEND_CUDA_KERNELS_BIAS_ADD_CUH_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "types/dtype.h"

namespace tandem::cuda {

// y: [rows, cols] of `dtype`; bias: float32 [cols].
cudaError_t LaunchBiasAdd(void* y, const float* bias, int64_t rows, int64_t cols, DType dtype, cudaStream_t stream);

}  // namespace tandem::cuda

#endif  // TANDEM_BACKEND_CUDA_KERNELS_BIAS_ADD_CUH_
