// Turns a finished request's measured stages into its SLO verdict: whether each objective was met
// and, when one was missed, the stage that cost the most with a sentence a person can act on.
//
// Pure functions on plain values (no gRPC types), shared by the router and its tests.
#ifndef TANDEM_ROUTER_SLO_REPORT_H_
#define TANDEM_ROUTER_SLO_REPORT_H_

#include <string>
#include <string_view>

namespace tandem::router {

// The five stages of DESIGN.md's request flow, in order.
enum class RequestStage {
  kNone = 0,
  kPrefillQueue,
  kPrefillCompute,
  kKvTransfer,
  kDecodeQueue,
  kDecodeCompute,
};

std::string_view RequestStageName(RequestStage stage);  // "prefill_queue", ...

// Milliseconds; the stage times come from the workers, the rest are measured by the router.
struct RequestTiming {
  double prefill_queue_ms = 0;
  double prefill_compute_ms = 0;
  double kv_transfer_ms = 0;
  double decode_queue_ms = 0;
  double decode_compute_ms = 0;
  double ttft_ms = 0;
  double tpot_ms = 0;  // 0 with a single output token
  double e2e_ms = 0;
};

// tpot = (e2e - ttft) / (completion_tokens - 1), or 0 with fewer than two tokens.
double ComputeTpotMs(double e2e_ms, double ttft_ms, int completion_tokens);

struct SloTargets {
  double ttft_ms = 0;  // 0: no objective
  double tpot_ms = 0;  // 0: no objective
};

struct SloVerdict {
  bool ttft_met = true;
  bool tpot_met = true;
  RequestStage missed_stage = RequestStage::kNone;  // set only when an objective was missed
  std::string explanation;                          // empty when both were met
};

// The largest of the five stages (the first one on a tie).
RequestStage LargestStage(const RequestTiming& timing);

SloVerdict EvaluateSlo(const RequestTiming& timing, const SloTargets& targets);

}  // namespace tandem::router

#endif  // TANDEM_ROUTER_SLO_REPORT_H_
