// The decode engine: continuous batching over sequences whose prompt KV was computed elsewhere.
//
// A submitted job waits for admission; it is admitted only when the KV blocks for its prompt plus
// max_tokens are free (worst-case reservation: a running sequence never waits for memory and the engine
// cannot deadlock, RELIABILITY.md O3). Its prompt KV is then pulled through the KvTransport into those
// reserved blocks on a transfer thread while the engine keeps stepping; `release` acknowledges the
// source so its lease is freed. Then the sequence joins the running batch at the next step; every step
// advances every running sequence by one token; finished and cancelled sequences leave and free their
// blocks at once.
//
// Thread safety: public methods may be called from any thread. Job callbacks run on the engine or a
// transfer thread and must not block.
#ifndef TANDEM_DECODE_DECODE_ENGINE_H_
#define TANDEM_DECODE_DECODE_ENGINE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
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

struct DecodeEngineOptions {
  int32_t max_batch = 256;
  int32_t max_queue = 1024;
  int32_t transfer_threads = 4;
  absl::Duration transfer_timeout = absl::Seconds(5);  // RELIABILITY.md F2/F7
  // Optional observers (metrics); cheap, must not block or call the engine. on_step: after every
  // successful step, on the engine thread, with its time and batch size (one new token per sequence).
  // on_transfer: after every KV pull, on its transfer thread, with the result and the time it took.
  std::function<void(absl::Duration step, int32_t batch_size)> on_step = nullptr;
  std::function<void(const absl::StatusOr<PullStats>& pull, absl::Duration elapsed)> on_transfer = nullptr;
};

struct DecodeSummary {
  std::string finish_reason;  // "length" or "stop"
  int32_t generated = 0;      // tokens, counting the first
  double queue_ms = 0;        // submit -> admitted (blocks reserved)
  double transfer_ms = 0;
  double compute_ms = 0;      // joined the batch -> finished
};

struct DecodeJob {
  std::string request_id;
  std::vector<int32_t> prompt;
  int32_t first_token = 0;
  KvHandle kv;
  SamplingParams sampling;
  int32_t max_tokens = 1;  // counting the first token
  std::vector<int32_t> stop_token_ids;
  std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
  bool logprobs = false;  // pass each token's log probability to on_tokens
  int32_t rng_draws_used = 1;  // draws of the sampling stream the tokens up to first_token consumed
  // New tokens (never the first one), with their log probabilities when asked for (else empty); called
  // in order.
  std::function<void(std::vector<int32_t> tokens, std::vector<float> logprobs)> on_tokens;
  // Called exactly once at the end (unless Submit fails): OK with the summary, or the error.
  std::function<void(absl::Status, DecodeSummary)> on_done;
};

struct DecodeLoad {
  int32_t queued_requests = 0;  // waiting for blocks or for their KV
  int32_t running_requests = 0;
  int64_t running_context_tokens = 0;
  int32_t blocks_free = 0;
  int32_t blocks_total = 0;
  double recent_step_ms = 0;
};

class DecodeEngine {
 public:
  // `release` is called after every pull attempt to let the source free its lease.
  using ReleaseFn = std::function<void(const KvHandle&)>;

  DecodeEngine(Model& model, KvCache& cache, KvLayout layout, KvTransport& transport, ReleaseFn release,
               const DecodeEngineOptions& options);
  ~DecodeEngine();

  // InvalidArgument naming the field, FailedPrecondition on a KV layout mismatch, ResourceExhausted when
  // the queue is full or the request can never fit this worker's cache.
  absl::Status Submit(DecodeJob job);
  DecodeLoad Load() const;
  // When the engine thread last came around its loop or finished a step (worker/heartbeat.h).
  absl::Time last_heartbeat() const { return heartbeat_.last(); }
  // Stops the engine; unfinished jobs end with UNAVAILABLE and free their blocks.
  void Shutdown();

 private:
  Heartbeat heartbeat_;
  struct Sequence;

  void Loop();
  void TransferLoop();
  void Finish(std::unique_ptr<Sequence> seq, absl::Status status);

  Model& model_;
  KvCache& cache_;
  const KvLayout layout_;
  KvTransport& transport_;
  ReleaseFn release_;
  const DecodeEngineOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;           // engine thread
  std::condition_variable transfer_cv_;  // transfer threads
  std::deque<std::unique_ptr<Sequence>> waiting_;     // not yet admitted
  std::deque<std::unique_ptr<Sequence>> to_transfer_; // admitted, KV not pulled yet
  std::deque<std::unique_ptr<Sequence>> ready_;       // KV in place, joins at the next step
  int32_t transferring_ = 0;
  int32_t running_count_ = 0;
  int64_t running_context_ = 0;
  double recent_step_ms_ = 0;
  uint64_t wake_ = 0;  // bumped by Submit and by freed blocks
  bool stop_ = false;
  std::thread thread_;
  std::vector<std::thread> transfer_threads_;
};

}  // namespace tandem

#endif  // TANDEM_DECODE_DECODE_ENGINE_H_
