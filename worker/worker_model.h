// What every worker daemon (prefill or decode) loads at start: a backend, the model, a KV pool sized
// from a memory budget, and the KV layout it exchanges with its peers.
#ifndef TANDEM_WORKER_WORKER_MODEL_H_
#define TANDEM_WORKER_WORKER_MODEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "backend/backend.h"
#include "kvtransfer/kv_transport.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace tandem {

struct WorkerModelOptions {
  std::string model_dir;
  std::string backend = "cpu";
  int num_threads = 0;        // CPU backend threads; 0: all hardware threads
  int32_t block_size = 16;
  // KV pool size in MiB; 0: 256 MiB on the CPU, gpu_memory_fraction on a device (worker/kv_pool_sizing.h).
  int64_t kv_cache_mb = 0;
  int64_t max_context = 0;    // 0: the model's max_position_embeddings
  int device = 0;             // device backends: ordinal
  std::string dtype;          // device backends: "bfloat16" (default), "float16" or "float32"
  bool batch_invariant = false;  // BackendOptions::batch_invariant
  double gpu_memory_fraction = 0.9;
  // The engine's largest step (sizes the model's fixed workspaces).
  int64_t max_batch_tokens = 2048;
  int32_t max_seqs = 256;
};

// RELIABILITY H4 (readiness): one 1-token step (BOS, or token 0) through `model` before a worker
// reports SERVING; FailedPrecondition when it fails or gives a non-finite logit, so that a worker that
// cannot serve a real request never joins the pool. Not counted in any metric (it runs before the
// engine exists); its KV block goes back.
absl::Status ReadinessCanary(Model& model, KvCache& cache);

struct WorkerModel {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<KvCache> cache;
  KvLayout layout;
};

absl::StatusOr<WorkerModel> LoadWorkerModel(const WorkerModelOptions& options);

}  // namespace tandem

#endif  // TANDEM_WORKER_WORKER_MODEL_H_
