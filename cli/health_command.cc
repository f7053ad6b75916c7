// tandem health: one grpc.health.v1 Check against a router or a worker, for container health checks
// (Docker Compose `healthcheck`, scripts). Exit 0 when the server answers SERVING, 1 when it answers
// anything else or cannot be reached (the reason on stderr), 2 for bad flags.
#include <cstdio>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "router/health_client.h"

namespace tandem {

int HealthCommand(const std::vector<std::string>& args) {
  std::string addr;
  std::string service;
  int64_t timeout_ms = 2000;
  bool quiet = false;
  FlagParser parser("tandem health --addr HOST:PORT [flags]");
  parser.AddString("addr", &addr, "the router's or worker's gRPC address");
  parser.AddString("service", &service, "health service name; empty: the whole server");
  parser.AddInt("timeout-ms", &timeout_ms, "deadline of the check (default 2000)");
  parser.AddBool("quiet", &quiet, "print nothing on success");
  absl::Status status = parser.Parse(args);
  if (parser.help_requested()) {
    std::fputs(parser.Usage().c_str(), stdout);
    return 0;
  }
  if (status.ok() && addr.empty()) status = absl::InvalidArgumentError("--addr is required");
  if (status.ok() && timeout_ms <= 0) {
    status = absl::InvalidArgumentError(absl::StrFormat("--timeout-ms must be > 0, got %d", timeout_ms));
  }
  if (!status.ok()) {
    std::fprintf(stderr, "tandem health: %s\n", status.ToString().c_str());
    return 2;
  }
  router::HealthClient client(grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()), addr);
  status = client.CheckNow(service, absl::Milliseconds(timeout_ms));
  if (!status.ok()) {
    std::fprintf(stderr, "tandem health: %s\n", status.ToString().c_str());
    return 1;
  }
  if (!quiet) std::printf("%s: SERVING\n", addr.c_str());
  return 0;
}

}  // namespace tandem
