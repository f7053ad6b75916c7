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

#include <memory>
#include <optional>
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
  void SetServing(bool serving);
  // Idempotent.
  void Shutdown(absl::Duration grace);
  void StopMetrics();

 private:
  DaemonServer() = default;
  BuiltServer built_;
  std::unique_ptr<MetricsHttpServer> metrics_http_;
  bool shut_down_ = false;
};

}  // namespace tandem

#endif  // TANDEM_SERVER_DAEMON_SERVER_H_
