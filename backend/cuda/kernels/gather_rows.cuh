// out[j] = x[rows[j]]: the last token of each sequence before the LM head.
#ifndef TANDEM_BACKEND_CUDA_KERNELS_GATHER_ROWS_CUH_
#define TANDEM_BACKEND_CUDA_KERNELS_GATHER_ROWS_CUH_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "types/dtype.h"

namespace tandem::cuda {

struct GatherRowsArgs {
  const void* x = nullptr;        // [n, width]
  const int32_t* rows = nullptr;  // [m]
  void* out = nullptr;            // [m, width]
  int64_t num_rows = 0;           // m
  int64_t width = 0;
  DType dtype = DType::kF32;
};

cudaError_t LaunchGatherRows(const GatherRowsArgs& args, cudaStream_t stream);

}  // namespace tandem::cuda

#endif  // TANDEM_BACKEND_CUDA_KERNELS_GATHER_ROWS_CUH_
