// The decode worker daemon as a library: loads the model, sizes the KV pool, starts the engine with a
// KV transport, and serves tandem.worker.v1.DecodeWorker plus grpc.health.v1 on host:port (port 0 picks
// a free one). `tandem decode` is a thin main around it.
//
// Thread safety: Start/Shutdown from one thread; the rest is internally synchronized.
#ifndef TANDEM_DECODE_DECODE_SERVER_H_
#define TANDEM_DECODE_DECODE_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "decode/decode_engine.h"
#include "worker/worker_model.h"

namespace tandem {

struct DecodeServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  int metrics_port = -1;  // HTTP GET /metrics (decode/decode_metrics.h) on host: -1 off, 0 any free port
  std::string worker_id;
  WorkerModelOptions model;
  DecodeEngineOptions engine;
  // No engine step or loop pass for this long: health NOT_SERVING, load reports say "engine stalled"
  // (RELIABILITY.md F8). Zero: no watchdog.
  absl::Duration stall_timeout = absl::ZeroDuration();
  // Fault injection for tests (tandem decode --fault-hang-after-steps): after this many steps the engine
  // thread stops, as a hung kernel would, while the process and its health service keep answering.
  int64_t fault_hang_after_steps = 0;
  std::string kv_transport = "grpc";
  // Prefill workers (host:port) this worker may pull KV from; empty: any (decode_service.h).
  std::vector<std::string> kv_sources;
  // Used instead of kv_transport when set (tests: fault injection); not owned, must outlive the server.
  KvTransport* transport_override = nullptr;
};

class DecodeServer {
 public:
  static absl::StatusOr<std::unique_ptr<DecodeServer>> Start(const DecodeServerOptions& options);
  ~DecodeServer();

  int port() const;
  std::string address() const;
  DecodeEngine& engine();
  const MetricsRegistry& metrics() const;
  std::string metrics_address() const;  // host:port of GET /metrics; empty without a metrics port
  void Shutdown(absl::Duration grace = absl::Seconds(5));
  // Health NOT_SERVING while calls are still taken (the first step of a drain).
  void SetNotServing();

  struct State;

 private:
  explicit DecodeServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace tandem

#endif  // TANDEM_DECODE_DECODE_SERVER_H_
