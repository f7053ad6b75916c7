// The prefill worker daemon as a library: loads the model, sizes the KV pool, starts the engine and
// serves tandem.worker.v1.PrefillWorker plus grpc.health.v1 on host:port (port 0 picks a free one).
// `tandem prefill` is a thin main around it; tests run whole clusters in one process with it.
//
// Thread safety: Start/Shutdown from one thread; the rest is internally synchronized.
#ifndef TANDEM_PREFILL_PREFILL_SERVER_H_
#define TANDEM_PREFILL_PREFILL_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "prefill/prefill_engine.h"
#include "worker/worker_model.h"

namespace tandem {

struct PrefillServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  int metrics_port = -1;  // HTTP GET /metrics (prefill/prefill_metrics.h) on host: -1 off, 0 any free port
  std::string worker_id;  // for logs and load reports
  WorkerModelOptions model;
  PrefillEngineOptions engine;
  // No engine step or loop pass for this long: health NOT_SERVING, load reports say "engine stalled"
  // (RELIABILITY.md F8). Zero: no watchdog.
  absl::Duration stall_timeout = absl::ZeroDuration();
};

class PrefillServer {
 public:
  static absl::StatusOr<std::unique_ptr<PrefillServer>> Start(const PrefillServerOptions& options);
  ~PrefillServer();

  int port() const;
  std::string address() const;
  PrefillEngine& engine();
  const MetricsRegistry& metrics() const;
  std::string metrics_address() const;  // host:port of GET /metrics; empty without a metrics port
  // Health NOT_SERVING first, then stops accepting RPCs (in-flight ones get `grace`), then the engine.
  void Shutdown(absl::Duration grace = absl::Seconds(5));
  // Health NOT_SERVING while calls are still taken (the first step of a drain).
  void SetNotServing();

  struct State;

 private:
  explicit PrefillServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace tandem

#endif  // TANDEM_PREFILL_PREFILL_SERVER_H_
