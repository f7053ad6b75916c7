// WorkerRegistry: the router's view of its prefill and decode workers.
//
// Workers are fixed at construction (from `--prefill` / `--decode` flags). For each one the registry
// keeps a channel (max receive size 64 MiB), the generated stubs, its health and its last load
// report:
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

enum class WorkerRole { kPrefill, kDecode };

struct WorkerRegistryOptions {
  std::vector<std::string> prefill_addresses;  // host:port each
  std::vector<std::string> decode_addresses;
  absl::Duration health_interval = absl::Seconds(1);
  absl::Duration health_timeout = absl::Milliseconds(800);
  int unhealthy_after_failures = 3;
  absl::Duration load_interval = absl::Milliseconds(200);
  absl::Duration load_timeout = absl::Milliseconds(800);
  // Called on the poller's thread after every health round (the router's grpc.health.v1 status follows
  // whether a prefill and a decode worker are healthy). Must not block or call Shutdown.
  std::function<void()> after_health_round;
};

// Splits "host:port,host:port" and checks each entry; errors name `flag` ("--prefill").
absl::StatusOr<std::vector<std::string>> ParseWorkerAddresses(absl::string_view flag,
                                                              absl::string_view text);

class WorkerRegistry {
 public:
  // InvalidArgument for an empty list or a malformed address. Opens channels (lazily connecting).
  static absl::StatusOr<std::unique_ptr<WorkerRegistry>> Create(WorkerRegistryOptions options);
  ~WorkerRegistry();
  WorkerRegistry(const WorkerRegistry&) = delete;
  WorkerRegistry& operator=(const WorkerRegistry&) = delete;

  // One health round and one load round, then the background poller. Call once.
  void Start();
  // Stops the poller (waits for it). Idempotent.
  void Shutdown();

  policy::ClusterSnapshot Snapshot() const;

  int num_workers(WorkerRole role) const;
  const std::string& address(WorkerRole role, int index) const;
  bool healthy(WorkerRole role, int index) const;
  // The worker's last load report; nullopt before the first one arrives.
  std::optional<worker::v1::LoadReport> last_load(WorkerRole role, int index) const;
  worker::v1::PrefillWorker::Stub& prefill_stub(int index) const;
  worker::v1::DecodeWorker::Stub& decode_stub(int index) const;

  // A call to the worker failed with `status`; UNAVAILABLE takes it out of the pool at once.
  void ReportCallFailure(WorkerRole role, int index, const absl::Status& status);

  // One round now, waiting for every reply (or its timeout).
  void CheckHealthNow();
  void PollLoadNow();

 private:
  struct Worker;

  explicit WorkerRegistry(WorkerRegistryOptions options);
  Worker& worker(WorkerRole role, int index) const;
  void RecordHealth(Worker& worker, const absl::Status& status);
  void MarkUnavailable(Worker& worker, const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PollLoop();

  const WorkerRegistryOptions options_;
  std::vector<std::unique_ptr<Worker>> prefill_;
  std::vector<std::unique_ptr<Worker>> decode_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread poller_;
};

}  // namespace tandem::router

#endif  // TANDEM_ROUTER_WORKER_REGISTRY_H_
