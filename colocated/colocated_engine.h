// The colocated engine: one continuous batch that takes new prompts and decode steps together, the
// one-GPU server's engine (vLLM, SGLang, TGI run this way) and the baseline every disaggregation claim
// is measured against.
//
// Each step is planned by the shared colocated batch policy (batching/colocated_batching.h): every
// running decode gets its one token, the rest of the step's token budget goes to prompt chunks (a long
// prompt is prefilled over several steps, so running decodes keep their pace), admission is FCFS with
// the worst case (prompt + max_tokens) reserved. A prompt's KV stays where it was written: no transfer.
// The step that runs a prompt's last chunk samples its first token; from then on it decodes.
//
// Thread safety: public methods may be called from any thread. Job callbacks run on the engine thread
// and must not block.
#ifndef TANDEM_COLOCATED_COLOCATED_ENGINE_H_
#define TANDEM_COLOCATED_COLOCATED_ENGINE_H_

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
#include "batching/colocated_batching.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/sampler.h"

namespace tandem {

// What one step ran (the step timeline: tests check pacing on it, metrics count it).
struct ColocatedStepInfo {
  int64_t index = 0;            // steps run so far, counting this one, from 1
  absl::Duration elapsed;       // the forward pass and sampling
  int32_t decode = 0;           // sequences that decoded one token
  int32_t prefill_seqs = 0;     // sequences that ran a prompt chunk
  int64_t prefill_tokens = 0;   // prompt tokens in those chunks
  int32_t first_tokens = 0;     // prompts that finished in this step (sampled their first token)
  std::vector<std::string> decode_ids;   // request ids of the decoding sequences, in batch order
  std::vector<std::string> prefill_ids;  // ... of the chunked ones
};

struct ColocatedEngineOptions {
  int32_t max_batch = 256;
  int64_t step_token_budget = 512;
  int32_t max_queue = 1024;
  // Tests: Submit queues, nothing is stepped until Resume() (a whole workload can be queued first).
  bool start_paused = false;
  // Optional observer (metrics, tests): after every successful step, on the engine thread. Must be cheap
  // and must not block or call the engine.
  std::function<void(const ColocatedStepInfo&)> on_step = nullptr;
};

struct ColocatedSummary {
  std::string finish_reason;  // "length" or "stop"
  int32_t generated = 0;      // tokens, counting the first
  double queue_ms = 0;        // submit -> admitted (blocks reserved)
  double prefill_ms = 0;      // admitted -> first token
  double decode_ms = 0;       // first token -> finished
  int32_t prefill_steps = 0;  // steps the prompt was spread over
};

struct ColocatedJob {
  std::string request_id;
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int32_t max_tokens = 1;  // counting the first token
  std::vector<int32_t> stop_token_ids;
  std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
  bool logprobs = false;
  // Draws of the request's random stream already consumed (a request resumed after a failure: the prompt
  // holds the original prompt plus the tokens streamed so far, which used this many draws). 0: fresh.
  int32_t rng_draws_used = 0;
  // New tokens, the first one included, with their log probabilities when asked for; called in order.
  std::function<void(std::vector<int32_t> tokens, std::vector<float> logprobs)> on_tokens;
  // Called exactly once at the end (unless Submit fails).
  std::function<void(absl::Status, ColocatedSummary)> on_done;
};

struct ColocatedLoad {
  int32_t queued_requests = 0;    // waiting for admission
  int64_t queued_tokens = 0;      // their prompt tokens plus the admitted prompts' unprefilled ones
  int32_t prefilling_requests = 0;
  int32_t running_requests = 0;   // decoding
  int64_t running_context_tokens = 0;
  int32_t blocks_free = 0;
  int32_t blocks_total = 0;
  double recent_step_ms = 0;
  int64_t step_token_budget = 0;
};

class ColocatedEngine {
 public:
  // InvalidArgument when options are invalid (the flag's name in the message).
  static absl::StatusOr<std::unique_ptr<ColocatedEngine>> Create(Model& model, KvCache& cache,
                                                                 const ColocatedEngineOptions& options);
  ~ColocatedEngine();

  // InvalidArgument naming the field; ResourceExhausted when the queue is full or the request can never
  // fit this worker's cache; Unavailable while shutting down.
  absl::Status Submit(ColocatedJob job);
  ColocatedLoad Load() const;
  // When the engine thread last came around its loop or finished a step (worker/heartbeat.h).
  absl::Time last_heartbeat() const { return heartbeat_.last(); }
  void Resume();  // after start_paused
  // Stops the engine; unfinished jobs end with UNAVAILABLE and free their blocks.
  void Shutdown();

 private:
  Heartbeat heartbeat_;
  struct Sequence;
  ColocatedEngine(Model& model, KvCache& cache, const ColocatedEngineOptions& options,
                  const batching::ColocatedBatchOptions& batch_options);
  void Loop();
  void Finish(std::unique_ptr<Sequence> seq, absl::Status status);
  // After a token was appended: sets finish_reason on a stop token or max_tokens.
  static void CheckFinished(Sequence& seq);

  Model& model_;
  KvCache& cache_;
  const ColocatedEngineOptions options_;
  const batching::ColocatedBatchOptions batch_options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  int64_t waiting_tokens_ = 0;
  // Engine-thread state mirrored for Load().
  int32_t prefilling_count_ = 0;
  int64_t prefill_left_tokens_ = 0;
  int32_t running_count_ = 0;
  int64_t running_context_ = 0;
  double recent_step_ms_ = 0;
  bool paused_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace tandem

#endif  // TANDEM_COLOCATED_COLOCATED_ENGINE_H_
