#include "router/policy/snapshot.h"

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

}  // namespace tandem::policy
