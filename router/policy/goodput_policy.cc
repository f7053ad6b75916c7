#include "router/policy/goodput_policy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tandem::policy {
namespace {

// Slacks closer than this are a tie (then the predicted E2E decides).
constexpr double kSlackEpsilon = 1e-9;

// "850 ms", "3.2 ms", "1.9 s": a person reads these in rejection reasons.
std::string FormatMs(double ms) {
  if (ms >= 1000.0) return absl::StrFormat("%.1f s", ms / 1000.0);
  if (ms >= 10.0) return absl::StrFormat("%.0f ms", ms);
  return absl::StrFormat("%.1f ms", ms);
}

// Prefill time of `requests` prompts totalling `tokens` when their lengths are not known one by one:
// equal lengths give sum(l^2) = tokens^2 / requests.
double PrefillMsForTotals(const LatencyModel& model, int64_t tokens, int64_t requests) {
  const double t = static_cast<double>(tokens);
  const double n = static_cast<double>(std::max<int64_t>(1, requests));
  return model.PrefillMsFromSums(t, t * t / n);
}

// KV admission: the whole request (prompt + max_tokens) is reserved at once. A worker whose snapshot
// has no KV data (total 0) is not checked.
void PredictKv(const PlacementRequest& request, int64_t prompt_len, int64_t block_size, int64_t free_blocks,
               int64_t total_blocks, PairPrediction& out) {
  if (total_blocks <= 0) return;
  const int64_t block = std::max<int64_t>(1, block_size);
  const int64_t tokens = prompt_len + std::max<int64_t>(0, request.max_output_len);
  out.kv_blocks_needed = (tokens + block - 1) / block;
  out.kv_fits = free_blocks >= out.kv_blocks_needed;
}

struct Scored {
  PairPrediction prediction;
  bool meets = false;      // every set SLO, no harm, KV fits
  double slack = 0.0;      // min over set SLOs of (SLO - predicted) / SLO
  double violation = 0.0;  // sum of predicted / SLO - 1 over what is missed
  double e2e_ms = 0.0;
};

}  // namespace

double CorrectionFactor(double observed_ms, double predicted_ms) {
  if (!(observed_ms > 0) || !(predicted_ms > 0)) return 1.0;
  return std::clamp(observed_ms / predicted_ms, kMinCorrection, kMaxCorrection);
}

GoodputPolicy::GoodputPolicy(GoodputModels models) : models_(std::move(models)) {}

const LatencyModel& GoodputPolicy::PrefillModel(const std::string& id) const {
  auto it = models_.by_worker_id.find(id);
  return it == models_.by_worker_id.end() ? models_.prefill : it->second;
}

const LatencyModel& GoodputPolicy::DecodeModel(const std::string& id) const {
  auto it = models_.by_worker_id.find(id);
  return it == models_.by_worker_id.end() ? models_.decode : it->second;
}

const LatencyModel& GoodputPolicy::ColocatedModel(const std::string& id) const {
  auto it = models_.by_worker_id.find(id);
  if (it != models_.by_worker_id.end()) return it->second;
  return models_.colocated.has_value() ? *models_.colocated : models_.decode;
}

double GoodputPolicy::PrefillCorrection(const PrefillWorkerState& worker) const {
  if (worker.recent_step_ms <= 0 || worker.recent_batch_tokens <= 0) return 1.0;
  return CorrectionFactor(worker.recent_step_ms, PrefillMsForTotals(PrefillModel(worker.id), worker.recent_batch_tokens,
                                                                    worker.recent_batch_requests));
}

double GoodputPolicy::DecodeCorrection(const DecodeWorkerState& worker) const {
  if (worker.recent_step_ms <= 0 || worker.recent_batch_size <= 0) return 1.0;
  const LatencyModel& model = DecodeModel(worker.id);
  return CorrectionFactor(worker.recent_step_ms,
                          model.DecodeStepMs(worker.recent_batch_size, worker.recent_batch_context_tokens));
}

PairPrediction GoodputPolicy::Predict(const PlacementRequest& request, const ClusterSnapshot& snapshot,
                                      int prefill_index, int decode_index) const {
  PairPrediction out;
  out.prefill_index = prefill_index;
  out.decode_index = decode_index;
  const PrefillWorkerState& p = snapshot.prefill[static_cast<size_t>(prefill_index)];
  const DecodeWorkerState& d = snapshot.decode[static_cast<size_t>(decode_index)];
  const LatencyModel& prefill_model = PrefillModel(p.id);
  const LatencyModel& decode_model = DecodeModel(d.id);
  const int64_t prompt_len = std::max<int64_t>(0, request.prompt_len);
  const int64_t expected_output =
      request.expected_output_len > 0 ? request.expected_output_len : std::max<int64_t>(0, request.max_output_len);

  // TTFT. The running batch is on average half done when the request arrives.
  out.prefill_correction = PrefillCorrection(p);
  double queue_ms = 0.0;
  if (p.running_tokens > 0) queue_ms += 0.5 * PrefillMsForTotals(prefill_model, p.running_tokens, p.running_requests);
  if (p.queued_prompt_tokens > 0) {
    queue_ms += PrefillMsForTotals(prefill_model, p.queued_prompt_tokens, p.queued_requests);
  }
  out.prefill_queue_ms = out.prefill_correction * queue_ms;
  out.prefill_ms = out.prefill_correction * PrefillMsForTotals(prefill_model, prompt_len, 1);
  const double kv_bytes_per_token = models_.kv_bytes_per_token > 0 ? models_.kv_bytes_per_token
                                                                    : prefill_model.params().kv_bytes_per_token;
  out.transfer_ms = prefill_model.KvTransferMs(static_cast<double>(prompt_len) * kv_bytes_per_token);
  out.ttft_ms = out.prefill_queue_ms + out.prefill_ms;  // the first token does not wait for the KV hand-off

  // TPOT: the batch it joins, with whatever waits for admission ahead of it.
  out.decode_correction = DecodeCorrection(d);
  const int64_t running = std::max<int64_t>(0, d.running_batch_size);
  const int64_t queued = std::max<int64_t>(0, d.queued_requests);
  const double mean_context = running > 0 ? static_cast<double>(d.total_context_tokens) / static_cast<double>(running)
                                          : static_cast<double>(prompt_len);
  const double context_without =
      static_cast<double>(d.total_context_tokens) + static_cast<double>(queued) * mean_context;
  const double context_with =
      context_without + static_cast<double>(prompt_len) + static_cast<double>(expected_output) / 2.0;
  out.tpot_ms = out.decode_correction *
                    decode_model.DecodeTokenMs(running + queued + 1, static_cast<int64_t>(std::llround(context_with))) +
                out.transfer_ms / static_cast<double>(std::max<int64_t>(1, expected_output - 1));
  if (running > 0) {
    out.existing_tpot_slo_ms = d.min_running_tpot_slo_ms > 0 ? d.min_running_tpot_slo_ms : request.tpot_slo_ms;
    if (out.existing_tpot_slo_ms > 0) {
      const double without_ms =
          out.decode_correction *
          decode_model.DecodeTokenMs(running + queued, static_cast<int64_t>(std::llround(context_without)));
      out.harms_running = out.tpot_ms > out.existing_tpot_slo_ms && without_ms <= out.existing_tpot_slo_ms;
    }
  }

  PredictKv(request, prompt_len, d.block_size, d.free_kv_blocks, d.total_kv_blocks, out);
  return out;
}

PairPrediction GoodputPolicy::PredictColocated(const PlacementRequest& request, const ClusterSnapshot& snapshot,
                                               int colocated_index) const {
  PairPrediction out;
  out.colocated_index = colocated_index;
  const ColocatedWorkerState& c = snapshot.colocated[static_cast<size_t>(colocated_index)];
  const LatencyModel& model = ColocatedModel(c.id);
  const int64_t prompt_len = std::max<int64_t>(1, request.prompt_len);
  const int64_t expected_output =
      request.expected_output_len > 0 ? request.expected_output_len : std::max<int64_t>(0, request.max_output_len);
  const int64_t budget = std::max<int64_t>(1, c.step_token_budget);
  const int64_t decoding = std::max<int64_t>(0, c.running_batch_size);
  const int64_t others = decoding + std::max<int64_t>(0, c.prefilling_requests) + std::max<int64_t>(0, c.queued_requests);
  const int64_t chunk = budget - std::min(others, budget - 1);
  const int64_t ahead = std::max<int64_t>(0, c.queued_prompt_tokens);
  const double mean_context = decoding > 0 ? static_cast<double>(c.total_context_tokens) / static_cast<double>(decoding)
                                           : static_cast<double>(prompt_len);
  const double context_without = static_cast<double>(c.total_context_tokens) +
                                 static_cast<double>(others - decoding) * mean_context;
  const int64_t steps = (ahead + prompt_len + chunk - 1) / chunk;
  const int64_t one_chunk = std::min(chunk, ahead + prompt_len);
  const double decode_part =
      others > 0 ? model.DecodeStepMs(others, static_cast<int64_t>(std::llround(context_without))) : 0.0;
  const double step_ms = decode_part + PrefillMsForTotals(model, one_chunk, 1);
  out.prefill_queue_ms = static_cast<double>(steps - 1) * step_ms;  // the steps before its last chunk
  out.prefill_ms = step_ms;
  out.ttft_ms = out.prefill_queue_ms + out.prefill_ms;
  const double context_with =
      context_without + static_cast<double>(prompt_len) + static_cast<double>(expected_output) / 2.0;
  const double shared_prefill_ms = ahead > 0 ? PrefillMsForTotals(model, ahead, std::max<int64_t>(1, c.queued_requests)) : 0.0;
  out.tpot_ms = model.DecodeStepMs(others + 1, static_cast<int64_t>(std::llround(context_with))) +
                shared_prefill_ms / static_cast<double>(std::max<int64_t>(1, expected_output - 1));
  if (decoding > 0 && request.tpot_slo_ms > 0) {
    out.existing_tpot_slo_ms = request.tpot_slo_ms;
    out.harms_running = out.tpot_ms > out.existing_tpot_slo_ms && decode_part <= out.existing_tpot_slo_ms;
  }
  PredictKv(request, prompt_len, c.block_size, c.free_kv_blocks, c.total_kv_blocks, out);
  return out;
}

namespace {

// Explains why the least-violating candidate, a colocated worker, misses.
PlacementDecision RejectColocated(const PlacementRequest& request, const ClusterSnapshot& snapshot,
                                  const PairPrediction& pred) {
  const ColocatedWorkerState& c = snapshot.colocated[static_cast<size_t>(pred.colocated_index)];
  const std::string where = absl::StrCat("best colocated worker ", c.id);
  std::vector<std::pair<double, std::string>> parts;
  if (request.ttft_slo_ms > 0 && pred.ttft_ms > request.ttft_slo_ms) {
    parts.push_back({pred.ttft_ms / request.ttft_slo_ms - 1.0,
                     absl::StrCat("predicted TTFT ", FormatMs(pred.ttft_ms), " > SLO ", FormatMs(request.ttft_slo_ms),
                                  ": ", c.queued_prompt_tokens, " prompt tokens wait on ", c.id, " ahead of its ",
                                  request.prompt_len, " in chunks of at most ", c.step_token_budget,
                                  " tokens per step (", where, ")")});
  }
  if (request.tpot_slo_ms > 0 && pred.tpot_ms > request.tpot_slo_ms) {
    parts.push_back({pred.tpot_ms / request.tpot_slo_ms - 1.0,
                     absl::StrCat("predicted TPOT ", FormatMs(pred.tpot_ms), " > SLO ", FormatMs(request.tpot_slo_ms),
                                  ": ", c.id, " would step ", c.running_batch_size + c.prefilling_requests +
                                  c.queued_requests + 1, " requests (", c.running_batch_size, " decoding, ",
                                  c.prefilling_requests + c.queued_requests, " prefilling or waiting) (", where, ")")});
  }
  if (pred.harms_running) {
    parts.push_back({pred.tpot_ms / pred.existing_tpot_slo_ms - 1.0,
                     absl::StrCat("joining ", c.id, "'s batch of ", c.running_batch_size,
                                  " would raise its step time to ", FormatMs(pred.tpot_ms),
                                  " > the running requests' TPOT SLO ", FormatMs(pred.existing_tpot_slo_ms), " (",
                                  where, ")")});
  }
  if (parts.empty()) return PlacementDecision::Reject(absl::StrCat("no worker is predicted to meet the SLO (", where, ")"));
  std::stable_sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string reason = parts[0].second;
  for (size_t i = 1; i < parts.size(); ++i) absl::StrAppend(&reason, "; also ", parts[i].second);
  return PlacementDecision::Reject(std::move(reason));
}

}  // namespace

PlacementDecision GoodputPolicy::Place(const PlacementRequest& request, const ClusterSnapshot& snapshot) {
  std::vector<int> prefills, decodes, colocated;
  for (int i = 0; i < static_cast<int>(snapshot.prefill.size()); ++i) {
    if (snapshot.prefill[i].healthy) prefills.push_back(i);
  }
  for (int i = 0; i < static_cast<int>(snapshot.decode.size()); ++i) {
    if (snapshot.decode[i].healthy) decodes.push_back(i);
  }
  for (int i = 0; i < static_cast<int>(snapshot.colocated.size()); ++i) {
    if (snapshot.colocated[i].healthy) colocated.push_back(i);
  }
  if (prefills.empty() || decodes.empty()) {  // no healthy pair: colocated workers only
    if (colocated.empty()) return RejectNoHealthyWorker(snapshot);
    prefills.clear();
    decodes.clear();
  }

  const bool has_ttft = request.ttft_slo_ms > 0;
  const bool has_tpot = request.tpot_slo_ms > 0;
  const int64_t expected_output =
      request.expected_output_len > 0 ? request.expected_output_len : std::max<int64_t>(0, request.max_output_len);

  std::vector<Scored> scored;
  scored.reserve(prefills.size() * decodes.size() + colocated.size());
  // A decode worker whose whole cache is smaller than the request can never admit it.
  int64_t blocks_needed = 0;
  // Where KV is most free (for the "KV:" reason): a decode or colocated worker.
  int64_t most_free_blocks = -1, most_free_total = 0;
  std::string most_free_id;
  std::vector<PairPrediction> candidates;
  for (int pi : prefills) {
    for (int di : decodes) candidates.push_back(Predict(request, snapshot, pi, di));
  }
  for (int ci : colocated) candidates.push_back(PredictColocated(request, snapshot, ci));
  for (const PairPrediction& pred : candidates) {
    // The worker that holds the request's KV: its decode worker or the colocated worker.
    int64_t free_blocks = 0, total_blocks = 0;
    const std::string* kv_id = nullptr;
    if (pred.colocated_index >= 0) {
      const ColocatedWorkerState& c = snapshot.colocated[static_cast<size_t>(pred.colocated_index)];
      free_blocks = c.free_kv_blocks;
      total_blocks = c.total_kv_blocks;
      kv_id = &c.id;
    } else {
      const DecodeWorkerState& d = snapshot.decode[static_cast<size_t>(pred.decode_index)];
      free_blocks = d.free_kv_blocks;
      total_blocks = d.total_kv_blocks;
      kv_id = &d.id;
    }
    blocks_needed = std::max(blocks_needed, pred.kv_blocks_needed);
    if (free_blocks > most_free_blocks) {
      most_free_blocks = free_blocks;
      most_free_total = total_blocks;
      most_free_id = *kv_id;
    }
    if (total_blocks > 0 && pred.kv_blocks_needed > total_blocks) continue;
    Scored s;
    s.prediction = pred;
    const bool ttft_ok = !has_ttft || pred.ttft_ms <= request.ttft_slo_ms;
    const bool tpot_ok = !has_tpot || pred.tpot_ms <= request.tpot_slo_ms;
    s.meets = ttft_ok && tpot_ok && !pred.harms_running && pred.kv_fits;
    s.slack = (has_ttft || has_tpot) ? std::numeric_limits<double>::infinity() : 0.0;
    if (has_ttft) s.slack = std::min(s.slack, (request.ttft_slo_ms - pred.ttft_ms) / request.ttft_slo_ms);
    if (has_tpot) s.slack = std::min(s.slack, (request.tpot_slo_ms - pred.tpot_ms) / request.tpot_slo_ms);
    if (!ttft_ok) s.violation += pred.ttft_ms / request.ttft_slo_ms - 1.0;
    if (!tpot_ok) s.violation += pred.tpot_ms / request.tpot_slo_ms - 1.0;
    if (pred.harms_running) s.violation += pred.tpot_ms / pred.existing_tpot_slo_ms - 1.0;
    s.e2e_ms = pred.ttft_ms + pred.tpot_ms * static_cast<double>(std::max<int64_t>(1, expected_output - 1));
    scored.push_back(s);
  }

  auto accept = [](const Scored& s) {
    PlacementDecision decision =
        s.prediction.colocated_index >= 0
            ? PlacementDecision::AcceptColocated(s.prediction.colocated_index)
            : PlacementDecision::Accept(s.prediction.prefill_index, s.prediction.decode_index);
    decision.predicted_ttft_ms = s.prediction.ttft_ms;
    decision.predicted_tpot_ms = s.prediction.tpot_ms;
    return decision;
  };

  // Most slack, then least E2E; strict comparisons keep the lowest indices on ties.
  const Scored* best = nullptr;
  for (const Scored& s : scored) {
    if (!s.meets) continue;
    if (best == nullptr || s.slack > best->slack + kSlackEpsilon ||
        (std::abs(s.slack - best->slack) <= kSlackEpsilon && s.e2e_ms < best->e2e_ms)) {
      best = &s;
    }
  }
  if (best != nullptr) return accept(*best);

  // Nothing meets everything: the least violation among pairs with room, then among the rest.
  const Scored* least = nullptr;
  for (const Scored& s : scored) {
    if (least == nullptr || std::make_tuple(!s.prediction.kv_fits, s.violation, s.e2e_ms) <
                                std::make_tuple(!least->prediction.kv_fits, least->violation, least->e2e_ms)) {
      least = &s;
    }
  }
  // Without SLOs there is no deadline to miss: waiting for KV admission is fine.
  const bool may_wait_for_kv = request.best_effort || (!has_ttft && !has_tpot);
  if (least != nullptr && (least->prediction.kv_fits ? request.best_effort : may_wait_for_kv)) return accept(*least);

  if (least == nullptr || !least->prediction.kv_fits) {
    return PlacementDecision::Reject(absl::StrCat(
        "KV: the request needs ", blocks_needed, " KV blocks (prompt ", request.prompt_len, " + max_tokens ",
        request.max_output_len, " tokens); the most free on a healthy ",
        decodes.empty() ? "colocated" : (colocated.empty() ? "decode" : "decode or colocated"), " worker is ",
        most_free_blocks, " of ", most_free_total, " on ", most_free_id));
  }
  if (least->prediction.colocated_index >= 0) return RejectColocated(request, snapshot, least->prediction);

  // Explain the largest violation of the least-violating pair.
  const PairPrediction& pred = least->prediction;
  const PrefillWorkerState& p = snapshot.prefill[static_cast<size_t>(pred.prefill_index)];
  const DecodeWorkerState& d = snapshot.decode[static_cast<size_t>(pred.decode_index)];
  const std::string pair = absl::StrCat("best pair ", p.id, " -> ", d.id);
  const double ttft_over = has_ttft ? pred.ttft_ms / request.ttft_slo_ms - 1.0 : 0.0;
  const double tpot_over = has_tpot ? pred.tpot_ms / request.tpot_slo_ms - 1.0 : 0.0;
  const double harm_over = pred.harms_running ? pred.tpot_ms / pred.existing_tpot_slo_ms - 1.0 : 0.0;
  const int64_t batch = d.running_batch_size + d.queued_requests + 1;
  std::vector<std::pair<double, std::string>> parts;
  if (ttft_over > 0) {
    std::string cause;
    if (pred.prefill_queue_ms >= pred.prefill_ms) {
      cause = absl::StrCat(p.queued_requests, " requests (", p.queued_prompt_tokens, " tokens) queued on ", p.id);
      if (p.running_tokens > 0) absl::StrAppend(&cause, " behind a running batch of ", p.running_tokens, " tokens");
    } else {
      cause = absl::StrCat("a ", request.prompt_len, "-token prompt takes ", FormatMs(pred.prefill_ms),
                           " to prefill on ", p.id);
    }
    parts.push_back({ttft_over, absl::StrCat("predicted TTFT ", FormatMs(pred.ttft_ms), " > SLO ",
                                             FormatMs(request.ttft_slo_ms), ": ", cause, " (queue ",
                                             FormatMs(pred.prefill_queue_ms), " + prefill ", FormatMs(pred.prefill_ms),
                                             "; ", pair, ")")});
  }
  if (tpot_over > 0) {
    parts.push_back({tpot_over, absl::StrCat("predicted TPOT ", FormatMs(pred.tpot_ms), " > SLO ",
                                             FormatMs(request.tpot_slo_ms), ": ", d.id, " would step a batch of ",
                                             batch, " (", d.running_batch_size, " running, ", d.queued_requests,
                                             " waiting) over ", d.total_context_tokens,
                                             "+ context tokens (", pair, ")")});
  }
  if (harm_over > 0) {
    parts.push_back({harm_over, absl::StrCat("joining ", d.id, "'s batch of ", d.running_batch_size,
                                             " would raise its step time to ", FormatMs(pred.tpot_ms),
                                             " > the running requests' TPOT SLO ", FormatMs(pred.existing_tpot_slo_ms),
                                             " (", pair, ")")});
  }
  if (parts.empty()) {  // unreachable: a pair that is not met but fits KV violates something
    return PlacementDecision::Reject(absl::StrCat("no pair is predicted to meet the SLO (", pair, ")"));
  }
  std::stable_sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string reason = parts[0].second;
  for (size_t i = 1; i < parts.size(); ++i) absl::StrAppend(&reason, "; also ", parts[i].second);
  return PlacementDecision::Reject(std::move(reason));
}

}  // namespace tandem::policy
