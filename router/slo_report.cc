#include "router/slo_report.h"

#include <array>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tandem::router {

std::string_view RequestStageName(RequestStage stage) {
  switch (stage) {
    case RequestStage::kNone: return "none";
    case RequestStage::kPrefillQueue: return "prefill_queue";
    case RequestStage::kPrefillCompute: return "prefill_compute";
    case RequestStage::kKvTransfer: return "kv_transfer";
    case RequestStage::kDecodeQueue: return "decode_queue";
    case RequestStage::kDecodeCompute: return "decode_compute";
  }
  return "unknown";
}

double ComputeTpotMs(double e2e_ms, double ttft_ms, int completion_tokens) {
  if (completion_tokens < 2) return 0.0;
  return (e2e_ms - ttft_ms) / static_cast<double>(completion_tokens - 1);
}

namespace {

std::array<std::pair<RequestStage, double>, 5> Stages(const RequestTiming& t) {
  return {{{RequestStage::kPrefillQueue, t.prefill_queue_ms},
           {RequestStage::kPrefillCompute, t.prefill_compute_ms},
           {RequestStage::kKvTransfer, t.kv_transfer_ms},
           {RequestStage::kDecodeQueue, t.decode_queue_ms},
           {RequestStage::kDecodeCompute, t.decode_compute_ms}}};
}

double StageMs(const RequestTiming& t, RequestStage stage) {
  for (const auto& [s, ms] : Stages(t)) {
    if (s == stage) return ms;
  }
  return 0.0;
}

}  // namespace

RequestStage LargestStage(const RequestTiming& timing) {
  RequestStage best = RequestStage::kPrefillQueue;
  double best_ms = -1.0;
  for (const auto& [stage, ms] : Stages(timing)) {
    if (ms > best_ms) {
      best = stage;
      best_ms = ms;
    }
  }
  return best;
}

SloVerdict EvaluateSlo(const RequestTiming& timing, const SloTargets& targets) {
  SloVerdict verdict;
  verdict.ttft_met = targets.ttft_ms <= 0 || timing.ttft_ms <= targets.ttft_ms;
  verdict.tpot_met = targets.tpot_ms <= 0 || timing.tpot_ms <= targets.tpot_ms;
  if (verdict.ttft_met && verdict.tpot_met) return verdict;

  verdict.missed_stage = LargestStage(timing);
  std::string missed;
  if (!verdict.ttft_met) {
    missed = absl::StrFormat("TTFT %.1f ms > SLO %g ms", timing.ttft_ms, targets.ttft_ms);
  }
  if (!verdict.tpot_met) {
    absl::StrAppend(&missed, missed.empty() ? "" : " and ",
                    absl::StrFormat("TPOT %.2f ms > SLO %g ms", timing.tpot_ms, targets.tpot_ms));
  }
  verdict.explanation = absl::StrFormat(
      "%s; the largest stage was %s (%.1f ms)", missed,
      absl::string_view(RequestStageName(verdict.missed_stage).data(),
                        RequestStageName(verdict.missed_stage).size()),
      StageMs(timing, verdict.missed_stage));
  return verdict;
}

}  // namespace tandem::router
