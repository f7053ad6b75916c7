// The cluster secret: what a router and its workers prove to each other that they belong together
// (issue 11, S-items; issue 16's dynamic membership). Every call between them carries
// `x-tandem-cluster-secret`; a worker refuses a worker-API call without the right one with
// UNAUTHENTICATED. Health checks stay open (load balancers and Kubernetes probes carry no secret).
// Without a secret (the default, and `tandem up` on loopback makes one of its own) nothing is checked.
//
// The secret is process-wide: set it once at start, before any server or channel is built. It travels
// in plain text unless the network is private or TLS'd; its job is to keep other processes and other
// clusters out, not to replace transport security.
//
// Thread safety: SetClusterSecret before threads start; everything else is thread-safe.
#ifndef TANDEM_SERVER_CLUSTER_SECRET_H_
#define TANDEM_SERVER_CLUSTER_SECRET_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/channel_arguments.h"
#include "grpcpp/support/server_callback.h"

namespace tandem {

inline constexpr char kClusterSecretHeader[] = "x-tandem-cluster-secret";

// Reads a secret file: surrounding whitespace dropped; at least 16 characters of printable ASCII.
// Errors name `flag` and the path.
absl::StatusOr<std::string> ReadClusterSecretFile(const std::string& flag, const std::string& path);

// Writes a fresh random secret (32 hex digits from the OS) to `path`, mode 0600.
absl::Status WriteRandomClusterSecret(const std::string& path);

void SetClusterSecret(std::string secret);
bool HaveClusterSecret();

// Compares every byte whatever the first difference (a secret is not guessed by timing); false for
// different lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// OK when no secret is set or the call carries it; UNAUTHENTICATED otherwise (constant-time compare).
grpc::Status CheckClusterSecret(const grpc::CallbackServerContext& context);

// A channel to another member of the cluster: insecure credentials, and the secret on every call.
std::shared_ptr<grpc::Channel> CreateClusterChannel(const std::string& address, const grpc::ChannelArguments& args);

// A unary call's reactor, finished with `status` (OK after filling the response, or a refusal).
inline grpc::ServerUnaryReactor* FinishedUnaryReactor(grpc::CallbackServerContext* context,
                                                      const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// A server-streaming reactor that ends at once with `status` (a refused streaming call).
template <typename Response>
grpc::ServerWriteReactor<Response>* FinishedWriteReactor(const grpc::Status& status) {
  class Finished final : public grpc::ServerWriteReactor<Response> {
   public:
    explicit Finished(const grpc::Status& status) { this->Finish(status); }
    void OnDone() override { delete this; }
  };
  return new Finished(status);
}

}  // namespace tandem

#endif  // TANDEM_SERVER_CLUSTER_SECRET_H_
