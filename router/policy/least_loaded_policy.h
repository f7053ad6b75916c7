// LeastLoadedPolicy: the healthy prefill worker with the fewest queued + running prompt tokens (ties:
// fewer queued requests, then lower index), and the healthy decode worker with the most free KV blocks
// (ties: smaller running batch, fewer queued, then lower index). Contract: placement_policy.h.
//
// Load figures arrive as periodic reports (snapshot `report_seq`): between two reports every placement
// would see the same figures and a burst would pile onto one pair. So the policy counts what it placed
// on each worker since that worker's last report (by id) as queued there: its prompt tokens on the
// prefill worker, its prompt + max_tokens worth of KV blocks on the decode worker. A snapshot with
// report_seq 0 is exact and counts nothing.
//
// Colocated workers: the one with the fewest requests in it (queued + prefilling + decoding + placed
// since its report; ties: fewer prompt tokens waiting, then lower index). In a mixed cluster the
// request goes to that worker when it holds fewer requests than the chosen decode worker (running +
// queued + placed since), else to the pair: both count what a request would share its steps with.
#ifndef TANDEM_ROUTER_POLICY_LEAST_LOADED_POLICY_H_
#define TANDEM_ROUTER_POLICY_LEAST_LOADED_POLICY_H_

#include <map>
#include <string>

#include "router/policy/placement_policy.h"

namespace tandem::policy {

class LeastLoadedPolicy : public PlacementPolicy {
 public:
  std::string_view name() const override { return "least_loaded"; }
  PlacementDecision Place(const PlacementRequest& request, const ClusterSnapshot& snapshot) override;

 private:
  struct Pending {
    int64_t report_seq = 0;  // the report these placements came after
    int64_t requests = 0;
    int64_t tokens = 0;  // prefill: prompt tokens; decode: prompt + max_tokens
  };
  // What was placed on a worker since report `report_seq` (nothing when the snapshot has moved on).
  static Pending Since(const std::map<std::string, Pending>& pending, const std::string& id, int64_t report_seq);
  static void Add(std::map<std::string, Pending>& pending, const std::string& id, int64_t report_seq,
                  int64_t tokens);

  std::map<std::string, Pending> prefill_pending_;
  std::map<std::string, Pending> decode_pending_;
  std::map<std::string, Pending> colocated_pending_;  // tokens: prompt tokens
};

}  // namespace tandem::policy

#endif  // TANDEM_ROUTER_POLICY_LEAST_LOADED_POLICY_H_
