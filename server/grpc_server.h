// Building and stopping the gRPC servers of the daemons the same way everywhere: message size limits,
// keepalive policy (RELIABILITY.md S5), the standard grpc.health.v1 service, port 0 support, and no
// SO_REUSEPORT (a second daemon on a port in use fails to start instead of sharing it).
#ifndef TANDEM_SERVER_GRPC_SERVER_H_
#define TANDEM_SERVER_GRPC_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "server/server_tls.h"

namespace tandem {

struct BuiltServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string address;  // host:port actually bound
};

// Binds host:port (insecure credentials: daemons belong on loopback or a private cluster network),
// registers `services` and starts. Health is SERVING once this returns.
absl::StatusOr<BuiltServer> BuildAndStartServer(const std::string& host, int port,
                                                const std::vector<grpc::Service*>& services,
                                                const ServerTls* tls = nullptr);

// Health NOT_SERVING, then Shutdown with `grace` for in-flight calls.
void StopServer(grpc::Server& server, absl::Duration grace);

}  // namespace tandem

#endif  // TANDEM_SERVER_GRPC_SERVER_H_
