#include "router/generate_reactor.h"

#include <utility>

#include "absl/time/time.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "proto/grpc_status.h"

namespace tandem::router {
namespace {

v1::Stage ToProtoStage(RequestStage stage) {
  switch (stage) {
    case RequestStage::kPrefillQueue: return v1::STAGE_PREFILL_QUEUE;
    case RequestStage::kPrefillCompute: return v1::STAGE_PREFILL_COMPUTE;
    case RequestStage::kKvTransfer: return v1::STAGE_KV_TRANSFER;
    case RequestStage::kDecodeQueue: return v1::STAGE_DECODE_QUEUE;
    case RequestStage::kDecodeCompute: return v1::STAGE_DECODE_COMPUTE;
    case RequestStage::kNone: break;
  }
  return v1::STAGE_UNSPECIFIED;
}

v1::FinishReason ToProtoFinish(FinishKind kind) {
  switch (kind) {
    case FinishKind::kLength: return v1::FINISH_REASON_LENGTH;
    case FinishKind::kStopToken: return v1::FINISH_REASON_STOP_TOKEN;
    case FinishKind::kStopString: return v1::FINISH_REASON_STOP_STRING;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

absl::Time DeadlineOf(const grpc::CallbackServerContext* context) {
  const std::chrono::system_clock::time_point deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

}  // namespace

void ToProto(const GenerateFinal& f, v1::GenerateResponse* response) {
  response->set_text(f.text);
  v1::Final* final = response->mutable_final();
  final->set_finish_reason(ToProtoFinish(f.finish));
  final->set_prompt_tokens(f.prompt_tokens);
  final->set_completion_tokens(f.completion_tokens);
  v1::Timing* t = final->mutable_timing();
  t->set_prefill_queue_ms(f.timing.prefill_queue_ms);
  t->set_prefill_compute_ms(f.timing.prefill_compute_ms);
  t->set_kv_transfer_ms(f.timing.kv_transfer_ms);
  t->set_decode_queue_ms(f.timing.decode_queue_ms);
  t->set_decode_compute_ms(f.timing.decode_compute_ms);
  t->set_ttft_ms(f.timing.ttft_ms);
  t->set_tpot_ms(f.timing.tpot_ms);
  t->set_e2e_ms(f.timing.e2e_ms);
  v1::SloReport* slo = final->mutable_slo();
  slo->set_ttft_met(f.verdict.ttft_met);
  slo->set_tpot_met(f.verdict.tpot_met);
  slo->set_missed_stage(ToProtoStage(f.verdict.missed_stage));
  slo->set_explanation(f.verdict.explanation);
  final->set_request_id(f.request_id);
  final->set_prefill_worker(f.prefill_worker);
  final->set_decode_worker(f.decode_worker);
}

GenerateReactor::GenerateReactor(RouterState& state, grpc::CallbackServerContext* context,
                                 const v1::GenerateRequest& request, std::string client) {
  SessionContext session_context;
  session_context.client = std::move(client);
  session_context.deadline = DeadlineOf(context);
  session_context.peer = context->peer();
  session_context.api = "grpc";
  session_ = FrontDoorSession::Start(state, request, session_context, this);
}

void GenerateReactor::OnChunk(GenerateChunk chunk) {
  v1::GenerateResponse response;
  response.mutable_token_ids()->Add(chunk.token_ids.begin(), chunk.token_ids.end());
  response.mutable_logprobs()->Add(chunk.logprobs.begin(), chunk.logprobs.end());
  response.set_text(std::move(chunk.text));
  {
    absl::MutexLock lock(&mu_);
    writes_.push_back(std::move(response));
  }
  Pump();
}

void GenerateReactor::OnFinal(GenerateFinal final) {
  v1::GenerateResponse response;
  ToProto(final, &response);
  {
    absl::MutexLock lock(&mu_);
    writes_.push_back(std::move(response));
  }
  Pump();
}

void GenerateReactor::OnDone(absl::Status status) {
  {
    absl::MutexLock lock(&mu_);
    // A cancelled call writes nothing more.
    if (status.code() == absl::StatusCode::kCancelled) writes_.clear();
    finish_status_ = ToGrpcStatus(status);
  }
  Pump();
}

void GenerateReactor::Pump() {
  enum class Step { kNone, kWrite, kFinish } step = Step::kNone;
  grpc::Status status;
  v1::GenerateResponse next;
  {
    absl::MutexLock lock(&mu_);
    if (finish_called_ || write_in_flight_) return;
    if (!writes_.empty() && !write_failed_) {
      next = std::move(writes_.front());
      writes_.pop_front();
      write_in_flight_ = true;
      step = Step::kWrite;
    } else if (finish_status_.has_value()) {
      finish_called_ = true;
      status = *finish_status_;
      step = Step::kFinish;
    }
  }
  if (step == Step::kWrite) {
    // current_write_ is free: no write is in flight. Serializing fails only past protobuf's 2 GiB.
    bool own_buffer = false;
    current_write_.Clear();  // the serializer needs an empty buffer
    if (grpc::SerializationTraits<v1::GenerateResponse>::Serialize(next, &current_write_, &own_buffer).ok()) {
      StartWrite(&current_write_);
    } else {
      OnWriteDone(false);  // as a broken stream: the session is cancelled and the call finishes
    }
  }
  if (step == Step::kFinish) Finish(status);
}

void GenerateReactor::OnWriteDone(bool ok) {
  bool broke = false;
  {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    if (!ok) {
      write_failed_ = true;
      writes_.clear();
      broke = true;
    }
  }
  if (broke) session_->Cancel("the client stream broke");
  Pump();
}

void GenerateReactor::OnCancel() { session_->Cancel("client cancelled or its deadline passed"); }

void GenerateReactor::OnDone() {
  session_->Release();
  delete this;
}

}  // namespace tandem::router
