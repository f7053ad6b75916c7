#include "worker/kv_pool_sizing.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tandem {
namespace {

std::string Mib(int64_t bytes) { return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20)); }

}  // namespace

absl::StatusOr<int32_t> KvPoolBlocks(const KvPoolRequest& r) {
  if (r.block_bytes <= 0) return absl::InvalidArgumentError("KV pool: block size in bytes must be > 0");
  const std::string one_context =
      absl::StrCat("one full context of ", r.max_context, " tokens needs ", r.blocks_needed, " blocks of ",
                   r.block_size, " tokens (", Mib(r.blocks_needed * r.block_bytes), ")");
  int64_t blocks = 0;
  if (r.kv_cache_mb > 0) {
    blocks = r.kv_cache_mb * (int64_t{1} << 20) / r.block_bytes;
    if (blocks < r.blocks_needed) {
      return absl::InvalidArgumentError(absl::StrCat("--kv-cache-mb ", r.kv_cache_mb, " holds ", blocks,
                                                     " blocks of ", r.block_size, " tokens (", r.block_bytes,
                                                     " bytes each); ", one_context));
    }
  } else {
    if (!(r.gpu_memory_fraction > 0 && r.gpu_memory_fraction <= 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--gpu-memory-fraction must be in (0, 1], got ", r.gpu_memory_fraction));
    }
    const int64_t budget = static_cast<int64_t>(std::floor(static_cast<double>(r.device_total_bytes) *
                                                           r.gpu_memory_fraction));
    const int64_t by_fraction = budget - r.allocated_bytes;
    const int64_t by_free = r.device_free_bytes - kDeviceMemoryMargin;
    const int64_t left = std::min(by_fraction, by_free);
    blocks = left > 0 ? left / r.block_bytes : 0;
    if (blocks < r.blocks_needed) {
      const std::string why =
          by_fraction <= by_free
              ? absl::StrCat("--gpu-memory-fraction ", r.gpu_memory_fraction, " of ", Mib(r.device_total_bytes),
                             " is ", Mib(budget), "; this worker's weights, workspaces and scratch take ",
                             Mib(r.allocated_bytes), ", leaving ", Mib(std::max<int64_t>(by_fraction, 0)))
              : absl::StrCat("the device has ", Mib(r.device_free_bytes), " free of ", Mib(r.device_total_bytes),
                             " (other processes hold the rest); less a ", Mib(kDeviceMemoryMargin),
                             " margin that leaves ", Mib(std::max<int64_t>(by_free, 0)));
      return absl::InvalidArgumentError(
          absl::StrCat(why, " for KV (", blocks, " blocks); ", one_context,
                       ": raise --gpu-memory-fraction, lower --max-context, or free the device"));
    }
  }
  return static_cast<int32_t>(std::min<int64_t>(blocks, std::numeric_limits<int32_t>::max()));
}

}  // namespace tandem
