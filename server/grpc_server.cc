#include "server/grpc_server.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace tandem {

absl::StatusOr<BuiltServer> BuildAndStartServer(const std::string& host, int port,
                                                const std::vector<grpc::Service*>& services, const ServerTls* tls) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  BuiltServer built;
  const std::string listen = absl::StrContains(host, ":") && !absl::StartsWith(host, "[")
                                 ? absl::StrCat("[", host, "]:", port)
                                 : absl::StrCat(host, ":", port);
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (tls != nullptr) {
    grpc::SslServerCredentialsOptions ssl(tls->client_ca_pem.empty()
                                              ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                              : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = tls->client_ca_pem;
    ssl.pem_key_cert_pairs.push_back({tls->private_key_pem, tls->cert_chain_pem});
    credentials = grpc::SslServerCredentials(ssl);
  }
  builder.AddListeningPort(listen, credentials, &built.port);
  // gRPC sets SO_REUSEPORT by default, which let a second cluster start on a port in use and split
  // the traffic with the first (issue 11, item 5).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  // Allow clients' keepalive pings every 10 s or more, even without active calls.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  for (grpc::Service* service : services) builder.RegisterService(service);
  built.server = builder.BuildAndStart();
  if (!built.server || built.port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen, " (in use, or not an address here)"));
  }
  built.address = absl::StrContains(host, ":") && !absl::StartsWith(host, "[") ? absl::StrCat("[", host, "]:", built.port)
                                                                               : absl::StrCat(host, ":", built.port);
  built.server->GetHealthCheckService()->SetServingStatus(true);
  return built;
}

void StopServer(grpc::Server& server, absl::Duration grace) {
  server.GetHealthCheckService()->SetServingStatus(false);
  server.Shutdown(std::chrono::system_clock::now() +
                  std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)));
}

}  // namespace tandem
