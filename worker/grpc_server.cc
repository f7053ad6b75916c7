#include "worker/grpc_server.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace tandem {

absl::StatusOr<BuiltServer> BuildAndStartServer(const std::string& host, int port,
                                                const std::vector<grpc::Service*>& services) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  BuiltServer built;
  builder.AddListeningPort(absl::StrCat(host, ":", port), grpc::InsecureServerCredentials(), &built.port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  // Allow clients' keepalive pings every 10 s or more, even without active calls.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  for (grpc::Service* service : services) builder.RegisterService(service);
  built.server = builder.BuildAndStart();
  if (!built.server || built.port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":", port));
  }
  built.address = absl::StrCat(host, ":", built.port);
  built.server->GetHealthCheckService()->SetServingStatus(true);
  return built;
}

void StopServer(grpc::Server& server, absl::Duration grace) {
  server.GetHealthCheckService()->SetServingStatus(false);
  server.Shutdown(std::chrono::system_clock::now() +
                  std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)));
}

}  // namespace tandem
