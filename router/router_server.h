// RouterServer: the router daemon as a library (DESIGN.md "daemons are libraries").
//
//   auto server = RouterServer::Start(options);   // binds (port 0 picks one), ready when it returns
//   ... server->port() ...
//   server->SetNotServing();                      // health NOT_SERVING first (graceful stop)
//   server->Shutdown(absl::Seconds(5));           // in-flight calls get the grace, then are cancelled
//
// Start reads MODEL_DIR/config.json (context length, vocabulary, EOS ids) and MODEL_DIR/tokenizer.json;
// the served model's name is the directory's basename. It checks every worker once before it returns
// (workers that fail stay out of the pool until they pass), starts the tandem.v1.Tandem service and the
// standard grpc.health.v1 service, and reports SERVING. With metrics_port >= 0 it also serves GET /metrics
// (router/router_metrics.h) over HTTP on host:metrics_port.
//
// Thread safety: Start/Shutdown from one thread; port() and address() from any.
#ifndef TANDEM_ROUTER_ROUTER_SERVER_H_
#define TANDEM_ROUTER_ROUTER_SERVER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "common/metrics_http.h"
#include "grpcpp/server.h"
#include "router/policy/placement_policy.h"
#include "server/grpc_server.h"
#include "router/worker_registry.h"

namespace tandem {
class DaemonServer;
}  // namespace tandem

namespace tandem::router {

class HttpFrontDoor;
class RouterMetrics;
class RouterState;
class TandemService;
class WorkerRegistry;

struct RouterOptions {
  std::string host = "127.0.0.1";
  int port = 0;                              // 0: any free port
  std::string model_dir;                     // config.json + tokenizer.json
  std::vector<std::string> prefill_addresses;  // host:port or dns:NAME:PORT each
  std::vector<std::string> decode_addresses;
  // Colocated workers (tandem colocated); prefill and decode lists may then be empty.
  std::vector<std::string> colocated_addresses;
  std::string policy = "round_robin";        // policy::PlacementPolicyNames()
  std::string latency_model_path;            // `tandem profile` JSON; required by policy "goodput"
  // Per role, overriding latency_model_path for every worker of that role (prefill workers on one kind
  // of device, decode workers on another), keyed by worker address as the snapshot ids are.
  std::string prefill_latency_model_path;
  std::string decode_latency_model_path;
  std::string colocated_latency_model_path;
  int default_max_tokens = 64;               // for requests with max_tokens 0
  int max_queue = 256;                       // Generate calls in flight before RESOURCE_EXHAUSTED
  absl::Duration health_interval = absl::Seconds(1);
  absl::Duration resolve_interval = absl::Seconds(5);  // dns: entries of the worker lists
  WorkerResolver resolver;                             // for dns: entries; empty: getaddrinfo (tests inject)
  int unhealthy_after_failures = 3;
  absl::Duration load_interval = absl::Milliseconds(200);
  int metrics_port = -1;                     // HTTP /metrics: -1 off, 0 any free port
  // The OpenAI-compatible HTTP API (router/http_front_door.h): -1 off, 0 any free port.
  int http_port = -1;
  // A Jinja chat template overriding the model's tokenizer_config.json chat_template (file path).
  std::string chat_template_path;
  std::string api_keys_path;         // --api-keys-file; empty: public APIs need no key
  int max_in_flight_per_client = 0;  // Generate calls one client (API key, or address) may have open; 0: no bound
  std::optional<ServerTls> tls;  // TLS on the public gRPC and HTTP ports; unset: plaintext
};

// The placement policy's inputs from the options: --latency-model for every worker, and
// --prefill-latency-model / --decode-latency-model for every worker of one role (keyed by address).
// With a role file and no --latency-model, both roles must be covered. Errors name the flag.
absl::StatusOr<policy::PlacementPolicyOptions> LoadPolicyOptions(const RouterOptions& options);

class RouterServer {
 public:
  static absl::StatusOr<std::unique_ptr<RouterServer>> Start(RouterOptions options);
  ~RouterServer();
  RouterServer(const RouterServer&) = delete;
  RouterServer& operator=(const RouterServer&) = delete;

  int port() const { return port_; }
  std::string address() const;  // host:port ([host]:port for IPv6)
  const std::string& model_name() const;
  // The worker registry (health, load, addresses), for tests and status pages.
  WorkerRegistry& registry();
  // The router's metrics, whether or not they are served over HTTP.
  const MetricsRegistry& metrics() const { return *metrics_; }
  // host:port of GET /metrics; empty when options.metrics_port was -1.
  std::string metrics_address() const;
  // host:port of the HTTP API; empty when options.http_port was -1.
  std::string http_address() const;

  // Health NOT_SERVING; new calls are still served until Shutdown.
  void SetNotServing();
  // Health NOT_SERVING, stop accepting calls, give in-flight calls `grace`, cancel what is left
  // (worker calls included), wait for every call to end, stop the health and load pollers.
  // Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(5));

 private:
  RouterServer() = default;

  RouterOptions options_;
  int port_ = 0;
  // Declared before state_: live until every reactor and the worker registry are gone.
  std::unique_ptr<MetricsRegistry> metrics_;
  std::unique_ptr<RouterMetrics> router_metrics_;
  std::unique_ptr<RouterState> state_;
  // state_ for the registry's poller thread: null until the state exists.
  std::atomic<RouterState*> live_state_{nullptr};
  std::unique_ptr<TandemService> service_;
  std::unique_ptr<DaemonServer> daemon_;             // gRPC + /metrics
  std::unique_ptr<HttpFrontDoor> http_;              // null without an HTTP port
  bool shut_down_ = false;
  // The health poller's view, applied to grpc.health.v1: SERVING only with a healthy prefill and decode
  // worker (issue 11, item 6).
  void UpdateServing();
  absl::Mutex serving_mu_;
  bool serving_ ABSL_GUARDED_BY(serving_mu_) = false;
  bool not_serving_forced_ ABSL_GUARDED_BY(serving_mu_) = false;  // SetNotServing / Shutdown
};

// "host:port", bracketing an IPv6 host.
std::string JoinHostPort(const std::string& host, int port);

}  // namespace tandem::router

#endif  // TANDEM_ROUTER_ROUTER_SERVER_H_
