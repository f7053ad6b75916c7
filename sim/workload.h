// Workloads for the simulator: the requests (arrival time, prompt length, output length), drawn from
// built-in length distributions with gamma/Poisson arrivals, or read from a trace file.
//
// Common random numbers: synthetic arrivals are drawn once at unit rate (mean gap 1 s) and scaled by
// 1/R for rate R (ScaleToRate), so the same requests arrive in the same order at every rate and
// attainment is close to monotone in R, which the goodput bisection relies on. Traces are normalized
// the same way, keeping their own rate in Workload::source_rate.
#ifndef TANDEM_SIM_WORKLOAD_H_
#define TANDEM_SIM_WORKLOAD_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tandem::sim {

struct SimRequest {
  int64_t id = 0;
  double arrival_s = 0.0;   // seconds from the start of the run
  int64_t prompt_len = 1;   // tokens, >= 1
  int64_t output_len = 1;   // tokens generated including the first (from prefill), >= 1
  // A request class's own SLO (MakeMixedWorkload); 0: the run's SLO. The placement policy is given it,
  // as the router is given a client's, and attainment holds the request to it.
  double ttft_slo_ms = 0.0;
  double tpot_slo_ms = 0.0;
  int32_t slo_class = -1;  // index into Workload::class_names; -1: no class
};

struct Workload {
  std::vector<SimRequest> requests;  // sorted by arrival_s
  double native_rate = 1.0;          // requests per second of the arrivals as stored
  double source_rate = 1.0;          // a trace's own rate before normalization (synthetic: 1)
  std::vector<std::string> class_names;  // MakeMixedWorkload's classes, in the order given
};

// Piecewise-linear inverse CDF in log space over (probability, value) knots.
struct QuantileTable {
  std::vector<double> probabilities;  // strictly increasing, first 0, last 1
  std::vector<double> values;         // non-decreasing, > 0, same size
  // Inverse CDF at u in [0, 1].
  double Quantile(double u) const;
};

// A named prompt/output length distribution (SLO_SIM.md section 3).
struct LengthSpec {
  std::string name;
  QuantileTable prompt;
  QuantileTable output;
  double spearman = 0.0;          // rank correlation of (prompt, output); Gaussian copula
  int64_t max_total_tokens = 0;   // prompt + output must stay below this (0: no limit)
  bool longbench_rule = false;    // prompt = min(2040 - output, U[1900, 2048]) as DistServe prepares LongBench
};

// "sharegpt", "humaneval", "longbench", "azure_conv", "azure_code".
std::vector<std::string> LengthSpecNames();
absl::StatusOr<LengthSpec> BuiltinLengthSpec(std::string_view name);

// Arrivals: "poisson" (cv = 1), "gamma" (any cv > 0), "fixed" (cv = 0).
struct ArrivalSpec {
  std::string type = "poisson";
  double cv = 1.0;
};

// n requests at unit rate (first arrival at t = 0), lengths from `lengths`. Lengths use stream 1 of
// the seed and arrivals stream 2, so changing one never perturbs the other.
absl::StatusOr<Workload> MakeSyntheticWorkload(const LengthSpec& lengths, const ArrivalSpec& arrival,
                                               int64_t num_requests, uint64_t seed);

// A request class of a mixed workload: its share of the requests, its lengths and its SLO (e.g. chat
// with a tight TTFT beside summarization with a loose one).
struct WorkloadClass {
  std::string name;
  LengthSpec lengths;
  double weight = 1.0;       // relative share, > 0
  double ttft_slo_ms = 0.0;  // > 0
  double tpot_slo_ms = 0.0;  // > 0
};

// "NAME:LENGTHS:WEIGHT:TTFT_MS:TPOT_MS", LENGTHS one of LengthSpecNames() (tandem sim --class).
absl::StatusOr<WorkloadClass> ParseWorkloadClass(std::string_view text);

// n requests at unit rate as MakeSyntheticWorkload draws them (the same arrivals for the same seed),
// each of a class drawn by weight (stream 3 of the seed) with lengths from that class's distribution
// and the class's SLO attached.
absl::StatusOr<Workload> MakeMixedWorkload(const std::vector<WorkloadClass>& classes, const ArrivalSpec& arrival,
                                           int64_t num_requests, uint64_t seed);

// A copy with arrival times divided by rate / native_rate: the result arrives at `rate` req/s.
Workload ScaleToRate(const Workload& workload, double rate);

struct TraceOptions {
  double max_total_tokens = 0;  // > 0: shrink prompt and output proportionally to fit (each >= 1)
  int64_t max_requests = 0;     // > 0: keep the first this many
};

// Reads a trace, auto-detected from its contents:
//   JSONL: {"timestamp": ms, "input_length": n, "output_length": n} per line (Mooncake/AIPerf);
//   CSV with header arrival_s,prompt_len,output_len (native);
//   CSV with header TIMESTAMP,ContextTokens,GeneratedTokens (Azure LLM inference 2023/2024).
absl::StatusOr<Workload> LoadTrace(const std::string& path, const TraceOptions& options);
// Parses trace text; `name` appears in error messages.
absl::StatusOr<Workload> ParseTrace(std::string_view text, std::string_view name,
                                    const TraceOptions& options);

}  // namespace tandem::sim

#endif  // TANDEM_SIM_WORKLOAD_H_
