// WorkerRegistry: the router's view of its prefill, decode and colocated workers.
//
// Workers come from `--prefill` / `--decode`: fixed "host:port" entries, and "dns:NAME:PORT" entries
// that the registry re-resolves every `resolve_interval` (a Compose service name or a Kubernetes
// headless Service lists every replica). An address a DNS target lists joins as a new worker slot; one
// it stops listing leaves the pool (its slot stays, unhealthy, so indices held by calls in flight stay
// valid and its streams finish); one that comes back reuses its slot. A failed resolution keeps the
// last answer. Worker indices only grow. For each worker the registry keeps a channel (max receive
// size 64 MiB), the generated stubs, its health and its last load report:
//   - Health: grpc.health.v1 Check (service "") every `health_interval`; `unhealthy_after_failures`
//     consecutive failures take a worker out of the pool, one passing check puts it back. A worker is
//     out of the pool until its first passing check.
//   - A transport error (UNAVAILABLE) on a real call — reported through ReportCallFailure(), or seen
//     by the load poll — takes the worker out at once.
//   - Load: GetLoad every `load_interval`; Snapshot() turns the reports into a policy::ClusterSnapshot
//     whose vector indices equal the registry's worker indices (unhealthy workers included, with
//     healthy=false).
// Start() runs one health round and one load round before it returns, then polls in a background
// thread until Shutdown() (also run by the destructor).
//
// Thread safety: every method is thread-safe. Stubs are thread-safe and live as long as the registry.
#ifndef TANDEM_ROUTER_WORKER_REGISTRY_H_
#define TANDEM_ROUTER_WORKER_REGISTRY_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "proto/worker.grpc.pb.h"
#include "router/health_client.h"
#include "router/policy/snapshot.h"

namespace tandem::router {

enum class WorkerRole { kPrefill = 0, kDecode = 1, kColocated = 2 };
// "prefill", "decode", "colocated".
const char* RoleName(WorkerRole role);

// What the router serves, to recognise a worker that serves another model (its load report says).
struct ExpectedModel {
  int64_t num_layers = 0;  // 0: not checked
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t vocab_size = 0;
};

// Resolves a DNS target's name to "ip:port" addresses (default: ResolveHostPorts, getaddrinfo).
using WorkerResolver = std::function<absl::StatusOr<std::vector<std::string>>(const std::string& host, int port)>;

struct WorkerRegistryOptions {
  std::vector<std::string> prefill_addresses;  // host:port or dns:NAME:PORT each
  std::vector<std::string> decode_addresses;
  // Workers that prefill and decode in one engine (tandem colocated); a router needs prefill and decode
  // workers, colocated workers, or both.
  std::vector<std::string> colocated_addresses;
  absl::Duration resolve_interval = absl::Seconds(5);
  WorkerResolver resolver;  // empty: ResolveHostPorts
  absl::Duration health_interval = absl::Seconds(1);
  absl::Duration health_timeout = absl::Milliseconds(800);
  int unhealthy_after_failures = 3;
  absl::Duration load_interval = absl::Milliseconds(200);
  absl::Duration load_timeout = absl::Milliseconds(800);
  // Called on the poller's thread after every health round (the router's grpc.health.v1 status follows
  // whether a prefill and a decode worker are healthy). Must not block or call Shutdown.
  std::function<void()> after_health_round;
  // Called on the poller's thread when a worker leaves the pool because it stopped answering health
  // checks (hung, stopped, partitioned; not a worker that said NOT_SERVING): the router abandons the
  // calls in flight on it. Must not block or call Shutdown.
  std::function<void(WorkerRole, int)> on_unresponsive;
  // A worker whose load report shows another model stays out of the pool (health checks alone would
  // let it in, and every request placed there would fail) until it reports the expected one.
  ExpectedModel expected_model;
};

// Splits "host:port,dns:NAME:PORT,..." and checks each entry; errors name `flag` ("--prefill").
absl::StatusOr<std::vector<std::string>> ParseWorkerAddresses(absl::string_view flag,
                                                              absl::string_view text);

class WorkerRegistry {
 public:
  // InvalidArgument for an empty list or a malformed entry. Opens channels (lazily connecting); DNS
  // targets are first resolved by Start().
  static absl::StatusOr<std::unique_ptr<WorkerRegistry>> Create(WorkerRegistryOptions options);
  ~WorkerRegistry();
  WorkerRegistry(const WorkerRegistry&) = delete;
  WorkerRegistry& operator=(const WorkerRegistry&) = delete;

  // One resolution round, one health round and one load round, then the background poller. Call once.
  void Start();
  // Stops the poller (waits for it). Idempotent.
  void Shutdown();

  policy::ClusterSnapshot Snapshot() const;

  // Runs `added(role, index)` for every worker slot there is, then for every slot created later (on
  // the poller's thread), never concurrently with itself. For per-worker metrics. Call once; `added`
  // must not call back into SetWorkerAdded.
  void SetWorkerAdded(std::function<void(WorkerRole, int)> added);
  // Whether the worker is listed now (always, for fixed addresses; while its DNS target lists it).
  bool member(WorkerRole role, int index) const;

  int num_workers(WorkerRole role) const;
  const std::string& address(WorkerRole role, int index) const;
  bool healthy(WorkerRole role, int index) const;
  // The worker's last load report; nullopt before the first one arrives.
  std::optional<worker::v1::LoadReport> last_load(WorkerRole role, int index) const;
  worker::v1::PrefillWorker::Stub& prefill_stub(int index) const;
  worker::v1::DecodeWorker::Stub& decode_stub(int index) const;
  worker::v1::ColocatedWorker::Stub& colocated_stub(int index) const;

  // A call to the worker failed with `status`; UNAVAILABLE takes it out of the pool at once.
  void ReportCallFailure(WorkerRole role, int index, const absl::Status& status);

  // One round now, waiting for every reply (or its timeout).
  void ResolveNow();
  void CheckHealthNow();
  void PollLoadNow();

 private:
  struct Worker;

  struct Target {
    WorkerRole role;
    std::string host;
    int port;
    std::string name;  // "dns:NAME:PORT"
    bool failing = false;  // the last resolution failed (logged once per change)
  };

  explicit WorkerRegistry(WorkerRegistryOptions options);
  Worker& worker(WorkerRole role, int index) const;
  // Appends a slot; returns its index. Runs the worker-added callback.
  int AddWorker(WorkerRole role, const std::string& address, const std::string& target);
  std::vector<Worker*> Members() const;
  // Runs the worker-added callback for the slots it has not seen yet.
  void NotifyAdded();
  void RecordHealth(Worker& worker, const absl::Status& status);
  // True when the worker just left the pool for failing its checks (not for answering NOT_SERVING).
  bool RecordHealthLocked(Worker& worker, const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkUnavailable(Worker& worker, const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CheckModelLocked(Worker& worker, const worker::v1::LoadReport& report) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PollLoop();

  const WorkerRegistryOptions options_;
  std::vector<Target> targets_;  // touched by Start() and then the poller only
  // Slots only grow; a Worker never moves (unique_ptr), so references outlive the lock.
  mutable absl::Mutex list_mu_;  // taken after mu_ where both are held
  std::vector<std::unique_ptr<Worker>> lists_[3] ABSL_GUARDED_BY(list_mu_);  // by WorkerRole
  absl::Mutex added_mu_;  // serialises the worker-added callback
  std::function<void(WorkerRole, int)> added_ ABSL_GUARDED_BY(added_mu_);
  int notified_[3] ABSL_GUARDED_BY(added_mu_) = {0, 0, 0};  // slots the callback has seen, by WorkerRole

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread poller_;
};

}  // namespace tandem::router

#endif  // TANDEM_ROUTER_WORKER_REGISTRY_H_
