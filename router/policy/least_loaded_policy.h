// LeastLoadedPolicy: the healthy prefill worker with the fewest queued + running prompt tokens (ties:
// fewer queued requests, then lower index), and the healthy decode worker with the most free KV blocks
// (ties: smaller running batch, fewer queued, then lower index). Stateless. Contract:
// placement_policy.h.
#ifndef TANDEM_ROUTER_POLICY_LEAST_LOADED_POLICY_H_
#define TANDEM_ROUTER_POLICY_LEAST_LOADED_POLICY_H_

#include "router/policy/placement_policy.h"

namespace tandem::policy {

class LeastLoadedPolicy : public PlacementPolicy {
 public:
  std::string_view name() const override { return "least_loaded"; }
  PlacementDecision Place(const PlacementRequest& request, const ClusterSnapshot& snapshot) override;
};

}  // namespace tandem::policy

#endif  // TANDEM_ROUTER_POLICY_LEAST_LOADED_POLICY_H_
