#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tandem {

BlockAllocator::BlockAllocator(int32_t num_blocks) : num_total_(num_blocks), allocated_(num_blocks) {
  free_.reserve(num_blocks);
  // Hand out low ids first: block 0 on top of the stack.
  for (int32_t id = num_blocks - 1; id >= 0; --id) free_.push_back(id);
}

absl::StatusOr<std::vector<int32_t>> BlockAllocator::Allocate(int32_t count) {
  std::lock_guard<std::mutex> lock(mu_);
  if (count < 0) return absl::InvalidArgumentError(absl::StrCat("Allocate: negative count ", count));
  if (count > static_cast<int32_t>(free_.size())) {
    return absl::ResourceExhaustedError(absl::StrCat("KV cache: ", count, " blocks wanted, ", free_.size(),
                                                     " of ", num_total_, " free"));
  }
  std::vector<int32_t> out(free_.end() - count, free_.end());
  free_.resize(free_.size() - count);
  for (int32_t id : out) allocated_[id] = true;
  return out;
}

absl::Status BlockAllocator::Free(const std::vector<int32_t>& blocks) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<bool> seen(num_total_);
  for (int32_t id : blocks) {
    if (id < 0 || id >= num_total_ || !allocated_[id] || seen[id]) {
      return absl::FailedPreconditionError(absl::StrCat("KV cache: block ", id, " is not allocated"));
    }
    seen[id] = true;
  }
  for (int32_t id : blocks) {
    allocated_[id] = false;
    free_.push_back(id);
  }
  return absl::OkStatus();
}

int32_t BlockAllocator::num_free() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int32_t>(free_.size());
}

absl::Status KvCache::CheckCanHold(int64_t num_tokens, absl::string_view what, absl::string_view worker) {
  const int32_t need = BlocksForTokens(num_tokens, spec_.block_size);
  if (need <= allocator_.num_total()) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat(what, " needs ", need, " KV blocks; this ", worker, " has ", allocator_.num_total()));
}

absl::StatusOr<std::unique_ptr<KvCache>> KvCache::Create(Backend& backend, const KvCacheSpec& spec) {
  if (spec.num_layers <= 0 || spec.num_kv_heads <= 0 || spec.head_dim <= 0 || spec.block_size <= 0 ||
      spec.num_blocks <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV cache spec: layers ", spec.num_layers, ", kv heads ", spec.num_kv_heads, ", head_dim ",
        spec.head_dim, ", block_size ", spec.block_size, ", blocks ", spec.num_blocks, " must all be > 0"));
  }
  std::unique_ptr<KvCache> cache(new KvCache(backend, spec));
  const std::vector<int64_t> shape = {spec.num_blocks, spec.block_size, spec.num_kv_heads, spec.head_dim};
  const int64_t bytes = spec.bytes_per_block_per_layer() * spec.num_blocks;
  for (int i = 0; i < spec.num_layers; ++i) {
    LayerKv layer;
    for (Tensor* t : {&layer.k, &layer.v}) {
      TANDEM_ASSIGN_OR_RETURN(auto buffer, backend.Allocate(bytes));
      *t = Tensor{buffer->data(), spec.dtype, shape};
      cache->buffers_.push_back(std::move(buffer));
    }
    cache->layers_.push_back(layer);
  }
  return cache;
}

absl::Status KvCache::ForEachRun(const std::vector<int32_t>& blocks, int32_t layer, int32_t token_begin,
                                 int32_t num_tokens,
                                 const std::function<absl::Status(int64_t, int64_t, int64_t)>& fn) const {
  const int64_t end = static_cast<int64_t>(token_begin) + num_tokens;
  if (layer < 0 || layer >= spec_.num_layers || token_begin < 0 || num_tokens < 0 ||
      end > static_cast<int64_t>(blocks.size()) * spec_.block_size) {
    return absl::InvalidArgumentError(absl::StrCat("KV cache: layer ", layer, " tokens [", token_begin, ", ", end,
                                                   ") outside ", blocks.size(), " blocks of ", spec_.block_size));
  }
  const int64_t token_bytes = static_cast<int64_t>(spec_.num_kv_heads) * spec_.head_dim * DTypeSize(spec_.dtype);
  for (int64_t t = token_begin; t < end;) {
    const int64_t block = t / spec_.block_size, offset = t % spec_.block_size;
    const int64_t run = std::min<int64_t>(spec_.block_size - offset, end - t);
    const int32_t id = blocks[block];
    if (id < 0 || id >= spec_.num_blocks) {
      return absl::InvalidArgumentError(absl::StrCat("KV cache: block id ", id, " out of range"));
    }
    TANDEM_RETURN_IF_ERROR(fn((static_cast<int64_t>(id) * spec_.block_size + offset) * token_bytes,
                              (t - token_begin) * token_bytes, run * token_bytes));
    t += run;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<KvCache::Copier>> KvCache::AcquireCopier(int64_t staging_bytes) const {
  std::unique_ptr<Copier> copier;
  {
    std::lock_guard<std::mutex> lock(copiers_mu_);
    if (!copiers_.empty()) {
      copier = std::move(copiers_.back());
      copiers_.pop_back();
    }
  }
  if (!copier) {
    copier = std::make_unique<Copier>();
    TANDEM_ASSIGN_OR_RETURN(copier->stream, backend_.NewStream());
  }
  if (!copier->staging || copier->staging->size() < staging_bytes) {
    copier->staging.reset();
    TANDEM_ASSIGN_OR_RETURN(copier->staging, backend_.AllocateHost(staging_bytes));
  }
  return copier;
}

void KvCache::ReleaseCopier(std::unique_ptr<Copier> copier) const {
  std::lock_guard<std::mutex> lock(copiers_mu_);
  copiers_.push_back(std::move(copier));
}

absl::Status KvCache::ReadTokens(const std::vector<int32_t>& blocks, int32_t layer, int32_t token_begin,
                                 int32_t num_tokens, void* k_out, void* v_out) const {
  const LayerKv& kv = layers_[std::clamp(layer, 0, spec_.num_layers - 1)];
  if (backend_.host_memory()) {
    return ForEachRun(blocks, layer, token_begin, num_tokens, [&](int64_t dev, int64_t host, int64_t bytes) {
      std::memcpy(static_cast<char*>(k_out) + host, static_cast<const char*>(kv.k.data) + dev, bytes);
      std::memcpy(static_cast<char*>(v_out) + host, static_cast<const char*>(kv.v.data) + dev, bytes);
      return absl::OkStatus();
    });
  }
  // Device: every run into page-locked staging on this call's own stream, one wait, then out.
  const int64_t half = static_cast<int64_t>(num_tokens) * spec_.num_kv_heads * spec_.head_dim * DTypeSize(spec_.dtype);
  TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<Copier> copier, AcquireCopier(2 * std::max<int64_t>(half, 1)));
  char* staging = static_cast<char*>(copier->staging->data());
  absl::Status status = ForEachRun(blocks, layer, token_begin, num_tokens, [&](int64_t dev, int64_t host, int64_t bytes) {
    TANDEM_RETURN_IF_ERROR(backend_.CopyAsync(staging + host, static_cast<const char*>(kv.k.data) + dev, bytes,
                                              *copier->stream));
    return backend_.CopyAsync(staging + half + host, static_cast<const char*>(kv.v.data) + dev, bytes,
                              *copier->stream);
  });
  absl::Status synced = backend_.SynchronizeStream(*copier->stream);
  if (status.ok()) status = synced;
  if (status.ok()) {
    std::memcpy(k_out, staging, half);
    std::memcpy(v_out, staging + half, half);
  }
  ReleaseCopier(std::move(copier));
  return status;
}

absl::Status KvCache::WriteTokens(const std::vector<int32_t>& blocks, int32_t layer, int32_t token_begin,
                                  int32_t num_tokens, const void* k, const void* v) {
  const LayerKv& kv = layers_[std::clamp(layer, 0, spec_.num_layers - 1)];
  if (backend_.host_memory()) {
    return ForEachRun(blocks, layer, token_begin, num_tokens, [&](int64_t dev, int64_t host, int64_t bytes) {
      std::memcpy(static_cast<char*>(kv.k.data) + dev, static_cast<const char*>(k) + host, bytes);
      std::memcpy(static_cast<char*>(kv.v.data) + dev, static_cast<const char*>(v) + host, bytes);
      return absl::OkStatus();
    });
  }
  const int64_t half = static_cast<int64_t>(num_tokens) * spec_.num_kv_heads * spec_.head_dim * DTypeSize(spec_.dtype);
  TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<Copier> copier, AcquireCopier(2 * std::max<int64_t>(half, 1)));
  char* staging = static_cast<char*>(copier->staging->data());
  std::memcpy(staging, k, half);
  std::memcpy(staging + half, v, half);
  absl::Status status = ForEachRun(blocks, layer, token_begin, num_tokens, [&](int64_t dev, int64_t host, int64_t bytes) {
    TANDEM_RETURN_IF_ERROR(backend_.CopyAsync(static_cast<char*>(kv.k.data) + dev, staging + host, bytes,
                                              *copier->stream));
    return backend_.CopyAsync(static_cast<char*>(kv.v.data) + dev, staging + half + host, bytes, *copier->stream);
  });
  // Wait even after an error: the staging memory goes back to the pool only when nothing reads it.
  absl::Status synced = backend_.SynchronizeStream(*copier->stream);
  if (status.ok()) status = synced;
  ReleaseCopier(std::move(copier));
  return status;
}

}  // namespace tandem
