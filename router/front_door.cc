#include "router/front_door.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"
#include "proto/grpc_status.h"
#include "router/router_metrics.h"
#include "router/slo_report.h"

namespace tandem::router {

namespace wv1 = ::tandem::worker::v1;

namespace {

// "ipv4:10.0.0.7:51234" -> "ipv4:10.0.0.7", "10.0.0.7:51234" -> "10.0.0.7": a client is its address.
std::string PeerHost(const std::string& peer) {
  const size_t colon = peer.rfind(':');
  return colon == std::string::npos ? peer : peer.substr(0, colon);
}

// Decode workers a request may lose mid-stream and still complete.
constexpr int kMaxFailovers = 2;
// Workers a call that fails before producing anything may be retried on (a scale-down can take
// several replicas at once).
constexpr int kMaxRetries = 3;

constexpr absl::Duration kReleaseTimeout = absl::Seconds(5);

double MsSince(absl::Time start) { return absl::ToDoubleMilliseconds(absl::Now() - start); }

void CopySampling(const SamplingParams& from, wv1::SamplingParams* to) {
  to->set_temperature(from.temperature);
  to->set_top_k(from.top_k);
  to->set_top_p(from.top_p);
  to->set_seed(from.seed);
}

const char* FinishKindText(FinishKind kind) {
  switch (kind) {
    case FinishKind::kLength: return "length";
    case FinishKind::kStopToken: return "stop_token";
    case FinishKind::kStopString: return "stop_string";
  }
  return "unspecified";
}

}  // namespace

const char* OpenAiFinishReason(FinishKind kind) { return kind == FinishKind::kLength ? "length" : "stop"; }

struct FrontDoorSession::PrefillCall {
  int worker_index = -1;
  bool abandoned = false;  // the worker went unresponsive (health checks, stalled engine); ends UNAVAILABLE
  grpc::ClientContext context;
  wv1::PrefillRequest request;
  wv1::PrefillResponse response;
};

// A streaming call of tokens: DecodeWorker.Decode, or ColocatedWorker.Generate (which streams the first
// token too).
class FrontDoorSession::DecodeCall final : public grpc::ClientReadReactor<wv1::DecodeResponse> {
 public:
  DecodeCall(FrontDoorSession* parent, int worker_index, bool colocated = false)
      : parent_(parent), worker_index_(worker_index), colocated_(colocated) {}

  void Start(wv1::DecodeWorker::Stub& stub) {
    stub.async()->Decode(&context_, &request_, this);
    StartRead(&response_);
    StartCall();
  }
  void Start(wv1::ColocatedWorker::Stub& stub) {
    stub.async()->Generate(&context_, &colocated_request_, this);
    StartRead(&response_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows
    if (parent_->OnDecodeResponse(this)) {
      StartRead(&response_);
    } else {
      // Not reading any further: cancel so that the status (and OnDone) arrives.
      context_.TryCancel();
    }
  }
  void OnDone(const grpc::Status& status) override {
    FrontDoorSession* parent = parent_;
    parent->OnDecodeDone(this, status);
    parent->Unref();
  }

  int worker_index() const { return worker_index_; }
  bool colocated() const { return colocated_; }
  WorkerRole role() const { return colocated_ ? WorkerRole::kColocated : WorkerRole::kDecode; }
  grpc::ClientContext& context() { return context_; }
  bool abandoned = false;  // the worker went unresponsive (health checks, stalled engine); ends UNAVAILABLE
  wv1::DecodeRequest& request() { return request_; }
  wv1::ColocatedRequest& colocated_request() { return colocated_request_; }
  const wv1::DecodeResponse& response() const { return response_; }

 private:
  FrontDoorSession* const parent_;
  const int worker_index_;
  const bool colocated_;
  grpc::ClientContext context_;
  wv1::DecodeRequest request_;
  wv1::ColocatedRequest colocated_request_;
  wv1::DecodeResponse response_;
};

FrontDoorSession* FrontDoorSession::Start(RouterState& state, const v1::GenerateRequest& request,
                                          const SessionContext& context, ResponseSink* sink) {
  auto* session = new FrontDoorSession(state, context, sink);
  session->Ref();  // held through Begin: an outcome delivered inside may drop the adapter's reference
  session->Begin(request);
  session->Unref();
  return session;
}

FrontDoorSession::FrontDoorSession(RouterState& state, const SessionContext& context, ResponseSink* sink)
    : state_(state), start_(absl::Now()), request_id_(state.NewRequestId()), context_(context), sink_(sink) {
  state_.Register(this);
}

void FrontDoorSession::Begin(const v1::GenerateRequest& request) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    TANDEM_LOG_REQ(INFO, "router", request_id_)
        << context_.api << " request from " << context_.peer
        << (request.request_id().empty() ? "" : absl::StrCat(" (client id '", request.request_id(), "')"));
    admitted_ = state_.TryAdmit();
    client_ = context_.client.empty() ? PeerHost(context_.peer) : context_.client;
    if (admitted_) client_admitted_ = state_.TryAdmitClient(client_);
    if (!admitted_) {
      SetOutcomeLocked(absl::ResourceExhaustedError(
          absl::StrCat("router queue is full (", state_.in_flight(), " requests in flight); retry later")));
    } else if (!client_admitted_) {
      SetOutcomeLocked(absl::ResourceExhaustedError(
          absl::StrCat("client ", LogSafe(client_, 64), " already has ", state_.max_in_flight_per_client(),
                       " requests in flight (the router's per-client limit); retry later")));
    } else if (absl::StatusOr<PreparedRequest> prepared =
                   PrepareGenerateRequest(request, state_.model(), state_.tokenizer());
               !prepared.ok()) {
      SetOutcomeLocked(prepared.status());
    } else {
      request_ = *std::move(prepared);
      detokenizer_ = std::make_unique<StreamingDetokenizer>(state_.tokenizer());
      stops_.emplace(request_.stop);
      if (absl::StatusOr<Placement> placement = state_.Place(PlacementRequestFor()); !placement.ok()) {
        SetOutcomeLocked(placement.status());
      } else if (placement->colocated_index >= 0) {
        colocated_index_ = placement->colocated_index;
        TANDEM_LOG_REQ(INFO, "router", request_id_)
            << request_.prompt.size() << " prompt tokens, max_tokens " << request_.max_tokens << "; colocated "
            << state_.registry().address(WorkerRole::kColocated, colocated_index_);
        PrepareColocatedLocked(actions);
      } else {
        prefill_index_ = placement->prefill_index;
        decode_index_ = placement->decode_index;
        TANDEM_LOG_REQ(INFO, "router", request_id_)
            << request_.prompt.size() << " prompt tokens, max_tokens " << request_.max_tokens << "; prefill "
            << state_.registry().address(WorkerRole::kPrefill, prefill_index_) << ", decode "
            << state_.registry().address(WorkerRole::kDecode, decode_index_);
        PreparePrefillLocked(actions);
      }
    }
  }
  Execute(actions);
  Deliver();
}

FrontDoorSession::~FrontDoorSession() {
  if (admitted_ && !admission_released_) state_.ReleaseAdmission();
  if (client_admitted_ && !admission_released_) state_.ReleaseClient(client_);
  // Everything that points into the router (the detokenizer reads its tokenizer) goes before the
  // session stops being live: RouterServer::Shutdown may tear the router down right after.
  {
    absl::MutexLock lock(&mu_);
    decode_calls_.clear();
    prefill_calls_.clear();
    detokenizer_.reset();
  }
  state_.Unregister(this);
}

bool FrontDoorSession::TryRef() {
  int refs = refs_.load();
  while (refs > 0) {
    if (refs_.compare_exchange_weak(refs, refs + 1)) return true;
  }
  return false;
}

void FrontDoorSession::Unref() {
  if (refs_.fetch_sub(1) == 1) delete this;
}

policy::PlacementRequest FrontDoorSession::PlacementRequestFor() const {
  policy::PlacementRequest placement;
  placement.prompt_len = static_cast<int64_t>(request_.prompt.size());
  placement.max_output_len = request_.max_tokens;
  placement.expected_output_len = request_.max_tokens;
  placement.ttft_slo_ms = request_.ttft_slo_ms;
  placement.tpot_slo_ms = request_.tpot_slo_ms;
  placement.best_effort = request_.best_effort;
  return placement;
}

void FrontDoorSession::PreparePrefillLocked(Actions& actions) {
  auto call = std::make_unique<PrefillCall>();
  call->worker_index = prefill_index_;
  SetDeadline(call->context);
  call->request.set_request_id(request_id_);
  call->request.mutable_prompt()->Add(request_.prompt.begin(), request_.prompt.end());
  if (resuming_) {
    // The KV of everything streamed but the last token; the token it samples is not used.
    call->request.mutable_prompt()->Add(generated_.begin(), generated_.end() - 1);
    call->request.mutable_sampling()->set_temperature(0);
  } else {
    CopySampling(request_.sampling, call->request.mutable_sampling());
    call->request.set_logprobs(request_.logprobs);
  }
  prefill_in_flight_ = call.get();
  actions.start_prefill = call.get();
  prefill_calls_.push_back(std::move(call));
}

void FrontDoorSession::PrepareDecodeLocked(Actions& actions) {
  auto call = std::make_unique<DecodeCall>(this, decode_index_);
  SetDeadline(call->context());
  wv1::DecodeRequest& r = call->request();
  r.set_request_id(request_id_);
  r.mutable_prompt()->Add(request_.prompt.begin(), request_.prompt.end());
  r.set_first_token(first_token_);
  *r.mutable_kv() = lease_;
  CopySampling(request_.sampling, r.mutable_sampling());
  r.set_max_tokens(request_.max_tokens);  // counts the first token
  if (resuming_) {
    // Continue from the last streamed token: it plays the first token's part, the ones before it are
    // prompt, and the random stream resumes after the draws they used.
    const int streamed = static_cast<int>(generated_.size());
    r.mutable_prompt()->Add(generated_.begin(), generated_.end() - 1);
    r.set_first_token(generated_.back());
    r.set_max_tokens(request_.max_tokens - (streamed - 1));
    r.set_rng_draws_used(streamed);
  }
  r.mutable_stop_token_ids()->Add(request_.stop_token_ids.begin(), request_.stop_token_ids.end());
  r.set_logprobs(request_.logprobs);
  StartStreamLocked(actions, std::move(call));
}

void FrontDoorSession::StartStreamLocked(Actions& actions, std::unique_ptr<DecodeCall> call) {
  active_decode_tokens_ = 0;
  active_decode_ = call.get();
  active_decode_done_ = false;
  actions.start_decode = call.get();
  decode_calls_.push_back(std::move(call));
}

void FrontDoorSession::PrepareColocatedLocked(Actions& actions) {
  auto call = std::make_unique<DecodeCall>(this, colocated_index_, /*colocated=*/true);
  SetDeadline(call->context());
  wv1::ColocatedRequest& r = call->colocated_request();
  r.set_request_id(request_id_);
  r.mutable_prompt()->Add(request_.prompt.begin(), request_.prompt.end());
  CopySampling(request_.sampling, r.mutable_sampling());
  r.set_max_tokens(request_.max_tokens);
  if (resuming_) {
    // Everything streamed so far becomes prompt; the random stream resumes after the draws it used.
    const int streamed = static_cast<int>(generated_.size());
    r.mutable_prompt()->Add(generated_.begin(), generated_.end());
    r.set_max_tokens(request_.max_tokens - streamed);
    r.set_rng_draws_used(streamed);
  }
  r.mutable_stop_token_ids()->Add(request_.stop_token_ids.begin(), request_.stop_token_ids.end());
  r.set_logprobs(request_.logprobs);
  StartStreamLocked(actions, std::move(call));
}

void FrontDoorSession::Execute(Actions& actions) {
  if (actions.cancel_prefill != nullptr) actions.cancel_prefill->TryCancel();
  if (actions.cancel_decode != nullptr) actions.cancel_decode->context().TryCancel();
  if (actions.start_prefill != nullptr) {
    PrefillCall* call = actions.start_prefill;
    Ref();
    state_.registry().prefill_stub(call->worker_index).async()->Prefill(
        &call->context, &call->request, &call->response, [this, call](grpc::Status status) {
          OnPrefillDone(call, status);
          Unref();
        });
  }
  if (actions.start_decode != nullptr) {
    Ref();
    DecodeCall* call = actions.start_decode;
    if (call->colocated()) {
      call->Start(state_.registry().colocated_stub(call->worker_index()));
    } else {
      call->Start(state_.registry().decode_stub(call->worker_index()));
    }
  }
  if (actions.release_prefill_index >= 0) {
    struct ReleaseCall {
      grpc::ClientContext context;
      wv1::ReleaseKvRequest request;
      wv1::ReleaseKvResponse response;
    };
    auto* call = new ReleaseCall;
    call->context.set_deadline(absl::ToChronoTime(absl::Now() + kReleaseTimeout));
    call->request.set_lease_id(actions.release_lease_id);
    Ref();
    const int index = actions.release_prefill_index;
    state_.registry().prefill_stub(index).async()->ReleaseKv(
        &call->context, &call->request, &call->response, [this, call, index](grpc::Status status) {
          if (status.ok()) {
            TANDEM_LOG_REQ(INFO, "router", request_id_)
                << "ReleaseKv " << call->request.lease_id() << ": "
                << (call->response.released() ? "released" : "already gone");
          } else {
            state_.registry().ReportCallFailure(WorkerRole::kPrefill, index, FromGrpcStatus(status));
            TANDEM_LOG_REQ(WARNING, "router", request_id_)
                << "ReleaseKv " << call->request.lease_id() << " failed: " << status.error_message()
                << " (the lease expires on its own)";
          }
          delete call;
          Unref();
        });
  }
}

void FrontDoorSession::SetDeadline(grpc::ClientContext& context) const {
  if (context_.deadline != absl::InfiniteFuture()) context.set_deadline(absl::ToChronoTime(context_.deadline));
}

void FrontDoorSession::Deliver() {
  Ref();  // the sink's OnDone may drop the adapter's reference
  for (;;) {
    std::optional<Event> event;
    std::optional<absl::Status> outcome;
    {
      absl::MutexLock lock(&mu_);
      if (delivering_ || done_delivered_) break;
      if (!events_.empty()) {
        event = std::move(events_.front());
        events_.pop_front();
      } else if (outcome_.has_value()) {
        outcome = *outcome_;
        done_delivered_ = true;
        if (admitted_ && !admission_released_) {
          admission_released_ = true;
          state_.ReleaseAdmission();
          if (client_admitted_) state_.ReleaseClient(client_);
        }
      } else {
        break;
      }
      delivering_ = true;
    }
    if (event.has_value()) {
      if (auto* chunk = std::get_if<GenerateChunk>(&*event)) {
        sink_->OnChunk(std::move(*chunk));
      } else {
        sink_->OnFinal(std::get<GenerateFinal>(std::move(*event)));
      }
    } else {
      sink_->OnDone(*std::move(outcome));
    }
    absl::MutexLock lock(&mu_);
    delivering_ = false;
  }
  Unref();
}

void FrontDoorSession::SetOutcomeLocked(const absl::Status& status) {
  if (outcome_.has_value()) return;
  if (!status.ok()) {
    TANDEM_LOG_REQ(WARNING, "router", request_id_) << "failed: " << status;
  }
  // Exactly once per call: the first status set is the call's outcome. Placement sets prefill_index_.
  if (RouterMetrics* metrics = state_.metrics()) {
    metrics->RecordEnd(status, admitted_, prefill_index_ >= 0 || colocated_index_ >= 0);
  }
  outcome_ = status;
}

void FrontDoorSession::ReleaseLeaseLocked(Actions& actions, const char* why) {
  if (!have_lease_ || lease_released_) return;
  lease_released_ = true;
  actions.release_prefill_index = lease_prefill_index_;
  actions.release_lease_id = lease_.lease_id();
  TANDEM_LOG_REQ(INFO, "router", request_id_) << "releasing KV lease " << lease_.lease_id() << " (" << why << ")";
}

void FrontDoorSession::AbortLocked(Actions& actions, const std::string& why) {
  if (cancelled_) return;
  cancelled_ = true;
  events_.clear();
  SetOutcomeLocked(absl::CancelledError(why));
  if (active_decode_ != nullptr && !active_decode_done_) actions.cancel_decode = active_decode_;
  // A decode that has streamed tokens pulled (and acknowledged) the KV already.
  if (active_decode_tokens_ == 0) ReleaseLeaseLocked(actions, why.c_str());
  if (prefill_in_flight_ != nullptr) {
    TANDEM_LOG_REQ(INFO, "router", request_id_) << why << " during prefill; the lease is released when it returns";
  }
}

void FrontDoorSession::Cancel(const std::string& why) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    if (!cancelled_ && !outcome_.has_value()) TANDEM_LOG_REQ(INFO, "router", request_id_) << why;
    AbortLocked(actions, why);
  }
  Execute(actions);
  Deliver();
}

void FrontDoorSession::CancelWorkerCalls() {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    if (prefill_in_flight_ != nullptr) actions.cancel_prefill = &prefill_in_flight_->context;
    if (active_decode_ != nullptr && !active_decode_done_) actions.cancel_decode = active_decode_;
  }
  Execute(actions);
}

void FrontDoorSession::AbandonWorker(WorkerRole role, int index) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    if (role == WorkerRole::kPrefill && prefill_in_flight_ != nullptr && prefill_in_flight_->worker_index == index) {
      prefill_in_flight_->abandoned = true;
      actions.cancel_prefill = &prefill_in_flight_->context;
    }
    if (role != WorkerRole::kPrefill && active_decode_ != nullptr && !active_decode_done_ &&
        active_decode_->role() == role && active_decode_->worker_index() == index) {
      active_decode_->abandoned = true;
      actions.cancel_decode = active_decode_;
    }
    if (actions.cancel_prefill != nullptr || actions.cancel_decode != nullptr) {
      TANDEM_LOG_REQ(WARNING, "router", request_id_)
          << RoleName(role) << " worker "
          << state_.registry().address(role, index) << " is unresponsive (failed health checks or a stalled engine); abandoning its call";
    }
  }
  Execute(actions);
}

void FrontDoorSession::OnPrefillDone(PrefillCall* call, const grpc::Status& original_status) {
  // A call cancelled because its worker hung is a worker failure, not a client's cancel.
  const grpc::Status grpc_status =
      call->abandoned && !original_status.ok()
          ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "the worker is unresponsive (failed health checks or a stalled engine)")
          : original_status;
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    prefill_in_flight_ = nullptr;
    const std::string& address = state_.registry().address(WorkerRole::kPrefill, call->worker_index);
    if (!grpc_status.ok()) {
      const absl::Status status = FromGrpcStatus(grpc_status);
      state_.registry().ReportCallFailure(WorkerRole::kPrefill, call->worker_index, status);
      if (!cancelled_ && status.code() == absl::StatusCode::kUnavailable &&
          prefill_retries_ < kMaxRetries) {
        const int other =
            state_.PickReplacement(WorkerRole::kPrefill, PlacementRequestFor(), prefill_index_, decode_index_);
        if (other >= 0) {
          ++prefill_retries_;
          prefill_index_ = other;
          TANDEM_LOG_REQ(WARNING, "router", request_id_)
              << "prefill worker " << address << " unavailable (" << status.message() << "); retrying on "
              << state_.registry().address(WorkerRole::kPrefill, other);
          PreparePrefillLocked(actions);
        }
      }
      if (actions.start_prefill == nullptr) {
        SetOutcomeLocked(absl::Status(status.code(), absl::StrCat("prefill worker ", address, ": ", status.message())));
      }
    } else if (resuming_) {
      lease_ = call->response.kv();
      lease_.set_source(address);
      have_lease_ = true;
      lease_released_ = false;
      lease_prefill_index_ = call->worker_index;
      if (cancelled_) {
        ReleaseLeaseLocked(actions, "client cancelled during the failover prefill");
      } else {
        PrepareDecodeLocked(actions);
      }
    } else {
      lease_ = call->response.kv();
      // The decode worker dials the address the router reached the prefill worker at: a worker that
      // listens on 0.0.0.0 (a container) cannot name itself, the router's view of it is reachable.
      lease_.set_source(address);
      have_lease_ = true;
      lease_prefill_index_ = call->worker_index;
      first_token_ = call->response.first_token();
      first_logprob_ = call->response.first_logprob();
      prefill_queue_ms_ = call->response.queue_ms();
      prefill_compute_ms_ = call->response.compute_ms();
      if (cancelled_) {
        ReleaseLeaseLocked(actions, "client cancelled during prefill");
      } else {
        HandleFirstTokenLocked(actions);
      }
    }
  }
  Execute(actions);
  Deliver();
}

absl::StatusOr<std::string> FrontDoorSession::TextOfLocked(int32_t id) {
  // Models often pad their vocabulary past the tokenizer's (embedding rows rounded up): an id the model
  // has and the tokenizer lacks decodes as no text, as Hugging Face's decode does, and never fails the
  // request (issue 11, item 9).
  if (id >= 0 && id < state_.model().vocab_size && id >= state_.tokenizer().vocab_size()) return stops_->Push("");
  absl::StatusOr<std::string> piece = detokenizer_->Push(id);
  if (!piece.ok()) {
    return absl::InternalError(absl::StrCat("a worker produced token id ", id, " that does not decode: ",
                                            piece.status().message()));
  }
  return stops_->Push(*piece);
}

void FrontDoorSession::HandleFirstTokenLocked(Actions& actions) {
  completion_tokens_ = 1;
  generated_.push_back(first_token_);
  GenerateChunk chunk;
  chunk.token_ids.push_back(first_token_);
  if (request_.logprobs) chunk.logprobs.push_back(first_logprob_);
  absl::StatusOr<std::string> text = TextOfLocked(first_token_);
  if (!text.ok()) {
    ReleaseLeaseLocked(actions, "bad first token");
    SetOutcomeLocked(text.status());
    return;
  }
  chunk.text = *std::move(text);
  events_.push_back(std::move(chunk));
  ttft_ms_ = MsSince(start_);
  const bool stop_token = std::find(request_.stop_token_ids.begin(), request_.stop_token_ids.end(),
                                    first_token_) != request_.stop_token_ids.end();
  if (stops_->stopped()) {
    finish_ = FinishKind::kStopString;
  } else if (stop_token) {
    finish_ = FinishKind::kStopToken;
  } else if (request_.max_tokens == 1) {
    finish_ = FinishKind::kLength;
  }
  if (finish_.has_value()) {
    ReleaseLeaseLocked(actions, "finished at the first token");
    CompleteLocked();
    return;
  }
  PrepareDecodeLocked(actions);
}

bool FrontDoorSession::OnDecodeResponse(DecodeCall* call) {
  bool keep_reading = true;
  {
    absl::MutexLock lock(&mu_);
    if (call != active_decode_ || cancelled_ || completed_ || outcome_.has_value()) return false;
    const wv1::DecodeResponse& in = call->response();
    // A colocated worker streams the first token too: it reaches the client now (TTFT).
    if (call->colocated() && generated_.empty() && in.token_ids_size() > 0) ttft_ms_ = MsSince(start_);
    GenerateChunk out;
    for (int i = 0; i < in.token_ids_size(); ++i) {
      const int32_t id = in.token_ids(i);
      ++decode_tokens_;
      ++active_decode_tokens_;
      ++completion_tokens_;
      generated_.push_back(id);
      out.token_ids.push_back(id);
      if (request_.logprobs) out.logprobs.push_back(i < in.logprobs_size() ? in.logprobs(i) : 0.0f);
      absl::StatusOr<std::string> piece = TextOfLocked(id);
      if (!piece.ok()) {
        SetOutcomeLocked(piece.status());
        keep_reading = false;
        break;
      }
      out.text += *piece;
      if (stops_->stopped()) {
        finish_ = FinishKind::kStopString;
        keep_reading = false;  // DecodeCall cancels the call
        break;
      }
    }
    if (in.has_final()) decode_final_ = in.final();
    if (!out.token_ids.empty()) events_.push_back(std::move(out));
    if (finish_ == FinishKind::kStopString) {
      TANDEM_LOG_REQ(INFO, "router", request_id_) << "stop string matched; cancelling the decode call";
      CompleteLocked();
    }
  }
  Deliver();
  return keep_reading;
}

void FrontDoorSession::OnDecodeDone(DecodeCall* call, const grpc::Status& original_status) {
  const grpc::Status grpc_status =
      call->abandoned && !original_status.ok()
          ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "the worker is unresponsive (failed health checks or a stalled engine)")
          : original_status;
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    if (call != active_decode_) return;
    active_decode_done_ = true;
    if (cancelled_ || completed_ || outcome_.has_value()) return;
    const WorkerRole role = call->role();
    const char* kind = call->colocated() ? "colocated" : "decode";
    const std::string& address = state_.registry().address(role, call->worker_index());
    const absl::Status status = FromGrpcStatus(grpc_status);
    if (status.ok()) {
      finish_ = decode_final_.has_value() && decode_final_->finish_reason() == "stop" ? FinishKind::kStopToken
                                                                                        : FinishKind::kLength;
      CompleteLocked();
    } else if (static_cast<int>(generated_.size()) >= request_.max_tokens ||
               (!generated_.empty() && std::find(request_.stop_token_ids.begin(), request_.stop_token_ids.end(),
                                                 generated_.back()) != request_.stop_token_ids.end())) {
      // Every token arrived and only the end of the call was lost (the worker died after its last
      // token): the request is complete.
      state_.registry().ReportCallFailure(role, call->worker_index(), status);
      TANDEM_LOG_REQ(WARNING, "router", request_id_)
          << kind << " worker " << address << " failed after the last token (" << grpc_status.error_message()
          << "); the request is complete";
      finish_ = static_cast<int>(generated_.size()) >= request_.max_tokens ? FinishKind::kLength : FinishKind::kStopToken;
      CompleteLocked();
    } else if (!call->colocated() && active_decode_tokens_ == 0 && IsKvSourceFailure(status)) {
      // The decode worker could not pull the prompt's KV (RELIABILITY F4): most likely its source died
      // (its own health checks will take it out). Neither worker is reported: redo the prefill, on
      // another prefill worker when the source was unreachable, and decode on the same worker; if that
      // fails the same way again, the decode worker's side may be at fault, so move it too. The streamed
      // first token stays (the prefill resumes after it).
      const bool source_unreachable = status.code() == absl::StatusCode::kUnavailable ||
                                      status.code() == absl::StatusCode::kDeadlineExceeded;
      lease_released_ = true;  // the decode worker released it after the failed pull
      if (!cancelled_ && prefill_retries_ < kMaxRetries) {
        const int prefill = source_unreachable ? state_.PickReplacement(WorkerRole::kPrefill, PlacementRequestFor(),
                                                                        prefill_index_, decode_index_)
                                               : prefill_index_;
        const int decode = ++kv_pull_failures_ > 1 ? state_.PickReplacement(WorkerRole::kDecode, PlacementRequestFor(),
                                                                            decode_index_, prefill)
                                                   : decode_index_;
        if (prefill >= 0 && decode >= 0) {
          ++prefill_retries_;
          prefill_index_ = prefill;
          decode_index_ = decode;
          resuming_ = !generated_.empty();
          TANDEM_LOG_REQ(WARNING, "router", request_id_)
              << "decode worker " << address << " could not pull the KV (" << status.message() << "); prefilling again on "
              << state_.registry().address(WorkerRole::kPrefill, prefill_index_) << ", decode on "
              << state_.registry().address(WorkerRole::kDecode, decode_index_);
          PreparePrefillLocked(actions);
        }
      }
      if (actions.start_prefill == nullptr) {
        SetOutcomeLocked(absl::Status(status.code(), absl::StrCat("decode worker ", address,
                                                                  " could not pull the prompt's KV: ", status.message())));
      }
    } else {
      state_.registry().ReportCallFailure(role, call->worker_index(), status);
      if (call->colocated() && status.code() == absl::StatusCode::kUnavailable && decode_retries_ < kMaxRetries &&
          (active_decode_tokens_ == 0 ||
           (failovers_ < kMaxFailovers && static_cast<int>(generated_.size()) < request_.max_tokens))) {
        // Another colocated worker: from the start before any token, else resumed after the streamed ones.
        const int other = state_.PickReplacement(WorkerRole::kColocated, PlacementRequestFor(), colocated_index_, -1);
        if (other >= 0) {
          if (active_decode_tokens_ == 0) {
            ++decode_retries_;
          } else {
            ++failovers_;
            if (RouterMetrics* metrics = state_.metrics()) metrics->RecordFailover();
          }
          resuming_ = !generated_.empty();
          colocated_index_ = other;
          TANDEM_LOG_REQ(WARNING, "router", request_id_)
              << "colocated worker " << address << " failed after " << generated_.size() << " tokens ("
              << status.message() << "); "
              << (generated_.empty() ? "retrying on " : "resuming on ")
              << state_.registry().address(WorkerRole::kColocated, other);
          PrepareColocatedLocked(actions);
        }
      }
      if (!call->colocated() && status.code() == absl::StatusCode::kUnavailable && active_decode_tokens_ == 0 &&
          decode_retries_ < kMaxRetries) {
        const int other =
            state_.PickReplacement(WorkerRole::kDecode, PlacementRequestFor(), decode_index_, prefill_index_);
        if (other >= 0) {
          ++decode_retries_;
          decode_index_ = other;
          TANDEM_LOG_REQ(WARNING, "router", request_id_)
              << "decode worker " << address << " unavailable before any token (" << status.message()
              << "); retrying on " << state_.registry().address(WorkerRole::kDecode, other)
              << " with the same KV lease " << lease_.lease_id();
          PrepareDecodeLocked(actions);
        }
      }
      if (!call->colocated() && actions.start_decode == nullptr && status.code() == absl::StatusCode::kUnavailable &&
          active_decode_tokens_ > 0 && failovers_ < kMaxFailovers &&
          static_cast<int>(generated_.size()) < request_.max_tokens) {
        const int other =
            state_.PickReplacement(WorkerRole::kDecode, PlacementRequestFor(), decode_index_, prefill_index_);
        if (other >= 0) {
          ++failovers_;
          resuming_ = true;
          decode_retries_ = 0;
          prefill_retries_ = 0;
          decode_index_ = other;
          if (!state_.registry().healthy(WorkerRole::kPrefill, prefill_index_)) {
            const int prefill = state_.PickReplacement(WorkerRole::kPrefill, PlacementRequestFor(), prefill_index_,
                                                       decode_index_);
            if (prefill >= 0) prefill_index_ = prefill;
          }
          TANDEM_LOG_REQ(WARNING, "router", request_id_)
              << "decode worker " << address << " failed after " << generated_.size() << " tokens ("
              << status.message() << "); resuming on prefill "
              << state_.registry().address(WorkerRole::kPrefill, prefill_index_) << ", decode "
              << state_.registry().address(WorkerRole::kDecode, decode_index_);
          if (RouterMetrics* metrics = state_.metrics()) metrics->RecordFailover();
          PreparePrefillLocked(actions);
        }
      }
      if (actions.start_decode == nullptr && actions.start_prefill == nullptr) {
        if (active_decode_tokens_ == 0) ReleaseLeaseLocked(actions, "decode failed");
        SetOutcomeLocked(absl::Status(
            status.code(), decode_tokens_ == 0
                               ? absl::StrCat(kind, " worker ", address, " failed before producing a token: ",
                                              status.message())
                               : absl::StrCat(kind, " worker ", address, " failed after ", decode_tokens_,
                                              " tokens: ", status.message())));
      }
    }
  }
  Execute(actions);
  Deliver();
}

void FrontDoorSession::CompleteLocked() {
  completed_ = true;
  std::string tail;
  if (!stops_->stopped()) {
    tail = stops_->Push(detokenizer_->Flush());
    if (!stops_->stopped()) tail += stops_->Flush();
  }
  RequestTiming timing;
  timing.prefill_queue_ms = prefill_queue_ms_;
  timing.prefill_compute_ms = prefill_compute_ms_;
  if (colocated_index_ >= 0 && decode_final_.has_value()) {
    // One engine: its queue, the prompt's chunks, then decoding; no transfer.
    timing.prefill_queue_ms = decode_final_->queue_ms();
    timing.prefill_compute_ms = decode_final_->prefill_ms();
    timing.decode_compute_ms = decode_final_->compute_ms();
  } else if (decode_final_.has_value()) {
    timing.kv_transfer_ms = decode_final_->kv_transfer_ms();
    timing.decode_queue_ms = decode_final_->queue_ms();
    timing.decode_compute_ms = decode_final_->compute_ms();
  }
  timing.ttft_ms = ttft_ms_;
  timing.e2e_ms = MsSince(start_);
  timing.tpot_ms = ComputeTpotMs(timing.e2e_ms, timing.ttft_ms, completion_tokens_);
  const SloVerdict verdict = EvaluateSlo(timing, {request_.ttft_slo_ms, request_.tpot_slo_ms});
  if (RouterMetrics* metrics = state_.metrics()) metrics->RecordCompleted(timing, verdict, completion_tokens_);

  GenerateFinal final;
  final.text = std::move(tail);
  final.finish = finish_.value_or(FinishKind::kLength);
  final.prompt_tokens = static_cast<int32_t>(request_.prompt.size());
  final.completion_tokens = completion_tokens_;
  final.timing = timing;
  final.verdict = verdict;
  final.request_id = request_id_;
  if (colocated_index_ >= 0) {
    final.prefill_worker = state_.registry().address(WorkerRole::kColocated, colocated_index_);
    final.decode_worker = final.prefill_worker;
  } else {
    final.prefill_worker = state_.registry().address(WorkerRole::kPrefill, prefill_index_);
    final.decode_worker = state_.registry().address(WorkerRole::kDecode, decode_index_);
  }
  events_.push_back(std::move(final));
  SetOutcomeLocked(absl::OkStatus());
  TANDEM_LOG_REQ(INFO, "router", request_id_)
      << "done: " << FinishKindText(finish_.value_or(FinishKind::kLength)) << ", " << completion_tokens_ << " tokens, ttft "
      << timing.ttft_ms << " ms, tpot " << timing.tpot_ms << " ms, e2e " << timing.e2e_ms << " ms"
      << (verdict.explanation.empty() ? "" : absl::StrCat("; SLO missed: ", verdict.explanation));
}

}  // namespace tandem::router
