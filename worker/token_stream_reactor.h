// The server side of a streaming call that relays an engine's tokens to the router, shared by the decode
// and colocated workers.
#ifndef TANDEM_WORKER_TOKEN_STREAM_REACTOR_H_
#define TANDEM_WORKER_TOKEN_STREAM_REACTOR_H_

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/support/server_callback.h"
#include "proto/grpc_status.h"
#include "proto/worker.pb.h"

namespace tandem {

// One streaming call of token ids (DecodeWorker.Decode, ColocatedWorker.Generate). The engine produces
// tokens on its thread; they queue here and are written one message at a time (tokens that pile up while a write is in flight go out together). The engine's
// callbacks hold a shared Channel, not the reactor, so they stay safe after the call is gone.
class TokenStreamReactor : public grpc::ServerWriteReactor<worker::v1::DecodeResponse> {
 public:
  struct Channel {
    std::mutex mu;
    TokenStreamReactor* reactor = nullptr;  // null once the call is done
  };

  TokenStreamReactor() : channel_(std::make_shared<Channel>()) { channel_->reactor = this; }

  std::shared_ptr<Channel> channel() { return channel_; }
  std::shared_ptr<std::atomic<bool>> cancelled() { return cancelled_; }

  // The engine's token callback for this call: tokens reach the call while it lives, later ones are dropped.
  std::function<void(std::vector<int32_t>, std::vector<float>)> TokenCallback() {
    return [channel = channel_](std::vector<int32_t> tokens, std::vector<float> logprobs) {
      std::unique_lock<std::mutex> lock(channel->mu);
      if (channel->reactor) channel->reactor->AddTokens(tokens, logprobs, lock);
    };
  }
  // Ends the call behind `channel` (if it still lives) with `status`, and `final` when OK. Any thread.
  static void EndCall(const std::shared_ptr<Channel>& channel, absl::Status status, worker::v1::DecodeFinal final) {
    std::unique_lock<std::mutex> lock(channel->mu);
    if (channel->reactor) channel->reactor->End(std::move(status), std::move(final), lock);
  }

  // Engine side (any thread). `lock` holds channel()->mu; it is released before gRPC is called, since
  // gRPC may run OnWriteDone/OnDone inline.
  void AddTokens(const std::vector<int32_t>& tokens, const std::vector<float>& logprobs,
                 std::unique_lock<std::mutex>& lock) {
    pending_tokens_.insert(pending_tokens_.end(), tokens.begin(), tokens.end());
    pending_logprobs_.insert(pending_logprobs_.end(), logprobs.begin(), logprobs.end());
    Act(lock);
  }
  // `final` goes out as the last message when `status` is OK.
  void End(absl::Status status, worker::v1::DecodeFinal final, std::unique_lock<std::mutex>& lock) {
    ended_ = true;
    end_status_ = std::move(status);
    if (end_status_.ok()) *pending_final_.mutable_final() = std::move(final);
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

}  // namespace tandem

#endif  // TANDEM_WORKER_TOKEN_STREAM_REACTOR_H_
