// DaemonServer: the one server setup of every tandem daemon (router, prefill and decode workers): the
// gRPC server of server/grpc_server.h (message limits, keepalive policy, grpc.health.v1, no port
// sharing) plus the optional GET /metrics endpoint, started and stopped the same way everywhere.
//
//   auto server = DaemonServer::Start({host, port, metrics_port}, {&service}, &metrics);
//   ...
//   server->Shutdown(grace);   // health NOT_SERVING, in-flight calls get `grace`, then cancelled
//   server->StopMetrics();     // last: scrapes read state the daemon tears down before
//
// Thread safety: Start/Shutdown/StopMetrics from one thread; the accessors from any.
#ifndef TANDEM_SERVER_DAEMON_SERVER_H_
#define TANDEM_SERVER_DAEMON_SERVER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "common/metrics_http.h"
#include "server/grpc_server.h"

namespace tandem {

struct DaemonServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;           // 0: any free port
  int metrics_port = -1;  // -1: no /metrics; 0: any free port
  std::optional<ServerTls> tls;  // gRPC over TLS (the router's public port); unset: plaintext
};

class DaemonServer {
 public:
  // InvalidArgument for ports out of range; Unavailable when an address cannot be bound (a port in use
  // by another process included). `metrics` may be null when metrics_port is -1.
  static absl::StatusOr<std::unique_ptr<DaemonServer>> Start(const DaemonServerOptions& options,
                                                             const std::vector<grpc::Service*>& services,
                                                             const MetricsRegistry* metrics);
  ~DaemonServer();

  int port() const { return built_.port; }
  const std::string& address() const { return built_.address; }
  // host:port of GET /metrics; empty without one.
  std::string metrics_address() const;
  grpc::Server& grpc_server() { return *built_.server; }
  // Health SERVING or NOT_SERVING (drain). While the progress watchdog finds the engine stalled the
  // health status is NOT_SERVING whatever was asked; it returns to what was asked when the engine moves.
  void SetServing(bool serving);
  // The progress watchdog (RELIABILITY.md F8): a thread reading `heartbeat` (when the engine thread last
  // moved; worker/heartbeat.h) every quarter of `stall_timeout` (at most 250 ms). A heartbeat older than
  // `stall_timeout` makes the worker stalled: health NOT_SERVING, an ERROR log, stalled() true (load
  // reports carry it, so that the router abandons the worker's calls and resumes them elsewhere). A zero
  // timeout watches nothing. Call once, after Start.
  void WatchProgress(std::function<absl::Time()> heartbeat, absl::Duration stall_timeout, std::string name);
  bool stalled() const { return stalled_.load(); }
  // Idempotent.
  void Shutdown(absl::Duration grace);
  void StopMetrics();

 private:
  DaemonServer() = default;
  void ApplyServing();

  BuiltServer built_;
  std::unique_ptr<MetricsHttpServer> metrics_http_;
  bool shut_down_ = false;
  std::mutex serving_mu_;
  bool serving_ = true;  // what SetServing asked for
  std::atomic<bool> stalled_{false};
  std::atomic<bool> stop_watchdog_{false};
  std::thread watchdog_;
};

// A worker daemon's watchdog over its engine: DaemonServer::WatchProgress on the engine's heartbeat,
// and the service's load reports told when it is stalled. `server`, `engine` and `service` must
// outlive the server's Shutdown.
template <typename Engine, typename Service>
void WatchEngine(DaemonServer& server, const Engine& engine, Service& service, absl::Duration stall_timeout,
                 const char* name) {
  server.WatchProgress([&engine] { return engine.last_heartbeat(); }, stall_timeout, name);
  service.set_stall_probe([&server] { return server.stalled(); });
}

}  // namespace tandem

#endif  // TANDEM_SERVER_DAEMON_SERVER_H_
