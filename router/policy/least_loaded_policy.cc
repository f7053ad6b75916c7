#include "router/policy/least_loaded_policy.h"

#include <tuple>

namespace tandem::policy {

PlacementDecision LeastLoadedPolicy::Place(const PlacementRequest& request,
                                           const ClusterSnapshot& snapshot) {
  int prefill = -1;
  for (int i = 0; i < static_cast<int>(snapshot.prefill.size()); ++i) {
    const PrefillWorkerState& w = snapshot.prefill[i];
    if (!w.healthy) continue;
    if (prefill < 0) {
      prefill = i;
      continue;
    }
    const PrefillWorkerState& best = snapshot.prefill[prefill];
    // Strict < keeps the lower index on ties.
    if (std::make_tuple(w.queued_prompt_tokens + w.running_tokens, w.queued_requests) <
        std::make_tuple(best.queued_prompt_tokens + best.running_tokens, best.queued_requests)) {
      prefill = i;
    }
  }
  if (prefill < 0) return PlacementDecision::Reject("no healthy prefill worker");

  int decode = -1;
  for (int i = 0; i < static_cast<int>(snapshot.decode.size()); ++i) {
    const DecodeWorkerState& w = snapshot.decode[i];
    if (!w.healthy) continue;
    if (decode < 0) {
      decode = i;
      continue;
    }
    const DecodeWorkerState& best = snapshot.decode[decode];
    if (std::make_tuple(-w.free_kv_blocks, w.running_batch_size, w.queued_requests) <
        std::make_tuple(-best.free_kv_blocks, best.running_batch_size, best.queued_requests)) {
      decode = i;
    }
  }
  if (decode < 0) return PlacementDecision::Reject("no healthy decode worker");
  return PlacementDecision::Accept(prefill, decode);
}

}  // namespace tandem::policy
