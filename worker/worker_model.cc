#include "worker/worker_model.h"

#include "absl/strings/str_cat.h"
#include "backend/registry.h"
#include "common/status_macros.h"
#include "model/fingerprint.h"

namespace tandem {

absl::StatusOr<WorkerModel> LoadWorkerModel(const WorkerModelOptions& options) {
  if (options.model_dir.empty()) return absl::InvalidArgumentError("--model is required");
  if (options.block_size < 1 || options.block_size > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("--block-size must be in [1, 1024], got ", options.block_size));
  }
  WorkerModel w;
  TANDEM_ASSIGN_OR_RETURN(w.backend, MakeBackend({.name = options.backend, .num_threads = options.num_threads}));
  TANDEM_ASSIGN_OR_RETURN(w.model, Model::Load(options.model_dir, *w.backend, {.max_context = options.max_context}));
  const KvCacheSpec per_block = w.model->MakeKvSpec(options.block_size, 1);
  const int64_t block_bytes = per_block.bytes_per_block_per_layer() * 2 * per_block.num_layers;
  const int64_t num_blocks = options.kv_cache_mb * (1 << 20) / block_bytes;
  const int64_t needed = BlocksForTokens(w.model->max_context(), options.block_size);
  if (num_blocks < needed) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--kv-cache-mb ", options.kv_cache_mb, " holds ", num_blocks, " blocks of ", options.block_size,
        " tokens (", block_bytes, " bytes each); one full context of ", w.model->max_context(),
        " tokens needs ", needed, " (", (needed * block_bytes + (1 << 20) - 1) >> 20, " MB)"));
  }
  TANDEM_ASSIGN_OR_RETURN(w.cache, KvCache::Create(*w.backend, w.model->MakeKvSpec(options.block_size,
                                                                                  static_cast<int32_t>(num_blocks))));
  TANDEM_ASSIGN_OR_RETURN(w.layout.model_fingerprint, ModelFingerprint(options.model_dir));
  w.layout.num_layers = per_block.num_layers;
  w.layout.num_kv_heads = per_block.num_kv_heads;
  w.layout.head_dim = per_block.head_dim;
  w.layout.dtype = per_block.dtype;
  return w;
}

}  // namespace tandem
