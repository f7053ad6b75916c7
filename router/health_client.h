// HealthClient: the client side of the standard grpc.health.v1.Health/Check RPC.
//
// The health proto is not shipped with this gRPC installation, and linking a second copy of its
// descriptors beside another component's would clash at start-up, so the two tiny messages are
// encoded by hand and sent through a generic stub:
//   HealthCheckRequest  { string service = 1; }
//   HealthCheckResponse { ServingStatus status = 1; }   // SERVING = 1
//
// Contract: Check() reports OK only for SERVING; NOT_SERVING (or any other status) is
// UnavailableError("<address>: health status NOT_SERVING"); an RPC failure is that RPC's status.
// Thread safety: thread-safe; many checks may be in flight at once. The channel must outlive
// every check in flight.
#ifndef TANDEM_ROUTER_HEALTH_CLIENT_H_
#define TANDEM_ROUTER_HEALTH_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/generic/generic_stub.h"

namespace tandem::router {

class HealthClient {
 public:
  // `address` only names the peer in error messages.
  HealthClient(std::shared_ptr<grpc::Channel> channel, std::string address);

  // Asynchronous Check of `service` ("" = the whole server); `done` runs once, on a gRPC thread.
  void Check(const std::string& service, absl::Duration timeout,
             std::function<void(absl::Status)> done);
  // Blocking form of Check.
  absl::Status CheckNow(const std::string& service, absl::Duration timeout);

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::string address_;
  grpc::GenericStub stub_;
};

// True for the status Check reports when the server answered NOT_SERVING (it said so itself: draining
// or not ready), as opposed to a failed call.
bool IsNotServing(const absl::Status& status);

// Encoding helpers, exposed for tests.
std::string EncodeHealthCheckRequest(const std::string& service);
// The ServingStatus number in an encoded HealthCheckResponse (0 = UNKNOWN when absent);
// InvalidArgument for bytes that are not a HealthCheckResponse.
absl::StatusOr<int> DecodeHealthCheckResponse(const std::string& bytes);

}  // namespace tandem::router

#endif  // TANDEM_ROUTER_HEALTH_CLIENT_H_
