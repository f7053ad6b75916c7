// The paged KV cache: a pool of fixed-size blocks per layer and the allocator that hands them out.
//
// Storage (per layer, owned here, allocated through the Backend):
//   k, v: [num_blocks, block_size, num_kv_heads, head_dim]
// A sequence owns a block table (block ids in order); token t of the sequence lives in block
// table[t / block_size] at offset t % block_size. Attention reads KV only through block tables.
//
// Thread safety: BlockAllocator is internally synchronized (the prefill and decode engines free blocks
// from RPC threads). KvCache storage is written by the engine thread's steps, and read or written by KV
// transfers through ReadTokens / WriteTokens from any thread: those copy on a transfer stream of the
// backend (never the engine's), staged through page-locked host memory on a device backend.
#ifndef TANDEM_MODEL_KV_CACHE_H_
#define TANDEM_MODEL_KV_CACHE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/backend.h"
#include "batching/admission.h"

namespace tandem {

struct KvCacheSpec {
  int32_t num_layers = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t block_size = 16;
  int32_t num_blocks = 0;
  DType dtype = DType::kF32;

  // Bytes of K and V for one token across all layers.
  int64_t bytes_per_token() const {
    return 2LL * num_layers * num_kv_heads * head_dim * DTypeSize(dtype);
  }
  int64_t bytes_per_block_per_layer() const {  // K or V alone
    return static_cast<int64_t>(block_size) * num_kv_heads * head_dim * DTypeSize(dtype);
  }
};

class BlockAllocator {
 public:
  explicit BlockAllocator(int32_t num_blocks);

  // All-or-nothing: ResourceExhausted (with the counts) when fewer than `count` blocks are free.
  absl::StatusOr<std::vector<int32_t>> Allocate(int32_t count);
  // Returns blocks to the pool. Freeing a block that is not allocated is a bug and is refused with
  // FailedPrecondition (nothing is freed then).
  absl::Status Free(const std::vector<int32_t>& blocks);

  int32_t num_free() const;
  int32_t num_total() const { return num_total_; }

 private:
  mutable std::mutex mu_;
  const int32_t num_total_;
  std::vector<int32_t> free_;       // stack of free ids
  std::vector<bool> allocated_;     // [num_total]
};

// Blocks needed to hold `num_tokens` tokens.
inline int32_t BlocksForTokens(int64_t num_tokens, int32_t block_size) {
  return static_cast<int32_t>((num_tokens + block_size - 1) / block_size);
}

class KvCache {
 public:
  static absl::StatusOr<std::unique_ptr<KvCache>> Create(Backend& backend, const KvCacheSpec& spec);

  const KvCacheSpec& spec() const { return spec_; }
  const LayerKv& layer(int i) const { return layers_[i]; }
  BlockAllocator& allocator() { return allocator_; }
  // The pool as the admission policies see it (batching/admission.h): block size, total and free blocks now.
  batching::KvPool AdmissionPool() const {
    return {.block_size = spec_.block_size, .total_blocks = allocator_.num_total(), .free_blocks = allocator_.num_free()};
  }
  // ResourceExhausted "<what> needs N KV blocks; this <worker> has M" when `num_tokens` tokens can never
  // fit the whole pool (admission would wait forever); OK otherwise.
  absl::Status CheckCanHold(int64_t num_tokens, absl::string_view what, absl::string_view worker);

  // Copy K and V of tokens [token_begin, token_begin + num_tokens) of one sequence (its block table is
  // `blocks`) of one layer between the cache and token-major host buffers, each
  // [num_tokens, num_kv_heads, head_dim]. InvalidArgument when the range is outside the blocks. Used by
  // KV transfer: safe on any thread as long as nobody else touches those blocks meanwhile (the step
  // that wrote blocks being read has completed; blocks being written join a step only after the call
  // returned). Each call takes a transfer stream and its staging memory from a pool, so concurrent
  // calls do not wait for each other.
  absl::Status ReadTokens(const std::vector<int32_t>& blocks, int32_t layer, int32_t token_begin,
                          int32_t num_tokens, void* k_out, void* v_out) const;
  absl::Status WriteTokens(const std::vector<int32_t>& blocks, int32_t layer, int32_t token_begin,
                           int32_t num_tokens, const void* k, const void* v);

 private:
  // A transfer stream of the backend with page-locked staging memory (device backends only).
  struct Copier {
    std::unique_ptr<Stream> stream;
    std::unique_ptr<DeviceBuffer> staging;
  };

  KvCache(Backend& backend, const KvCacheSpec& spec)
      : backend_(backend), spec_(spec), allocator_(spec.num_blocks) {}
  absl::StatusOr<std::unique_ptr<Copier>> AcquireCopier(int64_t staging_bytes) const;
  void ReleaseCopier(std::unique_ptr<Copier> copier) const;
  // Calls fn(device offset in bytes, host offset in bytes, bytes) for each run of consecutive tokens.
  absl::Status ForEachRun(const std::vector<int32_t>& blocks, int32_t layer, int32_t token_begin,
                          int32_t num_tokens,
                          const std::function<absl::Status(int64_t, int64_t, int64_t)>& fn) const;

  Backend& backend_;
  KvCacheSpec spec_;
  BlockAllocator allocator_;
  std::vector<std::unique_ptr<DeviceBuffer>> buffers_;
  std::vector<LayerKv> layers_;
  mutable std::mutex copiers_mu_;
  mutable std::vector<std::unique_ptr<Copier>> copiers_;  // idle ones
};

}  // namespace tandem

#endif  // TANDEM_MODEL_KV_CACHE_H_
