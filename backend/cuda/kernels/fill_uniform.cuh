// Random weights on the device: t[i] = offset + scale * u_i with u_i uniform in [-1, 1).
#ifndef TANDEM_BACKEND_CUDA_KERNELS_FILL_UNIFORM_CUH_
#define TANDEM_BACKEND_CUDA_KERNELS_FILL_UNIFORM_CUH_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "types/dtype.h"

namespace tandem::cuda {

struct FillUniformArgs {
  void* data = nullptr;
  int64_t count = 0;
  uint64_t seed = 0;
  float offset = 0.0f;
  float scale = 1.0f;
  DType dtype = DType::kF32;
};

cudaError_t LaunchFillUniform(const FillUniformArgs& args, cudaStream_t stream);

}  // namespace tandem::cuda

#endif  // TANDEM_BACKEND_CUDA_KERNELS_FILL_UNIFORM_CUH_
