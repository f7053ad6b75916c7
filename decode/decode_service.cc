#include "decode/decode_service.h"

#include <algorithm>

#include <deque>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "kvtransfer/kv_proto.h"
#include "server/cluster_secret.h"
#include "worker/token_stream_reactor.h"
#include "proto/grpc_status.h"

namespace tandem {


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
  auto* reactor = new TokenStreamReactor();
  absl::StatusOr<KvHandle> handle = HandleFromProto(request->kv());
  if (handle.ok() && !allowed_sources_.Allows(handle->source)) {
    // Only the cluster's prefill workers are dialled (issue 11, item 3).
    handle = absl::PermissionDeniedError(absl::StrCat(
        "kv.source ", LogSafe(handle->source, 64), " is not a prefill worker of this cluster (--kv-sources)"));
  }
  if (!handle.ok()) {
    TokenStreamReactor::EndCall(reactor->channel(), handle.status(), {});
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
  job.on_tokens = reactor->TokenCallback();
  job.on_done = [channel](absl::Status status, DecodeSummary summary) {
    worker::v1::DecodeFinal final;
    final.set_finish_reason(summary.finish_reason);
    final.set_queue_ms(summary.queue_ms);
    final.set_kv_transfer_ms(summary.transfer_ms);
    final.set_compute_ms(summary.compute_ms);
    TokenStreamReactor::EndCall(channel, std::move(status), std::move(final));
  };
  const std::string request_id = job.request_id;
  absl::Status submitted = engine_.Submit(std::move(job));
  if (!submitted.ok()) {
    TANDEM_LOG_REQ(INFO, "decode", request_id) << "refused: " << submitted;
    TokenStreamReactor::EndCall(channel, submitted, {});
  }
  return reactor;
}

grpc::ServerUnaryReactor* DecodeService::GetLoad(grpc::CallbackServerContext* context,
                                                 const worker::v1::LoadRequest* request,
                                                 worker::v1::LoadReport* response) {
  if (grpc::Status auth = CheckClusterSecret(*context); !auth.ok()) return FinishedUnaryReactor(context, auth);
  if (stall_probe_ && stall_probe_()) {  // the engine may hold its lock: do not ask it
    response->set_worker_id(worker_id_);
    response->set_role("decode");
    response->set_engine_stalled(true);
    return FinishedUnaryReactor(context, grpc::Status::OK);
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
  return FinishedUnaryReactor(context, grpc::Status::OK);
}

}  // namespace tandem
