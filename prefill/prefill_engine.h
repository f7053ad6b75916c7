// The prefill engine: a queue of prompts, batched under a token budget, run through the model on one
// engine thread; the first token is sampled and the prompt's KV blocks are kept under a lease until a
// decode worker has pulled them (Release), the request is cancelled, or the lease expires.
//
// It is also the KvSource of its worker: transports read leased blocks from their own threads (leased
// blocks are never written again, so that is safe while the engine runs other batches).
//
// Thread safety: every public method may be called from any thread. Completion callbacks run on the
// engine thread and must not block.
#ifndef TANDEM_PREFILL_PREFILL_ENGINE_H_
#define TANDEM_PREFILL_PREFILL_ENGINE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "worker/heartbeat.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kvtransfer/kv_transport.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/sampler.h"

namespace tandem {

struct PrefillEngineOptions {
  int64_t max_batch_tokens = 2048;          // prompt tokens per forward pass (a longer prompt runs alone)
  int32_t max_batch = 64;                   // prompts per forward pass
  absl::Duration default_lease = absl::Seconds(30);
  // A job may ask for a longer lease than the default, never longer than this: a lease pins KV blocks,
  // and an unbounded one lets any caller pin the pool (issue 11, item 2).
  absl::Duration max_lease = absl::Minutes(2);
  int32_t max_queue = 1024;                 // queued prompts before Submit refuses
  // Optional observer (metrics): after every successful forward pass, on the engine thread, with its
  // compute time, prompts and prompt tokens. Must be cheap and must not block or call the engine.
  std::function<void(absl::Duration compute, int32_t batch_requests, int64_t batch_tokens)> on_step = nullptr;
};

struct PrefillResult {
  int32_t first_token = 0;
  float first_logprob = 0.0f;  // with PrefillJob::logprobs
  std::string lease_id;
  int32_t num_tokens = 0;
  int64_t lease_ms = 0;
  double queue_ms = 0;
  double compute_ms = 0;
};

struct PrefillJob {
  std::string request_id;
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  bool logprobs = false;  // return the first token's log probability
  absl::Duration lease = absl::ZeroDuration();  // zero: the engine default
  // Set by the caller to abandon the job (the KV is freed instead of leased).
  std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
  std::function<void(absl::StatusOr<PrefillResult>)> done;
};

struct PrefillLoad {
  int32_t queued_requests = 0;
  int64_t queued_tokens = 0;
  int32_t running_requests = 0;
  int64_t running_tokens = 0;
  int32_t leases_held = 0;
  int32_t blocks_free = 0;
  int32_t blocks_total = 0;
  double recent_step_ms = 0;
};

class PrefillEngine : public KvSource {
 public:
  PrefillEngine(Model& model, KvCache& cache, KvLayout layout, const PrefillEngineOptions& options);
  ~PrefillEngine() override;

  // Validates (InvalidArgument naming the field, a lease above max_lease included; ResourceExhausted
  // when the queue is full or the prompt can never fit the cache) and queues the job; `done` is called exactly once, unless
  // Submit returns an error.
  absl::Status Submit(PrefillJob job);
  // Frees a lease's blocks. False when the lease is unknown (released or expired before).
  bool Release(const std::string& lease_id);
  PrefillLoad Load() const;
  // When the engine thread last came around its loop or finished a step (worker/heartbeat.h).
  absl::Time last_heartbeat() const { return heartbeat_.last(); }
  // Stops the engine thread; queued jobs complete with UNAVAILABLE, leases are freed.
  void Shutdown();

  // KvSource.
  absl::StatusOr<int32_t> LeaseTokens(const std::string& lease_id) override;
  const KvLayout& layout() const override { return layout_; }
  absl::Status ReadTokens(const std::string& lease_id, int32_t layer, int32_t token_begin,
                          int32_t num_tokens, void* k_out, void* v_out) override;

 private:
  Heartbeat heartbeat_;
  struct Queued {
    PrefillJob job;
    absl::Time enqueued;
  };
  struct Lease {
    std::vector<int32_t> blocks;
    int32_t num_tokens = 0;
    absl::Duration duration;
    absl::Time expires;
  };

  void Loop();
  void ExpireLeases(absl::Time now);  // mu_ held
  void FreeBlocks(const std::vector<int32_t>& blocks);

  Model& model_;
  KvCache& cache_;
  const KvLayout layout_;
  const PrefillEngineOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Queued> queue_;
  int64_t queued_tokens_ = 0;
  std::map<std::string, Lease> leases_;
  int32_t running_requests_ = 0;
  int64_t running_tokens_ = 0;
  double recent_step_ms_ = 0;

  bool stop_ = false;
  std::thread thread_;
};

}  // namespace tandem

#endif  // TANDEM_PREFILL_PREFILL_ENGINE_H_
