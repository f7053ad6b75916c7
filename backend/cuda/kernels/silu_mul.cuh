// SwiGLU's activation: out = silu(gate) * up, where each row of gate_up is [gate | up].
#ifndef TANDEM_BACKEND_CUDA_KERNELS_SILU_MUL_CUH_
#define TANDEM_BACKEND_CUDA_KERNELS_SILU_MUL_CUH_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "types/dtype.h"

namespace tandem::cuda {

struct SiluMulArgs {
  const void* gate_up = nullptr;  // [rows, 2 * inter]
  void* out = nullptr;            // [rows, inter]
  int64_t rows = 0;
  int64_t inter = 0;
  DType dtype = DType::kF32;
};

cudaError_t LaunchSiluMul(const SiluMulArgs& args, cudaStream_t stream);

}  // namespace tandem::cuda

#endif  // TANDEM_BACKEND_CUDA_KERNELS_SILU_MUL_CUH_
