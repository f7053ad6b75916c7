// GenerateReactor: one public Generate call, from validation to the final message.
//
//   validate (before tokenizing where possible) -> tokenize -> place (policy on the current snapshot)
//   -> Prefill (unary, the client's deadline) -> first token streamed at once (TTFT)
//   -> Decode (server-streaming, relayed) -> `final` (finish reason, counts, timing, SLO report).
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
// Lifetime: owns itself. A reference count covers the server call (dropped in OnDone) and every
// child call in flight; the last reference deletes the reactor, so child callbacks never outlive it.
// Thread safety: gRPC runs the reactions on its threads; all state is guarded by mu_, and no gRPC
// operation is started while mu_ is held (callbacks may run inline).
#ifndef TANDEM_ROUTER_GENERATE_REACTOR_H_
#define TANDEM_ROUTER_GENERATE_REACTOR_H_

#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/stop_strings.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "proto/tandem.pb.h"
#include "proto/worker.grpc.pb.h"
#include "router/policy/snapshot.h"
#include "router/request_validation.h"
#include "router/router_state.h"
#include "tokenizer/tokenizer.h"

namespace tandem::router {

class GenerateReactor final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  // Starts the request; `context` and `request` are gRPC's and outlive OnDone.
  GenerateReactor(RouterState& state, grpc::CallbackServerContext* context,
                  const v1::GenerateRequest* request);

  // Router shutdown: cancels every worker call in flight (the Prefill included).
  void CancelWorkerCalls();
  // Takes a reference unless the count already reached zero.
  bool TryRef();
  void Unref();

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

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

  ~GenerateReactor() override;

  void Ref() { refs_.fetch_add(1); }
  void Execute(Actions& actions);
  // Starts the next write, or Finish once the queue is drained and a status is set.
  void Pump();

  void OnPrefillDone(PrefillCall* call, const grpc::Status& status);
  // Returns whether the relay should keep reading this call.
  bool OnDecodeResponse(DecodeCall* call);
  void OnDecodeDone(DecodeCall* call, const grpc::Status& status);

  void PreparePrefillLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PrepareDecodeLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleFirstTokenLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Text of `id` through the detokenizer and the stop-string matcher.
  absl::StatusOr<std::string> TextOfLocked(int32_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseLeaseLocked(Actions& actions, const char* why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues the final message and sets the OK status.
  void CompleteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetFinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Client gone: drop queued writes, cancel the decode, release an unused lease.
  void AbortLocked(Actions& actions, const char* why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  policy::PlacementRequest PlacementRequestFor() const;

  RouterState& state_;
  const absl::Time start_;
  const std::string request_id_;
  gpr_timespec deadline_;  // the client's (infinite when it set none)
  bool admitted_ = false;
  std::atomic<int> refs_{1};

  absl::Mutex mu_;
  // Set once in the constructor before any child call starts; read-only afterwards.
  PreparedRequest request_;
  std::unique_ptr<StreamingDetokenizer> detokenizer_ ABSL_GUARDED_BY(mu_);
  std::optional<StopStringMatcher> stops_ ABSL_GUARDED_BY(mu_);

  int prefill_index_ ABSL_GUARDED_BY(mu_) = -1;
  int decode_index_ ABSL_GUARDED_BY(mu_) = -1;
  bool prefill_retried_ ABSL_GUARDED_BY(mu_) = false;
  bool decode_retried_ ABSL_GUARDED_BY(mu_) = false;

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
  double prefill_queue_ms_ ABSL_GUARDED_BY(mu_) = 0;
  double prefill_compute_ms_ ABSL_GUARDED_BY(mu_) = 0;
  double ttft_ms_ ABSL_GUARDED_BY(mu_) = 0;

  // During decode.
  int decode_tokens_ ABSL_GUARDED_BY(mu_) = 0;  // tokens received from decode workers
  int completion_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<worker::v1::DecodeFinal> decode_final_ ABSL_GUARDED_BY(mu_);
  v1::FinishReason finish_reason_ ABSL_GUARDED_BY(mu_) = v1::FINISH_REASON_UNSPECIFIED;

  // The outgoing stream.
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool completed_ ABSL_GUARDED_BY(mu_) = false;  // the final message is queued
  std::deque<v1::GenerateResponse> writes_ ABSL_GUARDED_BY(mu_);
  v1::GenerateResponse current_write_;  // owned by the write in flight
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_status_ ABSL_GUARDED_BY(mu_);
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tandem::router

#endif  // TANDEM_ROUTER_GENERATE_REACTOR_H_
