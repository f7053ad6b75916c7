#include "decode/decode_service.h"

#include <algorithm>

#include <deque>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "kvtransfer/kv_proto.h"
#include "server/cluster_secret.h"
#include "proto/grpc_status.h"

namespace tandem {
namespace {

// One Decode call. The engine produces tokens on its thread; they queue here and are written one
// message at a time (tokens that pile up while a write is in flight go out together). The engine's
// callbacks hold a shared Channel, not the reactor, so they stay safe after the call is gone.
class DecodeReactor : public grpc::ServerWriteReactor<worker::v1::DecodeResponse> {
 public:
  struct Channel {
    std::mutex mu;
    DecodeReactor* reactor = nullptr;  // null once the call is done
  };

  DecodeReactor() : channel_(std::make_shared<Channel>()) { channel_->reactor = this; }

  std::shared_ptr<Channel> channel() { return channel_; }
  std::shared_ptr<std::atomic<bool>> cancelled() { return cancelled_; }

  // Engine side (any thread). `lock` holds channel()->mu; it is released before gRPC is called, since
  // gRPC may run OnWriteDone/OnDone inline.
  void AddTokens(const std::vector<int32_t>& tokens, const std::vector<float>& logprobs,
                 std::unique_lock<std::mutex>& lock) {
    pending_tokens_.insert(pending_tokens_.end(), tokens.begin(), tokens.end());
    pending_logprobs_.insert(pending_logprobs_.end(), logprobs.begin(), logprobs.end());
    Act(lock);
  }
  void End(absl::Status status, const DecodeSummary& summary, std::unique_lock<std::mutex>& lock) {
    ended_ = true;
    end_status_ = std::move(status);
    if (end_status_.ok()) {
      auto* final = pending_final_.mutable_final();
      final->set_finish_reason(summary.finish_reason);
      final->set_queue_ms(summary.queue_ms);
      final->set_kv_transfer_ms(summary.transfer_ms);
      final->set_compute_ms(summary.compute_ms);
    }
    Act(lock);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(channel_->mu);
    writing_ = false;
    if (!ok) {
      // The client is gone: stop the sequence; the engine's End() finishes the call.
      cancelled_->store(true);
      write_failed_ = true;
    }
    Act(lock);
  }
  void OnCancel() override { cancelled_->store(true); }
  void OnDone() override {
    {
      std::lock_guard<std::mutex> lock(channel_->mu);
      channel_->reactor = nullptr;
    }
    delete this;
  }

 private:
  // Decides the next write or the finish under the lock, then performs it unlocked. At most one write
  // is in flight (writing_), and Finish is called once (finished_), so `this` is alive until then.
  void Act(std::unique_lock<std::mutex>& lock) {
    if (writing_ || finished_) return;
    if (!write_failed_ && !pending_tokens_.empty()) {
      out_.Clear();
      out_.mutable_token_ids()->Add(pending_tokens_.begin(), pending_tokens_.end());
      out_.mutable_logprobs()->Add(pending_logprobs_.begin(), pending_logprobs_.end());
      pending_tokens_.clear();
      pending_logprobs_.clear();
      if (ended_ && end_status_.ok()) {
        *out_.mutable_final() = pending_final_.final();
        final_sent_ = true;
      }
      writing_ = true;
      lock.unlock();
      StartWrite(&out_);
      return;
    }
    if (!ended_) return;
    if (end_status_.ok() && !final_sent_ && !write_failed_) {
      out_ = pending_final_;
      final_sent_ = true;
      writing_ = true;
      lock.unlock();
      StartWrite(&out_);
      return;
    }
    finished_ = true;
    const grpc::Status status = write_failed_ && end_status_.ok()
                                    ? grpc::Status(grpc::StatusCode::CANCELLED, "client went away")
                                    : ToGrpcStatus(end_status_);
    lock.unlock();
    Finish(status);
  }

  std::shared_ptr<Channel> channel_;
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
  std::vector<int32_t> pending_tokens_;
  std::vector<float> pending_logprobs_;  // one per pending token when the request asked for them
  worker::v1::DecodeResponse pending_final_;
  worker::v1::DecodeResponse out_;
  absl::Status end_status_;
  bool ended_ = false;
  bool writing_ = false;
  bool final_sent_ = false;
  bool write_failed_ = false;
  bool finished_ = false;
};

}  // namespace

DecodeService::DecodeService(DecodeEngine& engine, KvLayout layout, std::string worker_id, int64_t max_context,
                             int64_t vocab_size, int32_t block_size)
    : engine_(engine),
      layout_(std::move(layout)),
      worker_id_(std::move(worker_id)),
      max_context_(max_context),
      vocab_size_(vocab_size),
      block_size_(block_size) {}

grpc::ServerWriteReactor<worker::v1::DecodeResponse>* DecodeService::Decode(grpc::CallbackServerContext* context,
                                                                           const worker::v1::DecodeRequest* request) {
  if (grpc::Status auth = CheckClusterSecret(*context); !auth.ok()) {
    return FinishedWriteReactor<worker::v1::DecodeResponse>(auth);
  }
  auto* reactor = new DecodeReactor();
  absl::StatusOr<KvHandle> handle = HandleFromProto(request->kv());
  if (handle.ok() && !allowed_sources_.Allows(handle->source)) {
    // Only the cluster's prefill workers are dialled (issue 11, item 3).
    handle = absl::PermissionDeniedError(absl::StrCat(
        "kv.source ", LogSafe(handle->source, 64), " is not a prefill worker of this cluster (--kv-sources)"));
  }
  if (!handle.ok()) {
    std::unique_lock<std::mutex> lock(reactor->channel()->mu);
    reactor->End(handle.status(), {}, lock);
    return reactor;
  }
  DecodeJob job;
  job.request_id = request->request_id();
  job.prompt.assign(request->prompt().begin(), request->prompt().end());
  job.first_token = request->first_token();
  job.rng_draws_used = request->rng_draws_used() == 0 ? 1 : request->rng_draws_used();
  job.kv = std::move(*handle);
  job.sampling = {request->sampling().temperature(), request->sampling().top_k(),
                  request->sampling().top_p() == 0 ? 1.0f : request->sampling().top_p(), request->sampling().seed()};
  job.max_tokens = request->max_tokens();
  job.stop_token_ids.assign(request->stop_token_ids().begin(), request->stop_token_ids().end());
  job.cancelled = reactor->cancelled();
  auto channel = reactor->channel();
  job.logprobs = request->logprobs();
  job.on_tokens = [channel](std::vector<int32_t> tokens, std::vector<float> logprobs) {
    std::unique_lock<std::mutex> lock(channel->mu);
    if (channel->reactor) channel->reactor->AddTokens(tokens, logprobs, lock);
  };
  job.on_done = [channel](absl::Status status, DecodeSummary summary) {
    std::unique_lock<std::mutex> lock(channel->mu);
    if (channel->reactor) channel->reactor->End(std::move(status), summary, lock);
  };
  const std::string request_id = job.request_id;
  absl::Status submitted = engine_.Submit(std::move(job));
  if (!submitted.ok()) {
    TANDEM_LOG_REQ(INFO, "decode", request_id) << "refused: " << submitted;
    std::unique_lock<std::mutex> lock(channel->mu);
    reactor->End(submitted, {}, lock);
  }
  return reactor;
}

grpc::ServerUnaryReactor* DecodeService::GetLoad(grpc::CallbackServerContext* context,
                                                 const worker::v1::LoadRequest* request,
                                                 worker::v1::LoadReport* response) {
  if (grpc::Status auth = CheckClusterSecret(*context); !auth.ok()) {
    auto* refused = context->DefaultReactor();
    refused->Finish(auth);
    return refused;
  }
  const DecodeLoad load = engine_.Load();
  response->set_worker_id(worker_id_);
  response->set_role("decode");
  response->set_queued_requests(load.queued_requests);
  response->set_running_requests(load.running_requests);
  response->set_running_context_tokens(load.running_context_tokens);
  response->set_kv_blocks_free(load.blocks_free);
  response->set_kv_blocks_total(load.blocks_total);
  response->set_block_size(block_size_);
  response->set_recent_step_ms(load.recent_step_ms);
  response->set_max_context(max_context_);
  response->set_vocab_size(vocab_size_);
  LayoutToProto(layout_, response->mutable_layout());
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace tandem
