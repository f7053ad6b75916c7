// tandem.worker.v1.DecodeWorker over a DecodeEngine: one reactor per streaming Decode call, translating
// between generated protobuf types and the engine.
#ifndef TANDEM_DECODE_DECODE_SERVICE_H_
#define TANDEM_DECODE_DECODE_SERVICE_H_

#include <functional>
#include <string>
#include <vector>

#include "common/dns.h"
#include "decode/decode_engine.h"
#include "proto/worker.grpc.pb.h"

namespace tandem {

class DecodeService final : public worker::v1::DecodeWorker::CallbackService {
 public:
  DecodeService(DecodeEngine& engine, KvLayout layout, std::string worker_id, int64_t max_context,
                int64_t vocab_size, int32_t block_size);

  // The prefill workers whose KV this worker pulls (host:port, or dns:NAME:PORT for a scaled set); a
  // Decode naming another kv.source is PERMISSION_DENIED. Empty: any source (a cluster on loopback).
  // Set before the server starts.
  void set_allowed_sources(AddressAllowList sources) { allowed_sources_ = std::move(sources); }

  grpc::ServerWriteReactor<worker::v1::DecodeResponse>* Decode(grpc::CallbackServerContext* context,
                                                               const worker::v1::DecodeRequest* request) override;
  grpc::ServerUnaryReactor* GetLoad(grpc::CallbackServerContext* context, const worker::v1::LoadRequest* request,
                                    worker::v1::LoadReport* response) override;

  // True while the worker's progress watchdog finds the engine stalled (DaemonServer::stalled): load
  // reports then say only that (LoadReport.engine_stalled).
  void set_stall_probe(std::function<bool()> probe) { stall_probe_ = std::move(probe); }

 private:
  std::function<bool()> stall_probe_;
  DecodeEngine& engine_;
  const KvLayout layout_;
  const std::string worker_id_;
  const int64_t max_context_;
  const int64_t vocab_size_;
  const int32_t block_size_;
  AddressAllowList allowed_sources_;
};

}  // namespace tandem

#endif  // TANDEM_DECODE_DECODE_SERVICE_H_
