// `tandem bench` as a library: validates the configuration, builds the workload (PlanBench), then
// runs it against a router at one rate or a sweep of rates (RunBench), printing the vLLM-style
// summary of each run, the sweep table with the goodput rate, and writing the JSON results.
//
//   absl::StatusOr<BenchPlan> plan = PlanBench(config);   // InvalidArgument names the flag at fault
//   absl::StatusOr<BenchOutcome> outcome = RunBench(config, *plan, std::cout, std::cerr);
//
// Sweeps use common random numbers: one unit-rate workload, scaled in time for each rate, so the same
// requests (lengths and prompt ids) arrive in the same order at every rate.
//
// Thread safety: one call at a time per config; RunBench blocks until the last run ends.
#ifndef TANDEM_LOADGEN_BENCH_H_
#define TANDEM_LOADGEN_BENCH_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "loadgen/report.h"
#include "nlohmann/json.hpp"
#include "sim/metrics.h"
#include "sim/workload.h"

namespace tandem::loadgen {

struct BenchConfig {
  std::string router;                 // host:port
  std::string model;                  // "" = the cluster's only model
  // Arrivals.
  std::optional<double> rate;         // req/s, +inf = all at once; unset: inf (a trace: its own rate)
  std::vector<double> sweep_rates;    // non-empty: one run per rate instead of `rate`
  double cv = 1.0;                    // inter-arrival CV; vLLM's burstiness B is cv = 1 / sqrt(B)
  int64_t num_prompts = 0;            // requests per run (0 with duration_s or a whole trace)
  double duration_s = 0.0;            // > 0: requests arriving in the first duration_s per run
  uint64_t seed = 0;
  // Lengths.
  std::string dataset = "chat";       // chat | code | summarization (or a sim length-spec name)
  std::string trace;                  // instead of dataset
  int64_t max_total_tokens = 0;       // clip prompt + output to this (and always to the model's context)
  // Load shape and objectives.
  int64_t max_concurrency = 0;        // > 0: at most this many in flight
  double ttft_slo_ms = 0.0;           // 0: none (sent to the router and used for attainment)
  double tpot_slo_ms = 0.0;
  bool best_effort = false;
  double attainment_target = 0.9;
  sim::AttainmentMode attainment_mode = sim::AttainmentMode::kJoint;
  // Output.
  std::vector<double> metric_percentiles;  // empty: P90 and P99, as `tandem sim` prints
  int num_gpus = 0;                   // > 0: per-GPU lines
  std::string out_path;               // JSON results
  bool progress = false;
  bool progress_tty = true;           // redraw one line; false: a plain line every 10 s (logs, pipes)
  // Set (by a SIGINT handler) to stop early: requests in flight are cancelled, the summary covers the
  // requests that finished, later rates of a sweep are skipped, and --out is still written.
  const std::atomic<bool>* interrupt = nullptr;
  absl::Duration request_timeout = absl::Minutes(10);
  absl::Duration connect_timeout = absl::Seconds(10);
};

// "1,2,4.5" -> rates > 0 and finite. `flag` names the flag in errors.
absl::StatusOr<std::vector<double>> ParseRateList(std::string_view text, std::string_view flag);
// "lo:hi:steps" -> steps rates evenly spaced from lo to hi inclusive (0 < lo <= hi, steps >= 1).
absl::StatusOr<std::vector<double>> ParseSweepSpec(std::string_view text);
// "50,90,99" -> each in [0, 100].
absl::StatusOr<std::vector<double>> ParsePercentileList(std::string_view text);

// Checks the ranges and combinations of the configuration. InvalidArgument naming the flag.
absl::Status ValidateBenchConfig(const BenchConfig& config);

struct BenchPlan {
  sim::Workload base;          // unit rate
  std::vector<double> rates;   // one per run
  sim::SloSpec slo;
};

// ValidateBenchConfig, then the base workload (a trace is read here). Errors name the flag.
absl::StatusOr<BenchPlan> PlanBench(const BenchConfig& config);

struct BenchOutcome {
  std::vector<SweepPoint> points;       // one per run, in rate order given
  std::optional<double> goodput_rate;   // sweeps: GoodputRate(points)
  nlohmann::json json;                  // what --out writes
};

// Asks the router for the model (Unavailable, naming the address, when unreachable), then runs each
// rate: summary blocks and the sweep table to `out`, notes (clipping, errors) to `err`, JSON to
// config.out_path when set.
absl::StatusOr<BenchOutcome> RunBench(const BenchConfig& config, const BenchPlan& plan, std::ostream& out,
                                      std::ostream& err);

}  // namespace tandem::loadgen

#endif  // TANDEM_LOADGEN_BENCH_H_
