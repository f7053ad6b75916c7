// PlacementPolicy: picks the (prefill, decode) pair for one request from a snapshot of the cluster.
//
// Contract:
//   - Pure: no I/O, no threads, no clock reads. The only input is the request and the snapshot; state
//     kept inside the object (a round-robin cursor) must depend only on the calls made to it.
//   - Never places on a worker whose `healthy` is false. When no healthy prefill worker exists the
//     decision is a rejection with reason "no healthy prefill worker" (likewise "no healthy decode
//     worker").
//   - Indices in the decision refer to the snapshot passed to that call.
// Thread safety: not thread-safe; the router calls it from one thread (or under a lock), the simulator
// from its event loop.
#ifndef TANDEM_ROUTER_POLICY_PLACEMENT_POLICY_H_
#define TANDEM_ROUTER_POLICY_PLACEMENT_POLICY_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <map>
#include <optional>

#include "absl/status/statusor.h"
#include "router/policy/latency_model.h"
#include "router/policy/snapshot.h"

namespace tandem::policy {

class PlacementPolicy {
 public:
  virtual ~PlacementPolicy() = default;

  // The flag value that names this policy ("round_robin").
  virtual std::string_view name() const = 0;

  virtual PlacementDecision Place(const PlacementRequest& request, const ClusterSnapshot& snapshot) = 0;
};

// Names accepted by MakePlacementPolicy, in the order --help lists them.
std::vector<std::string> PlacementPolicyNames();

// Inputs some policies need. "goodput" needs `latency_model` (the `--latency-model` file).
struct PlacementPolicyOptions {
  std::optional<LatencyModel> latency_model;  // every worker's step times, unless overridden below
  std::map<std::string, LatencyModel> worker_latency_models = {};  // by worker id (snapshot `id`)
};

// "round_robin", "least_loaded" or "goodput"; anything else is InvalidArgument naming the value.
// "goodput" without options.latency_model is InvalidArgument naming --latency-model.
absl::StatusOr<std::unique_ptr<PlacementPolicy>> MakePlacementPolicy(std::string_view name);
absl::StatusOr<std::unique_ptr<PlacementPolicy>> MakePlacementPolicy(std::string_view name,
                                                                     const PlacementPolicyOptions& options);

}  // namespace tandem::policy

#endif  // TANDEM_ROUTER_POLICY_PLACEMENT_POLICY_H_
