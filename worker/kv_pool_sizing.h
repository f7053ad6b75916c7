// How many KV blocks a worker's pool gets: the arithmetic, separate from any device so it is tested on
// the host.
//
// On a device backend the pool is what is left of `gpu_memory_fraction` of the device once this
// worker's weights, workspaces and scratch are in place (vLLM's gpu_memory_utilization): with total T
// and A bytes allocated by this worker, the pool gets T * fraction - A, and never more than the free
// memory less a margin for the CUDA context and libraries (other processes, such as the other workers
// of a `tandem up` on the same GPU, hold the rest). On the CPU it is --kv-cache-mb. Either way the pool
// must hold at least one full context; anything less is refused at start with the numbers.
#ifndef TANDEM_WORKER_KV_POOL_SIZING_H_
#define TANDEM_WORKER_KV_POOL_SIZING_H_

#include <cstdint>

#include "absl/status/statusor.h"

namespace tandem {

struct KvPoolRequest {
  int64_t block_bytes = 0;         // K and V of one block across all layers
  int64_t blocks_needed = 0;       // one full context
  int32_t block_size = 0;          // tokens per block (for messages)
  int64_t max_context = 0;         // tokens (for messages)
  // Exactly one of the two sizes applies.
  int64_t kv_cache_mb = 0;         // > 0: a fixed pool (CPU, or a device when asked for)
  double gpu_memory_fraction = 0;  // with the device's memory after loading
  int64_t device_total_bytes = 0;
  int64_t device_free_bytes = 0;
  int64_t allocated_bytes = 0;     // by this worker
};

// Device memory left free beyond the KV pool for the CUDA context, cuBLAS and the like.
inline constexpr int64_t kDeviceMemoryMargin = int64_t{512} << 20;

// The number of blocks, or InvalidArgument naming the flag and the numbers. Capped at INT32_MAX blocks.
absl::StatusOr<int32_t> KvPoolBlocks(const KvPoolRequest& request);

}  // namespace tandem

#endif  // TANDEM_WORKER_KV_POOL_SIZING_H_
