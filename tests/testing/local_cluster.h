// LocalCluster: a whole cluster in one test process. A random-weight `tiny` model (model/demo_model)
// written under the test's temporary directory, one prefill worker and one decode worker (one CPU
// thread and 16 MiB of KV each) and a router, each on a free loopback port.
//
// Thread safety: the servers are thread-safe; Start and destruction are for one thread.
#ifndef TANDEM_TESTS_TESTING_LOCAL_CLUSTER_H_
#define TANDEM_TESTS_TESTING_LOCAL_CLUSTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "decode/decode_server.h"
#include "prefill/prefill_server.h"
#include "router/router_server.h"

namespace tandem::test_support {

struct LocalClusterOptions {
  std::string name;      // names the model directory, which must be unique per process
  bool metrics = false;  // GET /metrics on a free port in all three servers
};

class LocalCluster {
 public:
  static absl::StatusOr<std::unique_ptr<LocalCluster>> Start(const LocalClusterOptions& options);
  // Shuts down the router, then the decode and the prefill worker (one second of grace each).
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  const std::string& model_dir() const { return model_dir_; }
  PrefillServer& prefill() { return *prefill_; }
  DecodeServer& decode() { return *decode_; }
  router::RouterServer& router() { return *router_; }

 private:
  LocalCluster() = default;
  std::string model_dir_;
  std::unique_ptr<PrefillServer> prefill_;
  std::unique_ptr<DecodeServer> decode_;
  std::unique_ptr<router::RouterServer> router_;
};

}  // namespace tandem::test_support

#endif  // TANDEM_TESTS_TESTING_LOCAL_CLUSTER_H_
