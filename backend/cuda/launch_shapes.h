// Launch shapes of every CUDA kernel, as plain host arithmetic: the launchers in kernels/*.cu use these
// functions, and backend/cuda/launch_shapes_test.cc checks them against device limits for every shape
// of the conformance table and the benchmark models, on a machine without a GPU.
//
// No CUDA, no abseil: included by .cu files and by host tests alike.
#ifndef TANDEM_BACKEND_CUDA_LAUNCH_SHAPES_H_
#define TANDEM_BACKEND_CUDA_LAUNCH_SHAPES_H_

#include <cstdint>

namespace tandem::cuda {

struct LaunchShape {
  int64_t grid_x = 1, grid_y = 1, grid_z = 1;
  int32_t block = 1;          // threads per block (1-D blocks everywhere)
  int64_t shared_bytes = 0;   // dynamic shared memory per block
};

// What a device allows (cudaDeviceProp); the defaults are an H100/H200 (sm_90).
struct DeviceLimits {
  int32_t max_threads_per_block = 1024;
  int64_t max_grid_x = 2147483647;
  int64_t max_grid_y = 65535;
  int64_t max_grid_z = 65535;
  int64_t max_shared_per_block = 48 * 1024;          // without opting in
  int64_t max_shared_per_block_optin = 227 * 1024;   // cudaFuncAttributeMaxDynamicSharedMemorySize
  int32_t num_sms = 132;
};

// True when the shape is launchable (a non-empty grid within limits; shared memory within the opt-in
// limit).
bool Fits(const LaunchShape& shape, const DeviceLimits& limits);

// --- row-wise and elementwise kernels ---
// One block per row (Embedding, RmsNorm, AddRmsNorm, GatherRows, RoPE + KV store).
LaunchShape RowShape(int64_t rows, int64_t row_elements);
// A grid-stride loop over `elements` (SiluMul, bias add, fill).
LaunchShape ElementwiseShape(int64_t elements, const DeviceLimits& limits);

// --- small-batch matrix-vector (decode Linear) ---
inline constexpr int32_t kGemvMaxRows = 8;
inline constexpr int32_t kGemvWarps = 8;  // warps per block; one output feature per warp
LaunchShape GemvShape(int64_t out_features);

// --- paged attention ---
inline constexpr int32_t kAttentionWarps = 8;
inline constexpr int32_t kAttentionRowsPerWarp = 2;
inline constexpr int32_t kAttentionRows = kAttentionWarps * kAttentionRowsPerWarp;  // (token, head) rows
inline constexpr int32_t kAttentionKeyTile = 32;   // keys per shared-memory tile (one per lane)
inline constexpr int32_t kAttentionMaxHeadDim = 256;
inline constexpr int32_t kAttentionMinPartition = 64;  // keys per split at least
inline constexpr int32_t kAttentionMaxSplits = 32;

struct AttentionDims {
  int32_t num_seqs = 0;
  int32_t num_tokens = 0;
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t max_query_len = 0;
  int32_t max_context_len = 0;
};

struct AttentionPlan {
  LaunchShape main;       // grid (row tiles, kv_heads * splits, seqs)
  LaunchShape combine;    // grid (tokens, heads) when num_splits > 1
  int32_t num_splits = 1;
  int32_t partition = 0;  // keys per split (a multiple of the key tile)
};

// Rows of a sequence's block: its q_len * group (token, query head) pairs, kAttentionRows per block.
// Splitting the keys (flash-decoding) is for steps of at most `split_token_limit` tokens (decode), so
// that enough blocks run when there are few queries; the partials need
// num_tokens * num_heads * num_splits * (head_dim + 2) floats of scratch.
AttentionPlan PlanAttention(const AttentionDims& dims, int32_t split_token_limit, const DeviceLimits& limits);
// Floats of split scratch a plan needs (0 without splits).
int64_t AttentionScratchFloats(const AttentionDims& dims, const AttentionPlan& plan);

// --- sampling ---
inline constexpr int32_t kSampleThreads = 1024;
// Rows sorted together by the segmented radix sort of the random-sampling path.
inline constexpr int32_t kSampleSortRows = 16;

}  // namespace tandem::cuda

#endif  // TANDEM_BACKEND_CUDA_LAUNCH_SHAPES_H_
