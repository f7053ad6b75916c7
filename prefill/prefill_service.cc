#include "prefill/prefill_service.h"

#include <mutex>

#include "common/logging.h"
#include "kvtransfer/grpc_transport.h"
#include "kvtransfer/kv_proto.h"
#include "server/cluster_secret.h"
#include "proto/grpc_status.h"

namespace tandem {
namespace {

// One Prefill call: a client cancel or deadline marks the job cancelled (the engine then frees its KV
// instead of leasing it); the engine's completion finishes the call. When the call is cancelled after
// the engine leased the KV (the deadline passing while the response is on its way), the caller never
// learns the lease id, so the lease is released here instead of waiting out its expiry (issue 11,
// item 4).
class PrefillReactor : public grpc::ServerUnaryReactor {
 public:
  PrefillReactor(PrefillEngine& engine, grpc::CallbackServerContext* context,
                 std::shared_ptr<std::atomic<bool>> cancelled)
      : engine_(engine), context_(context), cancelled_(std::move(cancelled)) {}
  void set_lease(const std::string& lease_id) {
    std::lock_guard<std::mutex> lock(mu_);
    lease_id_ = lease_id;
  }
  void OnCancel() override { cancelled_->store(true); }
  void OnDone() override {
    std::string orphan;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if ((cancelled_->load() || context_->IsCancelled()) && !lease_id_.empty()) orphan = lease_id_;
    }
    if (!orphan.empty() && engine_.Release(orphan)) {
      TANDEM_LOG(INFO, "prefill") << "released KV lease " << orphan << ": its Prefill call was cancelled";
    }
    delete this;
  }

 private:
  PrefillEngine& engine_;
  grpc::CallbackServerContext* const context_;
  std::shared_ptr<std::atomic<bool>> cancelled_;
  std::mutex mu_;
  std::string lease_id_;
};

}  // namespace

PrefillService::PrefillService(PrefillEngine& engine, std::string worker_id, int64_t max_context,
                               int64_t vocab_size, int32_t block_size)
    : engine_(engine),
      worker_id_(std::move(worker_id)),
      max_context_(max_context),
      vocab_size_(vocab_size),
      block_size_(block_size) {}

void PrefillService::set_address(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  address_ = address;
}

grpc::ServerUnaryReactor* PrefillService::Prefill(grpc::CallbackServerContext* context,
                                                  const worker::v1::PrefillRequest* request,
                                                  worker::v1::PrefillResponse* response) {
  if (grpc::Status auth = CheckClusterSecret(*context); !auth.ok()) return FinishedUnaryReactor(context, auth);
  PrefillJob job;
  job.request_id = request->request_id();
  job.prompt.assign(request->prompt().begin(), request->prompt().end());
  job.sampling = {request->sampling().temperature(), request->sampling().top_k(),
                  request->sampling().top_p() == 0 ? 1.0f : request->sampling().top_p(), request->sampling().seed()};
  if (request->lease_ms() != 0) job.lease = absl::Milliseconds(request->lease_ms());  // Submit bounds it
  job.logprobs = request->logprobs();
  auto* reactor = new PrefillReactor(engine_, context, job.cancelled);
  const KvLayout layout = engine_.layout();
  std::string address;
  {
    std::lock_guard<std::mutex> lock(mu_);
    address = address_;
  }
  const std::string request_id = job.request_id;
  job.done = [reactor, response, layout, address, context, hook = before_respond_](absl::StatusOr<PrefillResult> result) {
    if (!result.ok()) {
      reactor->Finish(ToGrpcStatus(result.status()));
      return;
    }
    response->set_first_token(result->first_token);
    response->set_first_logprob(result->first_logprob);
    response->set_queue_ms(result->queue_ms);
    response->set_compute_ms(result->compute_ms);
    KvHandle handle;
    handle.lease_id = result->lease_id;
    handle.source = address;
    handle.num_tokens = result->num_tokens;
    handle.layout = layout;
    handle.lease_ms = result->lease_ms;
    handle.transport = "grpc";
    HandleToProto(handle, response->mutable_kv());
    reactor->set_lease(result->lease_id);
    if (hook) hook(context);
    reactor->Finish(grpc::Status::OK);
  };
  TANDEM_LOG_REQ(DEBUG, "prefill", request_id) << "prefill of " << job.prompt.size() << " tokens queued";
  absl::Status submitted = engine_.Submit(std::move(job));
  if (!submitted.ok()) {
    TANDEM_LOG_REQ(INFO, "prefill", request_id) << "refused: " << submitted;
    reactor->Finish(ToGrpcStatus(submitted));
  }
  return reactor;
}

grpc::ServerUnaryReactor* PrefillService::ReleaseKv(grpc::CallbackServerContext* context,
                                                    const worker::v1::ReleaseKvRequest* request,
                                                    worker::v1::ReleaseKvResponse* response) {
  if (grpc::Status auth = CheckClusterSecret(*context); !auth.ok()) return FinishedUnaryReactor(context, auth);
  response->set_released(engine_.Release(request->lease_id()));
  return FinishedUnaryReactor(context, grpc::Status::OK);
}

grpc::ServerWriteReactor<worker::v1::KvChunk>* PrefillService::PullKv(grpc::CallbackServerContext* context,
                                                                     const worker::v1::PullKvRequest* request) {
  if (grpc::Status auth = CheckClusterSecret(*context); !auth.ok()) {
    return FinishedWriteReactor<worker::v1::KvChunk>(auth);
  }
  return NewPullKvReactor(context, request, &engine_);
}

grpc::ServerUnaryReactor* PrefillService::GetLoad(grpc::CallbackServerContext* context,
                                                  const worker::v1::LoadRequest* request,
                                                  worker::v1::LoadReport* response) {
  if (grpc::Status auth = CheckClusterSecret(*context); !auth.ok()) return FinishedUnaryReactor(context, auth);
  if (stall_probe_ && stall_probe_()) {  // the engine may hold its lock: do not ask it
    response->set_worker_id(worker_id_);
    response->set_role("prefill");
    response->set_engine_stalled(true);
    return FinishedUnaryReactor(context, grpc::Status::OK);
  }
  const PrefillLoad load = engine_.Load();
  response->set_worker_id(worker_id_);
  response->set_role("prefill");
  response->set_queued_requests(load.queued_requests);
  response->set_queued_tokens(load.queued_tokens);
  response->set_running_requests(load.running_requests);
  response->set_running_context_tokens(load.running_tokens);
  response->set_kv_blocks_free(load.blocks_free);
  response->set_kv_blocks_total(load.blocks_total);
  response->set_block_size(block_size_);
  response->set_leases_held(load.leases_held);
  response->set_recent_step_ms(load.recent_step_ms);
  response->set_max_context(max_context_);
  response->set_vocab_size(vocab_size_);
  LayoutToProto(engine_.layout(), response->mutable_layout());
  return FinishedUnaryReactor(context, grpc::Status::OK);
}

}  // namespace tandem
