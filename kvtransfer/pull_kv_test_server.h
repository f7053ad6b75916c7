// A loopback gRPC server whose PrefillWorker service answers PullKv from a KvSource through
// NewPullKvReactor and every other method with UNIMPLEMENTED. For tests and benchmarks only: the real
// prefill worker's service lives in prefill/.
//
// Thread safety: Start, address and Shutdown are called from one thread.
#ifndef TANDEM_KVTRANSFER_PULL_KV_TEST_SERVER_H_
#define TANDEM_KVTRANSFER_PULL_KV_TEST_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "kvtransfer/kv_transport.h"

namespace tandem {

class PullKvTestServer {
 public:
  // Binds 127.0.0.1 on a free port. `source` is not owned and must outlive the server.
  static absl::StatusOr<std::unique_ptr<PullKvTestServer>> Start(KvSource* source);
  ~PullKvTestServer();

  // "127.0.0.1:<port>".
  const std::string& address() const { return address_; }
  // Cancels calls in flight and stops listening; idempotent.
  void Shutdown();

 private:
  PullKvTestServer() = default;
  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace tandem

#endif  // TANDEM_KVTRANSFER_PULL_KV_TEST_SERVER_H_
