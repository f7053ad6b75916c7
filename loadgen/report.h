// Summaries, JSON and sweep tables for `tandem bench`, built on the simulator's metrics
// (sim/metrics.h): a measured run is converted to sim::RequestRecord and summarized by
// sim::Summarize, and printed by sim::FormatSummary, so `tandem sim` and `tandem bench` print the same
// block and their runs compare line by line. The bench adds what only a measured run has: ITL
// (pooled inter-chunk gaps), --metric-percentiles, and the router's five-stage breakdown.
//
// Definitions (SLO_SIM.md section 0, vLLM's client): TTFT = first token-carrying message - send;
// TPOT = (E2E - TTFT) / (n - 1), excluded from TPOT statistics when n <= 1 (counted as 0 against an
// SLO); E2E = last message - send; population std; numpy-linear percentiles. Attainment is joint by
// default: a request is good when it succeeded and met every SLO given (<=); requests that failed or
// were rejected count as misses.
//
// Pure functions of their inputs. Thread safety: none needed.
#ifndef TANDEM_LOADGEN_REPORT_H_
#define TANDEM_LOADGEN_REPORT_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "loadgen/client.h"
#include "nlohmann/json.hpp"
#include "sim/metrics.h"

namespace tandem::loadgen {

// The simulator's SloSpec for bench flags: an SLO of 0 ("no objective") becomes +inf, so it is
// always met. target is a fraction in (0, 1].
sim::SloSpec MakeSloSpec(double ttft_slo_ms, double tpot_slo_ms, double target, sim::AttainmentMode mode);

// The client's view of a request as a simulator record: arrival = send time, first token, finish =
// end. rejected = RESOURCE_EXHAUSTED; finished = OK with at least one token. Stage times stay unset.
sim::RequestRecord ToSimRecord(const RequestResult& result);

// Client-measured latencies of one request (ms); NaN where they do not exist (no token, failed).
double ClientTtftMs(const RequestResult& result);
double ClientTpotMs(const RequestResult& result);  // 0 when output_len <= 1
double ClientE2eMs(const RequestResult& result);

struct SummaryOptions {
  std::vector<double> metric_percentiles;  // empty: the simulator's P90/P99 lines
  int64_t max_concurrency = 0;             // > 0: printed
};

// sim::Summarize over the records, then ITL, the requested percentiles, and the mean of each of the
// router's stages (from its Final) over the requests that completed.
sim::Summary SummarizeRun(std::span<const RequestResult> results, const sim::SloSpec& slo,
                          const SummaryOptions& options);

// What the JSON says about how the run was made (vLLM's run-info fields where they exist).
struct RunInfo {
  std::string router;
  std::string model;
  std::string dataset;  // empty with a trace
  std::string trace;
  uint64_t seed = 0;
  double request_rate = 0;  // +inf: all at once ("inf" in JSON)
  double burstiness = 1.0;  // gamma shape, 1 / cv^2 (+inf for fixed gaps: null)
  int64_t max_concurrency = 0;
  int64_t max_total_tokens = 0;
};

// One request: lengths, times (s from the run start), ttft/tpot/e2e/itls (ms), status, the client's
// SLO verdict, and the router's Final ("router": null when none arrived).
nlohmann::json RequestToJson(const RequestResult& result, const sim::SloSpec& slo);
// Run info, then sim::SummaryToJson's fields (vLLM names), then "requests": [RequestToJson...].
nlohmann::json RunToJson(const RunInfo& info, const sim::Summary& summary, const sim::SloSpec& slo,
                         std::span<const RequestResult> results);

// The sweep table is the simulator's, so `tandem sim --rates` and `tandem bench --rates` print the same.
using sim::SweepPoint;
using sim::GoodputRate;
using sim::FormatSweepTable;

}  // namespace tandem::loadgen

#endif  // TANDEM_LOADGEN_REPORT_H_
