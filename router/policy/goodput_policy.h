// GoodputPolicy: places each request on the (prefill, decode) pair predicted to meet its TTFT and
// TPOT SLOs with the most slack, and refuses, with the numbers, requests no pair can serve.
//
// Predictions (all from LatencyModel, each worker's model scaled by its online correction):
//   TTFT  = prefill queue + own prefill
//           queue    = half of the running batch (its expected remaining time) + the queued prompts
//                      as one batch (sum = queued tokens, sum of squares = queued^2 / queued requests)
//           own      = PrefillMs({prompt_len})
//           The KV hand-off is not on the TTFT path: the router streams the first token as soon as
//           the prefill worker samples it (DESIGN.md request flow, step 3).
//   TPOT  = DecodeStepMs(B, C) of the batch it would join + transfer / (expected_output_len - 1)
//           B = running + queued + 1,
//           C = running context + queued * (mean running context, or the prompt when idle)
//               + prompt_len + expected_output_len / 2   (its context at mid-life)
//           transfer = prefill model's KvTransferMs(prompt_len * kv_bytes_per_token): it delays the
//           second token, so it spreads over the tokens after the first in (e2e - ttft) / (n - 1).
//   Correction: observed recent step time / the model's prediction for the batch it describes,
//   clamped to [0.25, 4]; 1 when the snapshot has no observation. Decode workers of unequal speed
//   are told apart this way even when they share one model.
//   Harm: when the decode worker already runs requests, adding this one must not push the batch's
//   step time over their tightest TPOT SLO (DecodeWorkerState::min_running_tpot_slo_ms, or this
//   request's own TPOT SLO when the snapshot does not carry it) unless it was already over.
//   KV admission: a decode worker needs free blocks >= ceil((prompt_len + max_output_len) /
//   block_size); one with fewer is out (a snapshot with total_kv_blocks 0 has no KV data: no check).
//
// Choice:
//   - Among pairs that meet every set SLO (0 = none), do no harm and fit in KV: the most slack,
//     slack = min over set SLOs of (SLO - predicted) / SLO; ties (and requests without SLOs): the
//     least predicted E2E = TTFT + TPOT * max(1, expected_output_len - 1).
//   - No such pair: best_effort requests go to the pair with the least predicted violation (sum of
//     predicted / SLO - 1 over missed SLOs and harm; a KV-short decode only when nothing else fits,
//     where it will wait for admission); others are rejected with the bottleneck and numbers, e.g.
//     "predicted TTFT 1.9 s > SLO 1.0 s: 14 requests (5600 tokens) queued on prefill-1 (best pair
//     prefill-1 -> decode-0)". Reasons begin "predicted TTFT", "predicted TPOT", "joining" (harm) or
//     "KV:" so callers and tests can tell the bound apart.
//   - Never an unhealthy worker; "no healthy prefill worker" / "no healthy decode worker" as in
//     placement_policy.h.
// An accepted decision carries predicted_ttft_ms and predicted_tpot_ms.
//
// Colocated workers (batching/colocated_batching.h) are candidates beside the pairs, scored the same way;
// their model is the worker's own (by id), else GoodputModels::colocated, else the decode model:
//   B = decoding + prefilling + queued (every one of them decodes in the steps ahead),
//   chunk = step_token_budget - min(B, budget - 1) prompt tokens per step,
//   TTFT  = ceil((queued prompt tokens + prompt_len) / chunk) steps of
//           DecodeStepMs(B, C) + PrefillMs(one chunk)   (a mixed step: both parts, no overlap assumed)
//   TPOT  = DecodeStepMs(B + 1, C + prompt_len + expected_output_len / 2)
//           + PrefillMs(the queued prompt tokens) / (expected_output_len - 1)  (chunks it shares steps with)
//   Harm and KV admission as for a decode worker; no online correction (its recent steps mix phases).
// Rejections name the worker ("best colocated worker c-1").
//
// Pure and stateless: the decision depends only on (request, snapshot). Thread safety: as
// PlacementPolicy (not thread-safe; const data only, so in fact safe, but callers must not rely on it).
#ifndef TANDEM_ROUTER_POLICY_GOODPUT_POLICY_H_
#define TANDEM_ROUTER_POLICY_GOODPUT_POLICY_H_

#include <map>
#include <optional>
#include <string>

#include "router/policy/latency_model.h"
#include "router/policy/placement_policy.h"

namespace tandem::policy {

// The latency models the policy predicts with: one per role, overridden per worker id.
struct GoodputModels {
  LatencyModel prefill;  // prefill workers' step times and the KV link out of them
  LatencyModel decode;   // decode workers' step times
  std::map<std::string, LatencyModel> by_worker_id = {};
  // Bytes of KV per token moved prefill -> decode; 0: the prefill model's kv_bytes_per_token.
  double kv_bytes_per_token = 0.0;
  // Colocated workers' step times (a profile's prefill and decode coefficients); empty: `decode`.
  std::optional<LatencyModel> colocated = std::nullopt;
};

// One candidate pair's predictions (exposed for tests and explanations).
struct PairPrediction {
  int prefill_index = -1;
  int decode_index = -1;
  int colocated_index = -1;  // >= 0: a colocated worker's prediction (the pair indices are -1)
  double prefill_queue_ms = 0.0;
  double prefill_ms = 0.0;
  double transfer_ms = 0.0;
  double ttft_ms = 0.0;
  double tpot_ms = 0.0;            // step time of the batch it would join
  double existing_tpot_slo_ms = 0.0;  // the SLO the running requests are held to (0: none known)
  bool harms_running = false;      // pushes the running batch over existing_tpot_slo_ms
  bool kv_fits = true;
  int64_t kv_blocks_needed = 0;
  double prefill_correction = 1.0;
  double decode_correction = 1.0;
};

// The correction factor observed / predicted, clamped to [kMinCorrection, kMaxCorrection]; 1 when
// either is not positive.
inline constexpr double kMinCorrection = 0.25;
inline constexpr double kMaxCorrection = 4.0;
double CorrectionFactor(double observed_ms, double predicted_ms);

class GoodputPolicy : public PlacementPolicy {
 public:
  explicit GoodputPolicy(GoodputModels models);

  std::string_view name() const override { return "goodput"; }
  PlacementDecision Place(const PlacementRequest& request, const ClusterSnapshot& snapshot) override;

  // The prediction for one pair (indices into `snapshot`; the workers' health is not checked).
  PairPrediction Predict(const PlacementRequest& request, const ClusterSnapshot& snapshot, int prefill_index,
                         int decode_index) const;
  PairPrediction PredictColocated(const PlacementRequest& request, const ClusterSnapshot& snapshot,
                                  int colocated_index) const;

 private:
  const LatencyModel& PrefillModel(const std::string& id) const;
  const LatencyModel& DecodeModel(const std::string& id) const;
  const LatencyModel& ColocatedModel(const std::string& id) const;
  double PrefillCorrection(const PrefillWorkerState& worker) const;
  double DecodeCorrection(const DecodeWorkerState& worker) const;

  GoodputModels models_;
};

}  // namespace tandem::policy

#endif  // TANDEM_ROUTER_POLICY_GOODPUT_POLICY_H_
