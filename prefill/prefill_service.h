// tandem.worker.v1.PrefillWorker over a PrefillEngine: the translation between generated protobuf types
// and the engine, and nothing else.
#ifndef TANDEM_PREFILL_PREFILL_SERVICE_H_
#define TANDEM_PREFILL_PREFILL_SERVICE_H_

#include <functional>
#include <mutex>
#include <string>

#include "prefill/prefill_engine.h"
#include "proto/worker.grpc.pb.h"

namespace tandem {

class PrefillService final : public worker::v1::PrefillWorker::CallbackService {
 public:
  PrefillService(PrefillEngine& engine, std::string worker_id, int64_t max_context, int64_t vocab_size,
                 int32_t block_size);

  // What decode workers dial to pull KV (host:port), put into every KvHandle. Set once right after the
  // server binds (with port 0 nobody can call before the port is known).
  void set_address(const std::string& address);
  // Tests: runs right before a successful Prefill's response is sent (to cancel the call there).
  void set_before_respond_for_testing(std::function<void(grpc::CallbackServerContext*)> hook) {
    before_respond_ = std::move(hook);
  }

  grpc::ServerUnaryReactor* Prefill(grpc::CallbackServerContext* context, const worker::v1::PrefillRequest* request,
                                    worker::v1::PrefillResponse* response) override;
  grpc::ServerUnaryReactor* ReleaseKv(grpc::CallbackServerContext* context,
                                      const worker::v1::ReleaseKvRequest* request,
                                      worker::v1::ReleaseKvResponse* response) override;
  grpc::ServerWriteReactor<worker::v1::KvChunk>* PullKv(grpc::CallbackServerContext* context,
                                                       const worker::v1::PullKvRequest* request) override;
  grpc::ServerUnaryReactor* GetLoad(grpc::CallbackServerContext* context, const worker::v1::LoadRequest* request,
                                    worker::v1::LoadReport* response) override;

  // True while the worker's progress watchdog finds the engine stalled (DaemonServer::stalled): load
  // reports then say only that (LoadReport.engine_stalled).
  void set_stall_probe(std::function<bool()> probe) { stall_probe_ = std::move(probe); }

 private:
  std::function<bool()> stall_probe_;
  PrefillEngine& engine_;
  const std::string worker_id_;
  mutable std::mutex mu_;
  std::string address_;
  const int64_t max_context_;
  const int64_t vocab_size_;
  const int32_t block_size_;
  std::function<void(grpc::CallbackServerContext*)> before_respond_;
};

}  // namespace tandem

#endif  // TANDEM_PREFILL_PREFILL_SERVICE_H_
