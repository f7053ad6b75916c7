// RoundRobinPolicy: cycles through healthy prefill workers and, independently, healthy decode
// workers. Unhealthy workers are skipped without consuming a turn. Contract: placement_policy.h.
#ifndef TANDEM_ROUTER_POLICY_ROUND_ROBIN_POLICY_H_
#define TANDEM_ROUTER_POLICY_ROUND_ROBIN_POLICY_H_

#include <cstdint>

#include "router/policy/placement_policy.h"

namespace tandem::policy {

class RoundRobinPolicy : public PlacementPolicy {
 public:
  std::string_view name() const override { return "round_robin"; }
  PlacementDecision Place(const PlacementRequest& request, const ClusterSnapshot& snapshot) override;

 private:
  PlacementDecision PlacePair(const ClusterSnapshot& snapshot);

  uint64_t next_prefill_ = 0;  // index where the next prefill search starts (mod size)
  uint64_t next_decode_ = 0;
  // With colocated workers: the rotation runs over units, the pair side first (when the cluster has
  // prefill and decode workers), then each colocated worker.
  uint64_t next_unit_ = 0;
};

}  // namespace tandem::policy

#endif  // TANDEM_ROUTER_POLICY_ROUND_ROBIN_POLICY_H_
