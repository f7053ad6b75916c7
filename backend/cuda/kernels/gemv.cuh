// Small-batch Linear for decode: y[r, o] = sum_k x[r, k] * w[o, k] (+ bias[o]) for up to 8 rows of x,
// bound by the bandwidth of reading w once.
#ifndef TANDEM_BACKEND_CUDA_KERNELS_GEMV_CUH_
#define TANDEM_BACKEND_CUDA_KERNELS_GEMV_CUH_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "types/dtype.h"

namespace tandem::cuda {

struct GemvArgs {
  const void* x = nullptr;       // [rows, in]
  const void* w = nullptr;       // [out, in], same dtype as x
  const float* bias = nullptr;   // [out] or null
  void* y = nullptr;             // [rows, out], x's dtype or float32
  int32_t rows = 0;              // 1..kGemvMaxRows
  int64_t in = 0;
  int64_t out = 0;
  DType dtype = DType::kF32;     // of x and w
  DType out_dtype = DType::kF32; // of y
};

// cudaErrorInvalidValue for rows outside 1..kGemvMaxRows or an unsupported dtype pair.
cudaError_t LaunchGemv(const GemvArgs& args, cudaStream_t stream);

}  // namespace tandem::cuda

#endif  // TANDEM_BACKEND_CUDA_KERNELS_GEMV_CUH_
