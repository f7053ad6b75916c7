// The colocated worker daemon as a library: loads the model, sizes the KV pool, starts the colocated
// engine and serves tandem.worker.v1.ColocatedWorker plus grpc.health.v1 on host:port (port 0 picks a
// free one). `tandem colocated` is a thin main around it; `tandem serve` starts one beside a router.
//
// Thread safety: Start/Shutdown from one thread; the rest is internally synchronized.
#ifndef TANDEM_COLOCATED_COLOCATED_SERVER_H_
#define TANDEM_COLOCATED_COLOCATED_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "colocated/colocated_engine.h"
#include "common/metrics.h"
#include "worker/worker_model.h"

namespace tandem {

struct ColocatedServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  int metrics_port = -1;  // HTTP GET /metrics (colocated/colocated_metrics.h): -1 off, 0 any free port
  std::string worker_id;
  WorkerModelOptions model;
  ColocatedEngineOptions engine;
  // No engine step or loop pass for this long: health NOT_SERVING, load reports say "engine stalled"
  // (RELIABILITY.md F8). Zero: no watchdog.
  absl::Duration stall_timeout = absl::ZeroDuration();
};

class ColocatedServer {
 public:
  static absl::StatusOr<std::unique_ptr<ColocatedServer>> Start(const ColocatedServerOptions& options);
  ~ColocatedServer();

  int port() const;
  std::string address() const;
  ColocatedEngine& engine();
  const MetricsRegistry& metrics() const;
  std::string metrics_address() const;
  void Shutdown(absl::Duration grace = absl::Seconds(5));
  void SetNotServing();

  struct State;

 private:
  explicit ColocatedServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace tandem

#endif  // TANDEM_COLOCATED_COLOCATED_SERVER_H_
