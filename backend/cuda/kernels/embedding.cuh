// Embedding gather: out[i] = table[tokens[i]].
#ifndef TANDEM_BACKEND_CUDA_KERNELS_EMBEDDING_CUH_
#define TANDEM_BACKEND_CUDA_KERNELS_EMBEDDING_CUH_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "types/dtype.h"

namespace tandem::cuda {

struct EmbeddingArgs {
  const int32_t* tokens = nullptr;  // [num_tokens]
  const void* table = nullptr;      // [vocab, hidden]
  void* out = nullptr;              // [num_tokens, hidden]
  int64_t num_tokens = 0;
  int64_t hidden = 0;
  DType dtype = DType::kF32;        // of table and out
};

cudaError_t LaunchEmbedding(const EmbeddingArgs& args, cudaStream_t stream);

}  // namespace tandem::cuda

#endif  // TANDEM_BACKEND_CUDA_KERNELS_EMBEDDING_CUH_
