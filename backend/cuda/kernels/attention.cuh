// Causal attention of a batch's new tokens over the paged KV cache: prompts, decode tokens, or both,
// with grouped-query heads, split along the keys when there are few queries (flash-decoding).
#ifndef TANDEM_BACKEND_CUDA_KERNELS_ATTENTION_CUH_
#define TANDEM_BACKEND_CUDA_KERNELS_ATTENTION_CUH_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/launch_shapes.h"
#include "types/dtype.h"

namespace tandem::cuda {

struct AttentionArgs {
  const void* qkv = nullptr;             // [num_tokens, (heads + 2 kv_heads) * head_dim]; q is read
  const void* k_cache = nullptr;         // [num_blocks * block_size, kv_heads, head_dim]
  const void* v_cache = nullptr;         // [num_blocks * block_size, kv_heads, head_dim]
  void* out = nullptr;                   // [num_tokens, heads * head_dim]
  const int32_t* query_start = nullptr;  // [num_seqs + 1]
  const int32_t* context_lens = nullptr; // [num_seqs]; 0: padding, output zero
  const int32_t* block_tables = nullptr; // [num_seqs, max_blocks_per_seq]
  AttentionDims dims;                    // max_query_len / max_context_len are upper bounds
  int32_t block_size = 0;
  int32_t max_blocks_per_seq = 0;
  float scale = 0.0f;
  float* scratch = nullptr;              // split partials (AttentionScratchFloats)
  int64_t scratch_floats = 0;            // its size; a plan needing more runs unsplit
  int32_t split_token_limit = 0;         // split the keys only for steps of at most this many tokens
  DType dtype = DType::kF32;             // of qkv, the cache and out
};

// cudaErrorInvalidValue for a head_dim above kAttentionMaxHeadDim, heads not a multiple of kv_heads,
// or an unsupported dtype.
cudaError_t LaunchAttention(const AttentionArgs& args, const DeviceLimits& limits, cudaStream_t stream);

}  // namespace tandem::cuda

#endif  // TANDEM_BACKEND_CUDA_KERNELS_ATTENTION_CUH_
