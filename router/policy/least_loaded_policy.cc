#include "router/policy/least_loaded_policy.h"

#include <algorithm>
#include <tuple>

namespace tandem::policy {

LeastLoadedPolicy::Pending LeastLoadedPolicy::Since(const std::map<std::string, Pending>& pending,
                                                    const std::string& id, int64_t report_seq) {
  if (report_seq == 0) return {};
  auto it = pending.find(id);
  if (it == pending.end() || it->second.report_seq != report_seq) return {};
  return it->second;
}

void LeastLoadedPolicy::Add(std::map<std::string, Pending>& pending, const std::string& id, int64_t report_seq,
                            int64_t tokens) {
  if (report_seq == 0) return;
  Pending& p = pending[id];
  if (p.report_seq != report_seq) p = Pending{report_seq, 0, 0};
  ++p.requests;
  p.tokens += tokens;
}

PlacementDecision LeastLoadedPolicy::Place(const PlacementRequest& request, const ClusterSnapshot& snapshot) {
  // Load as the reports show it plus what this policy placed since.
  const auto prefill_key = [&](int i) {
    const PrefillWorkerState& w = snapshot.prefill[i];
    const Pending p = Since(prefill_pending_, w.id, w.report_seq);
    return std::make_tuple(w.queued_prompt_tokens + w.running_tokens + p.tokens, w.queued_requests + p.requests);
  };
  int prefill = -1;
  for (int i = 0; i < static_cast<int>(snapshot.prefill.size()); ++i) {
    if (!snapshot.prefill[i].healthy) continue;
    // Strict < keeps the lower index on ties.
    if (prefill < 0 || prefill_key(i) < prefill_key(prefill)) prefill = i;
  }

  const auto decode_key = [&](int i) {
    const DecodeWorkerState& w = snapshot.decode[i];
    const Pending p = Since(decode_pending_, w.id, w.report_seq);
    const int64_t block = std::max<int64_t>(1, w.block_size);
    const int64_t free_blocks = std::max<int64_t>(0, w.free_kv_blocks - (p.tokens + block - 1) / block);
    return std::make_tuple(-free_blocks, w.running_batch_size, w.queued_requests + p.requests);
  };
  int decode = -1;
  for (int i = 0; i < static_cast<int>(snapshot.decode.size()); ++i) {
    if (!snapshot.decode[i].healthy) continue;
    if (decode < 0 || decode_key(i) < decode_key(decode)) decode = i;
  }

  const auto colocated_requests = [&](int i) {
    const ColocatedWorkerState& w = snapshot.colocated[i];
    const Pending p = Since(colocated_pending_, w.id, w.report_seq);
    return w.queued_requests + w.prefilling_requests + w.running_batch_size + p.requests;
  };
  const auto colocated_key = [&](int i) {
    const ColocatedWorkerState& w = snapshot.colocated[i];
    const Pending p = Since(colocated_pending_, w.id, w.report_seq);
    return std::make_tuple(colocated_requests(i), w.queued_prompt_tokens + p.tokens);
  };
  int colocated = -1;
  for (int i = 0; i < static_cast<int>(snapshot.colocated.size()); ++i) {
    if (!snapshot.colocated[i].healthy) continue;
    if (colocated < 0 || colocated_key(i) < colocated_key(colocated)) colocated = i;
  }

  const bool pair = prefill >= 0 && decode >= 0;
  bool use_colocated = colocated >= 0 && !pair;
  if (colocated >= 0 && pair) {
    const DecodeWorkerState& d = snapshot.decode[decode];
    const Pending p = Since(decode_pending_, d.id, d.report_seq);
    use_colocated = colocated_requests(colocated) < d.running_batch_size + d.queued_requests + p.requests;
  }
  if (use_colocated) {
    const ColocatedWorkerState& w = snapshot.colocated[colocated];
    Add(colocated_pending_, w.id, w.report_seq, request.prompt_len);
    return PlacementDecision::AcceptColocated(colocated);
  }
  if (!pair) return RejectNoHealthyWorker(snapshot);
  Add(prefill_pending_, snapshot.prefill[prefill].id, snapshot.prefill[prefill].report_seq, request.prompt_len);
  Add(decode_pending_, snapshot.decode[decode].id, snapshot.decode[decode].report_seq,
      request.prompt_len + request.max_output_len);
  return PlacementDecision::Accept(prefill, decode);
}

}  // namespace tandem::policy
