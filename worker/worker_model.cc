#include "worker/worker_model.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "backend/registry.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "model/fingerprint.h"
#include "worker/kv_pool_sizing.h"

namespace tandem {

absl::Status ReadinessCanary(Model& model, KvCache& cache) {
  absl::StatusOr<std::vector<int32_t>> blocks = cache.allocator().Allocate(1);
  if (!blocks.ok()) return absl::FailedPreconditionError(absl::StrCat("readiness canary: ", blocks.status().message()));
  const std::vector<int64_t>& bos = model.config().bos_token_ids;
  const std::vector<int32_t> token = {bos.empty() ? 0 : static_cast<int32_t>(bos.front())};
  absl::StatusOr<std::vector<float>> logits = model.Forward({{token, 0, *blocks}}, cache);
  TANDEM_RETURN_IF_ERROR(cache.allocator().Free(*blocks));
  if (!logits.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("readiness canary: a 1-token step failed: ", logits.status().message()));
  }
  int64_t bad = 0;
  for (float v : *logits) bad += !std::isfinite(v);
  if (bad > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "readiness canary: a 1-token step gave ", bad, " non-finite logits of ", logits->size(),
        " (NaN or Inf in the checkpoint's weights, or a broken backend); refusing to serve"));
  }
  return absl::OkStatus();
}

absl::StatusOr<WorkerModel> LoadWorkerModel(const WorkerModelOptions& options) {
  if (options.model_dir.empty()) return absl::InvalidArgumentError("--model is required");
  if (options.block_size < 1 || options.block_size > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("--block-size must be in [1, 1024], got ", options.block_size));
  }
  if (options.kv_cache_mb < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--kv-cache-mb must be >= 0, got ", options.kv_cache_mb));
  }
  WorkerModel w;
  BackendOptions backend_options;
  backend_options.name = options.backend;
  backend_options.num_threads = options.num_threads;
  backend_options.device = options.device;
  backend_options.dtype = options.dtype;
  backend_options.batch_invariant = options.batch_invariant;
  TANDEM_ASSIGN_OR_RETURN(w.backend, MakeBackend(backend_options));
  ModelLoadOptions load;
  load.max_context = options.max_context;
  load.max_batch_tokens = options.max_batch_tokens;
  load.max_seqs = options.max_seqs;
  TANDEM_ASSIGN_OR_RETURN(w.model, Model::Load(options.model_dir, *w.backend, load));

  const KvCacheSpec per_block = w.model->MakeKvSpec(options.block_size, 1);
  KvPoolRequest pool;
  pool.block_bytes = per_block.bytes_per_block_per_layer() * 2 * per_block.num_layers;
  pool.blocks_needed = BlocksForTokens(w.model->max_context(), options.block_size);
  pool.block_size = options.block_size;
  pool.max_context = w.model->max_context();
  pool.kv_cache_mb = options.kv_cache_mb;
  pool.gpu_memory_fraction = options.gpu_memory_fraction;
  if (options.kv_cache_mb == 0) {
    absl::StatusOr<DeviceMemoryInfo> memory = w.backend->MemoryInfo();
    if (absl::IsUnimplemented(memory.status())) {
      pool.kv_cache_mb = 256;  // host memory: a fixed default
    } else {
      TANDEM_RETURN_IF_ERROR(memory.status());
      pool.device_total_bytes = memory->total_bytes;
      pool.device_free_bytes = memory->free_bytes;
      pool.allocated_bytes = memory->allocated_bytes;
    }
  }
  TANDEM_ASSIGN_OR_RETURN(const int32_t num_blocks, KvPoolBlocks(pool));
  TANDEM_ASSIGN_OR_RETURN(w.cache, KvCache::Create(*w.backend, w.model->MakeKvSpec(options.block_size, num_blocks)));
  TANDEM_LOG(INFO, "worker") << "loaded " << options.model_dir << " on " << w.backend->name() << ": weights "
                             << (w.model->weight_bytes() >> 20) << " MiB, workspaces "
                             << (w.model->workspace_bytes() >> 20) << " MiB, KV pool " << num_blocks
                             << " blocks of " << options.block_size << " tokens ("
                             << ((static_cast<int64_t>(num_blocks) * pool.block_bytes) >> 20) << " MiB)";
  TANDEM_RETURN_IF_ERROR(ReadinessCanary(*w.model, *w.cache));
  TANDEM_ASSIGN_OR_RETURN(w.layout.model_fingerprint, ModelFingerprint(options.model_dir));
  w.layout.num_layers = per_block.num_layers;
  w.layout.num_kv_heads = per_block.num_kv_heads;
  w.layout.head_dim = per_block.head_dim;
  w.layout.dtype = per_block.dtype;
  return w;
}

}  // namespace tandem
