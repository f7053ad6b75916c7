// RMSNorm and the fused residual-add + RMSNorm.
#ifndef TANDEM_BACKEND_CUDA_KERNELS_RMS_NORM_CUH_
#define TANDEM_BACKEND_CUDA_KERNELS_RMS_NORM_CUH_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "types/dtype.h"

namespace tandem::cuda {

struct RmsNormArgs {
  void* residual = nullptr;      // [rows, hidden]: the input x; with `delta`, updated in place to x + delta
  const void* delta = nullptr;   // [rows, hidden] or null (plain RMSNorm)
  const void* weight = nullptr;  // [hidden]
  void* out = nullptr;           // [rows, hidden]
  int64_t rows = 0;
  int64_t hidden = 0;
  float eps = 1e-6f;
  DType dtype = DType::kF32;     // of every tensor
};

// out = r / sqrt(mean(r^2) + eps) * weight with r = residual (+ delta, stored back rounded to dtype).
cudaError_t LaunchRmsNorm(const RmsNormArgs& args, cudaStream_t stream);

}  // namespace tandem::cuda

#endif  // TANDEM_BACKEND_CUDA_KERNELS_RMS_NORM_CUH_
