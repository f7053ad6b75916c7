#include "router/policy/round_robin_policy.h"

namespace tandem::policy {
namespace {

// First healthy index at or after *cursor (cyclically); advances the cursor past it. -1 if none.
template <typename Worker>
int NextHealthy(const std::vector<Worker>& workers, uint64_t* cursor) {
  const size_t n = workers.size();
  for (size_t step = 0; step < n; ++step) {
    const size_t index = (*cursor + step) % n;
    if (workers[index].healthy) {
      *cursor = index + 1;
      return static_cast<int>(index);
    }
  }
  return -1;
}

}  // namespace

PlacementDecision RoundRobinPolicy::Place(const PlacementRequest& request,
                                          const ClusterSnapshot& snapshot) {
  const bool has_pairs = !snapshot.prefill.empty() || !snapshot.decode.empty();
  if (snapshot.colocated.empty()) return PlacePair(snapshot);
  // Units: [the pair side], colocated 0..n-1; the next one that can take the request.
  const size_t pair_units = has_pairs ? 1 : 0;
  const size_t units = pair_units + snapshot.colocated.size();
  for (size_t step = 0; step < units; ++step) {
    const size_t unit = (next_unit_ + step) % units;
    if (unit < pair_units) {
      PlacementDecision pair = PlacePair(snapshot);
      if (!pair.accepted) continue;
      next_unit_ = unit + 1;
      return pair;
    }
    const size_t c = unit - pair_units;
    if (snapshot.colocated[c].healthy) {
      next_unit_ = unit + 1;
      return PlacementDecision::AcceptColocated(static_cast<int>(c));
    }
  }
  return RejectNoHealthyWorker(snapshot);
}

PlacementDecision RoundRobinPolicy::PlacePair(const ClusterSnapshot& snapshot) {
  // Check both sides before moving either cursor, so a rejection leaves the rotation unchanged.
  uint64_t prefill_cursor = next_prefill_;
  uint64_t decode_cursor = next_decode_;
  const int prefill = NextHealthy(snapshot.prefill, &prefill_cursor);
  const int decode = NextHealthy(snapshot.decode, &decode_cursor);
  if (prefill < 0 || decode < 0) return RejectNoHealthyWorker(snapshot);
  next_prefill_ = prefill_cursor;
  next_decode_ = decode_cursor;
  return PlacementDecision::Accept(prefill, decode);
}

}  // namespace tandem::policy
