#include "router/policy/snapshot.h"

#include <algorithm>
#include <utility>

namespace tandem::policy {

PlacementDecision PlacementDecision::Accept(int prefill_index, int decode_index) {
  PlacementDecision decision;
  decision.accepted = true;
  decision.prefill_index = prefill_index;
  decision.decode_index = decode_index;
  return decision;
}

PlacementDecision PlacementDecision::AcceptColocated(int colocated_index) {
  PlacementDecision decision;
  decision.accepted = true;
  decision.colocated_index = colocated_index;
  return decision;
}

PlacementDecision PlacementDecision::Reject(std::string reason) {
  PlacementDecision decision;
  decision.reject_reason = std::move(reason);
  return decision;
}

PlacementDecision RejectNoHealthyWorker(const ClusterSnapshot& snapshot) {
  const bool has_pairs = !snapshot.prefill.empty() || !snapshot.decode.empty();
  if (!snapshot.colocated.empty()) {
    return PlacementDecision::Reject(
        has_pairs ? "no healthy worker: no healthy prefill/decode pair and no healthy colocated worker"
                  : "no healthy colocated worker");
  }
  const auto healthy = [](const auto& w) { return w.healthy; };
  if (std::none_of(snapshot.prefill.begin(), snapshot.prefill.end(), healthy)) {
    return PlacementDecision::Reject("no healthy prefill worker");
  }
  return PlacementDecision::Reject("no healthy decode worker");
}

}  // namespace tandem::policy
