// FrontDoorSession: one generation request, from validation to the final report, whatever API it came
// through. The gRPC reactor (generate_reactor.h) and the HTTP handler (http_front_door.h) are thin
// adapters: they hand the session a request and a ResponseSink, pass the client's cancellation on, and
// translate what the sink receives into their wire format.
//
//   validate (before tokenizing where possible) -> tokenize -> place (policy on the current snapshot)
//   -> Prefill (unary, the client's deadline) -> first token at once (TTFT)
//   -> Decode (server-streaming, relayed) -> the final report (finish reason, counts, timing, SLOs).
// Placed on a colocated worker instead: one ColocatedWorker.Generate call streams every token, the
// first included (TTFT when it arrives); a colocated worker failing UNAVAILABLE is replaced by another,
// from the start before any token, or with prompt + streamed tokens after some (the same resume rule).
//
// Failure rules (DESIGN.md, RELIABILITY.md C1-C4, F1-F3):
//   - Client cancel or deadline: the in-flight Decode is cancelled. A Prefill in flight is allowed to
//     finish (its deadline is the client's, so a deadline cancels it too) and its lease is then
//     released; a lease that no decode has started streaming from is released with ReleaseKv.
//   - A stop string ends the stream at once: the Decode call is cancelled and the text stops before
//     the stop string.
//   - Decode fails with UNAVAILABLE before producing a token: retried once on another healthy decode
//     worker with the same KvHandle (no second prefill). Prefill fails with UNAVAILABLE: retried once
//     on another healthy prefill worker. Otherwise the client gets the worker's status with a message
//     naming the worker.
//   - A worker call failing with UNAVAILABLE takes that worker out of the placement pool at once.
//
// Lifetime: reference counted. Start() returns the session holding one reference for the adapter, which
// gives it back with Release() once it no longer calls the session (after its sink saw OnDone, or when
// its own call ends); every worker call in flight and every delivery holds another. The sink is used
// until OnDone has returned and never after.
// Thread safety: Cancel / CancelWorkerCalls / Release may be called from any thread. Sink methods are
// called one at a time, in order, never with the session's lock held (so a sink may call Cancel).
#ifndef TANDEM_ROUTER_FRONT_DOOR_H_
#define TANDEM_ROUTER_FRONT_DOOR_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/stop_strings.h"
#include "proto/tandem.pb.h"
#include "proto/worker.grpc.pb.h"
#include "router/policy/snapshot.h"
#include "router/request_validation.h"
#include "router/router_state.h"
#include "router/slo_report.h"
#include "tokenizer/tokenizer.h"

namespace tandem::router {

enum class FinishKind { kLength, kStopToken, kStopString };
// OpenAI's finish_reason: "length" or "stop" (a stop token or a stop string).
const char* OpenAiFinishReason(FinishKind kind);

// New tokens and the text they completed (text may lag the ids: a partial UTF-8 character or a
// possible stop string is held back until it is decided).
struct GenerateChunk {
  std::vector<int32_t> token_ids;
  std::string text;
  std::vector<float> logprobs;  // one per token id when the request asked for them, else empty
};

// The last event of a successful request.
struct GenerateFinal {
  std::string text;  // text held back until the end
  FinishKind finish = FinishKind::kLength;
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  RequestTiming timing;
  SloVerdict verdict;
  std::string request_id;
  std::string prefill_worker;
  std::string decode_worker;
};

class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  virtual void OnChunk(GenerateChunk chunk) = 0;
  // Only on success, right before OnDone(OK).
  virtual void OnFinal(GenerateFinal final) = 0;
  // Exactly once, last: OK after OnFinal, or the request's error (InvalidArgument naming the field,
  // NotFound for an unknown model, ResourceExhausted for a refusal with its reason, Unavailable when no
  // worker can take it, Cancelled after Cancel, or a worker's failure naming the worker).
  virtual void OnDone(absl::Status status) = 0;
};

// The parts of a request that the API adapters know and the session needs besides the request itself.
struct SessionContext {
  absl::Time deadline = absl::InfiniteFuture();  // the client's
  std::string peer;                              // for logs
  std::string api;                               // "grpc", "http"; for logs
  std::string client;                            // API key identity; empty: the peer's address
};

class FrontDoorSession {
 public:
  // Validates, places and starts the request; every outcome (errors included) reaches `sink`.
  static FrontDoorSession* Start(RouterState& state, const v1::GenerateRequest& request,
                                 const SessionContext& context, ResponseSink* sink);

  // The client is gone or gave up: stop everything, free the KV, end with Cancelled(why).
  void Cancel(const std::string& why);
  // Router shutdown: cancel every worker call in flight (the Prefill included).
  void CancelWorkerCalls();
  // The worker (role, index) stopped answering: a call on it is cancelled and ends as UNAVAILABLE.
  void AbandonWorker(WorkerRole role, int index);
  // The adapter's reference.
  void Release() { Unref(); }
  // Takes a reference unless the count already reached zero (RouterState's shutdown walk).
  bool TryRef();
  void Unref();

  const std::string& request_id() const { return request_id_; }

 private:
  class DecodeCall;
  struct PrefillCall;
  // Work decided under mu_ and done after releasing it.
  struct Actions {
    PrefillCall* start_prefill = nullptr;
    DecodeCall* start_decode = nullptr;
    grpc::ClientContext* cancel_prefill = nullptr;
    DecodeCall* cancel_decode = nullptr;
    int release_prefill_index = -1;  // >= 0: ReleaseKv(release_lease_id) on that worker
    std::string release_lease_id;
  };
  using Event = std::variant<GenerateChunk, GenerateFinal>;

  FrontDoorSession(RouterState& state, const SessionContext& context, ResponseSink* sink);
  ~FrontDoorSession();
  void Begin(const v1::GenerateRequest& request);

  void Ref() { refs_.fetch_add(1); }
  void Execute(Actions& actions);
  // Hands queued events, then the outcome, to the sink; one thread at a time.
  void Deliver();

  void OnPrefillDone(PrefillCall* call, const grpc::Status& status);
  // Returns whether the relay should keep reading this call.
  bool OnDecodeResponse(DecodeCall* call);
  void OnDecodeDone(DecodeCall* call, const grpc::Status& status);

  void SetDeadline(grpc::ClientContext& context) const;
  void PreparePrefillLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PrepareDecodeLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The whole request (or its rest, when resuming) on the colocated worker colocated_index_.
  void PrepareColocatedLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes `call` the active token stream and has Execute start it.
  void StartStreamLocked(Actions& actions, std::unique_ptr<DecodeCall> call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleFirstTokenLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Text of `id` through the detokenizer and the stop-string matcher.
  absl::StatusOr<std::string> TextOfLocked(int32_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseLeaseLocked(Actions& actions, const char* why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues the final report and sets the OK outcome.
  void CompleteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetOutcomeLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AbortLocked(Actions& actions, const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  policy::PlacementRequest PlacementRequestFor() const;

  RouterState& state_;
  const absl::Time start_;
  const std::string request_id_;
  const SessionContext context_;
  ResponseSink* const sink_;
  bool admitted_ = false;
  // The admission slot goes back when the outcome reaches the client, not when the transport lets
  // go of the session later: a client that saw its status must not find its call still counted.
  bool admission_released_ = false;
  std::string client_;            // for the per-client bound
  bool client_admitted_ = false;  // holds one of client_'s slots
  std::atomic<int> refs_{1};

  absl::Mutex mu_;
  // Set once in Begin before any child call starts; read-only afterwards.
  PreparedRequest request_;
  std::unique_ptr<StreamingDetokenizer> detokenizer_ ABSL_GUARDED_BY(mu_);
  std::optional<StopStringMatcher> stops_ ABSL_GUARDED_BY(mu_);

  int prefill_index_ ABSL_GUARDED_BY(mu_) = -1;
  int decode_index_ ABSL_GUARDED_BY(mu_) = -1;
  // >= 0: the request runs on this colocated worker (one streaming call; prefill/decode stay -1).
  int colocated_index_ ABSL_GUARDED_BY(mu_) = -1;
  // Retries on another worker of a call that failed UNAVAILABLE before producing anything (each failed
  // worker leaves the pool at once, so a retry never picks it again).
  int prefill_retries_ ABSL_GUARDED_BY(mu_) = 0;
  int kv_pull_failures_ ABSL_GUARDED_BY(mu_) = 0;  // decode calls that could not pull the KV (F4)
  int decode_retries_ ABSL_GUARDED_BY(mu_) = 0;
  // Mid-stream failover: a decode worker that fails after streaming tokens is replaced by a fresh
  // prefill of prompt + streamed tokens (but the last) and a decode that continues from the last one.
  bool resuming_ ABSL_GUARDED_BY(mu_) = false;
  int failovers_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int32_t> generated_ ABSL_GUARDED_BY(mu_);  // every token streamed to the client

  std::vector<std::unique_ptr<PrefillCall>> prefill_calls_ ABSL_GUARDED_BY(mu_);
  PrefillCall* prefill_in_flight_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<std::unique_ptr<DecodeCall>> decode_calls_ ABSL_GUARDED_BY(mu_);
  DecodeCall* active_decode_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool active_decode_done_ ABSL_GUARDED_BY(mu_) = false;

  // After Prefill.
  bool have_lease_ ABSL_GUARDED_BY(mu_) = false;
  bool lease_released_ ABSL_GUARDED_BY(mu_) = false;
  int lease_prefill_index_ ABSL_GUARDED_BY(mu_) = -1;
  worker::v1::KvHandle lease_ ABSL_GUARDED_BY(mu_);
  int32_t first_token_ ABSL_GUARDED_BY(mu_) = 0;
  float first_logprob_ ABSL_GUARDED_BY(mu_) = 0.0f;
  double prefill_queue_ms_ ABSL_GUARDED_BY(mu_) = 0;
  double prefill_compute_ms_ ABSL_GUARDED_BY(mu_) = 0;
  double ttft_ms_ ABSL_GUARDED_BY(mu_) = 0;

  // During decode.
  int decode_tokens_ ABSL_GUARDED_BY(mu_) = 0;  // tokens received from decode workers
  int active_decode_tokens_ ABSL_GUARDED_BY(mu_) = 0;  // ... from the current decode call
  int completion_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<worker::v1::DecodeFinal> decode_final_ ABSL_GUARDED_BY(mu_);
  std::optional<FinishKind> finish_ ABSL_GUARDED_BY(mu_);

  // Toward the sink.
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool completed_ ABSL_GUARDED_BY(mu_) = false;  // the final report is queued
  std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> outcome_ ABSL_GUARDED_BY(mu_);
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;
  bool done_delivered_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tandem::router

#endif  // TANDEM_ROUTER_FRONT_DOOR_H_
