// tandem.worker.v1.ColocatedWorker over a ColocatedEngine: one reactor per streaming Generate call.
#ifndef TANDEM_COLOCATED_COLOCATED_SERVICE_H_
#define TANDEM_COLOCATED_COLOCATED_SERVICE_H_

#include <functional>
#include <cstdint>
#include <string>

#include "colocated/colocated_engine.h"
#include "kvtransfer/kv_transport.h"
#include "proto/worker.grpc.pb.h"

namespace tandem {

class ColocatedService final : public worker::v1::ColocatedWorker::CallbackService {
 public:
  ColocatedService(ColocatedEngine& engine, KvLayout layout, std::string worker_id, int64_t max_context,
                   int64_t vocab_size, int32_t block_size);

  grpc::ServerWriteReactor<worker::v1::DecodeResponse>* Generate(
      grpc::CallbackServerContext* context, const worker::v1::ColocatedRequest* request) override;
  grpc::ServerUnaryReactor* GetLoad(grpc::CallbackServerContext* context, const worker::v1::LoadRequest* request,
                                    worker::v1::LoadReport* response) override;

  // True while the worker's progress watchdog finds the engine stalled (DaemonServer::stalled): load
  // reports then say only that (LoadReport.engine_stalled).
  void set_stall_probe(std::function<bool()> probe) { stall_probe_ = std::move(probe); }

 private:
  std::function<bool()> stall_probe_;
  ColocatedEngine& engine_;
  const KvLayout layout_;
  const std::string worker_id_;
  const int64_t max_context_;
  const int64_t vocab_size_;
  const int32_t block_size_;
};

}  // namespace tandem

#endif  // TANDEM_COLOCATED_COLOCATED_SERVICE_H_
