// RouterState: what every request handler of one router shares — the served model and its tokenizer,
// the worker registry, the placement policy (behind a lock: policies are not thread-safe), request
// ids, the admission bound, and the set of live front-door sessions (so Shutdown can cancel their
// worker calls and wait for them).
//
// Thread safety: every method is thread-safe.
#ifndef TANDEM_ROUTER_ROUTER_STATE_H_
#define TANDEM_ROUTER_ROUTER_STATE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "router/api_keys.h"
#include "router/policy/placement_policy.h"
#include "router/request_validation.h"
#include "router/worker_registry.h"
#include "tokenizer/tokenizer.h"

namespace tandem::router {

class FrontDoorSession;
class RouterMetrics;

// The (prefill, decode) worker indices chosen for a request, or its colocated worker.
struct Placement {
  int prefill_index = -1;
  int decode_index = -1;
  int colocated_index = -1;  // >= 0: the request runs whole on this colocated worker
};

class RouterState {
 public:
  RouterState(ServedModel model, std::unique_ptr<Tokenizer> tokenizer,
              std::unique_ptr<WorkerRegistry> registry,
              std::unique_ptr<policy::PlacementPolicy> policy, int max_in_flight);

  const ServedModel& model() const { return model_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  WorkerRegistry& registry() { return *registry_; }

  // A router-unique id: a random prefix per router plus a counter ("r5f3a91c2-17").
  std::string NewRequestId();

  // Asks the policy for a pair on a fresh snapshot. Unavailable (with the policy's reason) when no
  // healthy pair exists; ResourceExhausted when the policy refuses for another reason (an SLO).
  absl::StatusOr<Placement> Place(const policy::PlacementRequest& request);
  // A healthy worker of `role` other than `exclude` to retry on, keeping the partner worker of the
  // other role (unused for kColocated); -1 when there is none.
  int PickReplacement(WorkerRole role, const policy::PlacementRequest& request, int exclude,
                      int partner_index);

  // Bounded concurrency: false when max_in_flight Generate calls are already admitted.
  bool TryAdmit();
  void ReleaseAdmission();
  int in_flight() const { return in_flight_.load(); }

  // The router's metrics; null when none were set. Set once, before the service starts.
  void set_metrics(RouterMetrics* metrics) { metrics_ = metrics; }
  // Keys a public call must carry (api_keys.h); none by default. Set once, before the service starts.
  void set_api_keys(ApiKeys keys) { api_keys_ = std::move(keys); }
  const ApiKeys& api_keys() const { return api_keys_; }
  // Checks a public call's Authorization value; a refusal is counted as a rejection. Returns the
  // client's identity for per-client limits: "api-key-<n>" (the n-th key of the file), or "" without keys.
  absl::StatusOr<std::string> Authenticate(absl::string_view authorization) const;

  // Per-client bound on concurrent Generate calls (0: none). A client is its API key, or its address
  // without the port where the router has no keys. Set once, before the service starts.
  void set_max_in_flight_per_client(int n) { max_in_flight_per_client_ = n; }
  int max_in_flight_per_client() const { return max_in_flight_per_client_; }
  // False (nothing taken) when `client` already has max_in_flight_per_client calls in flight.
  bool TryAdmitClient(const std::string& client);
  void ReleaseClient(const std::string& client);
  RouterMetrics* metrics() const { return metrics_; }

  // Live session bookkeeping (FrontDoorSession's constructor and destructor).
  void Register(FrontDoorSession* session);
  void Unregister(FrontDoorSession* session);
  // Cancels every live session's worker calls, then waits until no session is left.
  void CancelAllAndWait();
  // The worker stopped answering health checks: every call in flight on it is cancelled and treated
  // as UNAVAILABLE (retried before the first token, resumed on another pair after it).
  void AbandonCallsOn(WorkerRole role, int index);

 private:
  const ServedModel model_;
  const std::unique_ptr<Tokenizer> tokenizer_;
  const std::unique_ptr<WorkerRegistry> registry_;
  const int max_in_flight_;
  const std::string id_prefix_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<int> in_flight_{0};
  RouterMetrics* metrics_ = nullptr;
  ApiKeys api_keys_;
  int max_in_flight_per_client_ = 0;
  absl::Mutex clients_mu_;
  absl::flat_hash_map<std::string, int> client_in_flight_ ABSL_GUARDED_BY(clients_mu_);

  absl::Mutex policy_mu_;
  const std::unique_ptr<policy::PlacementPolicy> policy_ ABSL_PT_GUARDED_BY(policy_mu_);

  absl::Mutex live_mu_;
  absl::flat_hash_set<FrontDoorSession*> live_ ABSL_GUARDED_BY(live_mu_);
};

}  // namespace tandem::router

#endif  // TANDEM_ROUTER_ROUTER_STATE_H_
