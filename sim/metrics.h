// Metrics over simulated (or measured) request records: SLO flags per request, attainment, goodput
// and latency statistics, with the definitions of SLO_SIM.md section 0 selectable.
//
//   TTFT = first token - arrival.
//   TPOT (client, default) = (finish - first token) / (output_len - 1); 0 when output_len <= 1.
//   TPOT (distserve_sim)   = (finish - first token) / output_len, as DistServe's simulator computes it.
//   Attainment (joint, default): share of all requests with TTFT <= SLO and TPOT <= SLO; rejected and
//   unfinished requests count as misses. separate_percentile: DistServe's search test, P90(TTFT) <
//   SLO and P90(TPOT) < SLO (strict), at the target percentile.
//   request_goodput (vLLM): requests meeting every SLO / duration (first arrival to last finish).
//   Percentiles interpolate linearly, as numpy.percentile does; std is the population std.
#ifndef TANDEM_SIM_METRICS_H_
#define TANDEM_SIM_METRICS_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/request_record.h"

namespace tandem::sim {

enum class TpotDefinition { kClient, kDistServeSim };
enum class AttainmentMode { kJoint, kSeparatePercentile };

absl::StatusOr<TpotDefinition> ParseTpotDefinition(std::string_view name);  // "client", "distserve_sim"
absl::StatusOr<AttainmentMode> ParseAttainmentMode(std::string_view name);  // "joint", "separate_percentile"

struct SloSpec {
  double ttft_ms = 200.0;
  double tpot_ms = 100.0;
  double target = 0.90;  // attainment target, as a fraction
  TpotDefinition tpot_definition = TpotDefinition::kClient;
  AttainmentMode mode = AttainmentMode::kJoint;
};

struct LatencyStats {
  int64_t count = 0;
  double mean = 0, median = 0, std = 0, p90 = 0, p99 = 0;  // ms
  // (q, value) pairs asked for explicitly (tandem bench --metric-percentiles); when non-empty they
  // replace the P90/P99 lines of FormatSummary.
  std::vector<std::pair<double, double>> percentiles;
};

struct Summary {
  int64_t num_requests = 0;
  int64_t completed = 0;
  int64_t rejected = 0;
  int64_t unfinished = 0;
  int64_t total_input_tokens = 0;
  int64_t total_output_tokens = 0;
  double duration_s = 0;
  double request_throughput = 0;      // completed / duration
  double output_throughput = 0;       // output tokens / duration
  double total_token_throughput = 0;  // (input + output tokens) / duration
  double request_goodput = 0;         // vLLM: good requests / duration
  double attainment = 0;              // joint
  double attainment_ttft = 0;
  double attainment_tpot = 0;
  bool meets_target = false;          // under SloSpec::mode
  LatencyStats ttft, tpot, e2e;       // over completed requests; TPOT over output_len > 1
  // Measured runs only (tandem bench), with has_itl set: every gap between token-carrying stream
  // messages, pooled over requests as vLLM's ITL is. The simulator has no ITL and prints no section.
  bool has_itl = false;
  LatencyStats itl;
  int64_t max_concurrency = 0;        // > 0: the client's concurrency cap, printed as vLLM does
  // Mean of each stage over completed requests (ms): prefill queue, prefill compute, KV transfer,
  // decode queue (waiting for KV memory and for a batch slot), decode compute.
  double stage_ms[5] = {0, 0, 0, 0, 0};
  // Per class of a mixed workload (records with slo_class >= 0), in class order: each against its own SLO.
  struct ClassAttainment {
    std::string name;
    int64_t num_requests = 0;
    double attainment = 0;  // joint
    double ttft_slo_ms = 0, tpot_slo_ms = 0;
  };
  std::vector<ClassAttainment> classes;
};

// Numpy-style linear-interpolation percentile of unsorted values; q in [0, 100]. 0 for no values.
double Percentile(std::vector<double> values, double q);
// count, mean, population std, median, P90, P99 and each of `percentiles` (q in [0, 100]).
LatencyStats ComputeLatencyStats(std::vector<double> values, std::span<const double> percentiles = {});

double TtftMs(const RequestRecord& r);
double TpotMs(const RequestRecord& r, TpotDefinition definition);
// Against the request's own SLO where it has one (RequestRecord::ttft_slo_ms, tpot_slo_ms), else `slo`'s.
bool MetTtft(const RequestRecord& r, const SloSpec& slo);
bool MetTpot(const RequestRecord& r, const SloSpec& slo);

// `class_names`: the workload's classes (Workload::class_names), for Summary::classes.
Summary Summarize(std::span<const RequestRecord> records, const SloSpec& slo,
                  std::span<const std::string> class_names = {});

// One JSON object per line: ids, lengths, timestamps, ttft/tpot (both definitions)/e2e, the five-stage
// breakdown, instances and met_ttft / met_tpot / met_all.
std::string RecordsToJsonl(std::span<const RequestRecord> records, const SloSpec& slo);
// The summary as a JSON object, with vLLM's field names where they exist (plus attainment fields).
std::string SummaryToJson(const Summary& summary, const SloSpec& slo, double request_rate);
// The console block in `vllm bench serve`'s layout, plus attainment and per-GPU goodput lines
// (omitted when num_gpus <= 0, i.e. unknown).
std::string FormatSummary(const Summary& summary, const SloSpec& slo, double request_rate, int num_gpus);

// One run of a rate sweep (tandem sim --rates, tandem bench --rates).
struct SweepPoint {
  double rate = 0;  // offered req/s
  Summary summary;
};

// Goodput: the highest offered rate whose run meets the attainment target (Summary::meets_target);
// nullopt when none does.
std::optional<double> GoodputRate(std::span<const SweepPoint> points);

// Rate -> attainment, P90 TTFT, P90 TPOT, throughput, then the goodput line.
std::string FormatSweepTable(std::span<const SweepPoint> points, const SloSpec& slo);

}  // namespace tandem::sim

#endif  // TANDEM_SIM_METRICS_H_
