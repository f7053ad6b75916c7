// Rotary position embedding of q and k (Hugging Face rotate-half), fused with writing k and v into the
// paged KV cache at each token's slot.
#ifndef TANDEM_BACKEND_CUDA_KERNELS_ROPE_STORE_KV_CUH_
#define TANDEM_BACKEND_CUDA_KERNELS_ROPE_STORE_KV_CUH_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "types/dtype.h"

namespace tandem::cuda {

struct RopeStoreKvArgs {
  void* qkv = nullptr;                 // [num_tokens, (heads + 2 kv_heads) * head_dim], rotated in place
  const float* rope = nullptr;         // [max_pos, head_dim]: cos (first half) | sin (second half)
  const int32_t* positions = nullptr;  // [num_tokens]
  const int32_t* slots = nullptr;      // [num_tokens]; negative: padding, nothing stored
  void* k_cache = nullptr;             // [num_blocks * block_size, kv_heads, head_dim]
  void* v_cache = nullptr;             // [num_blocks * block_size, kv_heads, head_dim]
  int64_t num_tokens = 0;
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  DType dtype = DType::kF32;           // of qkv and the cache
};

cudaError_t LaunchRopeStoreKv(const RopeStoreKvArgs& args, cudaStream_t stream);

}  // namespace tandem::cuda

#endif  // TANDEM_BACKEND_CUDA_KERNELS_ROPE_STORE_KV_CUH_
