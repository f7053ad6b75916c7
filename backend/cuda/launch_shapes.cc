#include "backend/cuda/launch_shapes.h"

#include <algorithm>

namespace tandem::cuda {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

bool Fits(const LaunchShape& s, const DeviceLimits& limits) {
  return s.grid_x >= 1 && s.grid_y >= 1 && s.grid_z >= 1 && s.grid_x <= limits.max_grid_x &&
         s.grid_y <= limits.max_grid_y && s.grid_z <= limits.max_grid_z && s.block >= 1 &&
         s.block <= limits.max_threads_per_block && s.block % 32 == 0 && s.shared_bytes >= 0 &&
         s.shared_bytes <= limits.max_shared_per_block_optin;
}

LaunchShape RowShape(int64_t rows, int64_t row_elements) {
  LaunchShape s;
  s.grid_x = std::max<int64_t>(rows, 1);
  // Enough threads for one pass over a typical row, at least a warp, at most 1024.
  s.block = static_cast<int32_t>(std::clamp<int64_t>(CeilDiv(row_elements, 32) * 32, 32, 1024));
  if (s.block > 256 && row_elements < 4096) s.block = 256;
  return s;
}

LaunchShape ElementwiseShape(int64_t elements, const DeviceLimits& limits) {
  LaunchShape s;
  s.block = 256;
  // A grid-stride loop: enough blocks to fill the device several times over, never more than needed.
  s.grid_x = std::clamp<int64_t>(CeilDiv(elements, s.block), 1, static_cast<int64_t>(limits.num_sms) * 32);
  return s;
}

LaunchShape GemvShape(int64_t out_features) {
  LaunchShape s;
  s.block = kGemvWarps * 32;
  s.grid_x = std::max<int64_t>(CeilDiv(out_features, kGemvWarps), 1);
  return s;
}

AttentionPlan PlanAttention(const AttentionDims& d, int32_t split_token_limit, const DeviceLimits& limits) {
  AttentionPlan plan;
  const int32_t group = std::max(1, d.num_heads / std::max(1, d.num_kv_heads));
  const int64_t row_tiles = std::max<int64_t>(CeilDiv(static_cast<int64_t>(d.max_query_len) * group, kAttentionRows), 1);
  const int32_t context = std::max(1, d.max_context_len);
  int32_t splits = 1;
  if (d.num_tokens <= split_token_limit) {
    // Aim for two blocks per SM, in splits of at least kAttentionMinPartition keys.
    const int64_t blocks = row_tiles * std::max(1, d.num_kv_heads) * std::max(1, d.num_seqs);
    const int64_t wanted = CeilDiv(2LL * limits.num_sms, blocks);
    const int64_t by_length = CeilDiv(context, kAttentionMinPartition);
    splits = static_cast<int32_t>(std::clamp<int64_t>(std::min(wanted, by_length), 1, kAttentionMaxSplits));
  }
  // Partitions are whole key tiles.
  plan.partition = static_cast<int32_t>(CeilDiv(CeilDiv(context, splits), kAttentionKeyTile) * kAttentionKeyTile);
  plan.num_splits = static_cast<int32_t>(CeilDiv(context, plan.partition));
  plan.main.grid_x = row_tiles;
  plan.main.grid_y = static_cast<int64_t>(std::max(1, d.num_kv_heads)) * plan.num_splits;
  plan.main.grid_z = std::max(1, d.num_seqs);
  plan.main.block = kAttentionWarps * 32;
  // q rows, a K tile padded by one float per row (conflict-free column reads), a V tile; as floats.
  const int64_t hd = d.head_dim;
  plan.main.shared_bytes = 4 * (kAttentionRows * hd + kAttentionKeyTile * (hd + 1) + kAttentionKeyTile * hd);
  plan.combine.grid_x = std::max(1, d.num_tokens);
  plan.combine.grid_y = std::max(1, d.num_heads);
  plan.combine.block = static_cast<int32_t>(std::clamp<int64_t>(CeilDiv(hd, 32) * 32, 32, 1024));
  return plan;
}

int64_t AttentionScratchFloats(const AttentionDims& d, const AttentionPlan& plan) {
  if (plan.num_splits <= 1) return 0;
  return static_cast<int64_t>(d.num_tokens) * d.num_heads * plan.num_splits * (d.head_dim + 2);
}

}  // namespace tandem::cuda
