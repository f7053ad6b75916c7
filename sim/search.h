// Goodput search: the highest request rate a placement serves at the SLO attainment target (DistServe's
// definition, bisection on the per-GPU rate with common random numbers over K seeds), and the placement
// search over prefill/decode tensor-parallel degrees and instance counts under a GPU budget.
//
// Thread safety: the free functions are reentrant; SearchPlacements runs configurations on its own
// threads, each with its own PlacementPolicy object and Simulator.
#ifndef TANDEM_SIM_SEARCH_H_
#define TANDEM_SIM_SEARCH_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "router/policy/latency_model.h"
#include "sim/metrics.h"
#include "sim/simulator.h"
#include "sim/workload.h"

namespace tandem::sim {

// One candidate placement: either disaggregated (num_prefill x prefill_tp + num_decode x decode_tp
// GPUs) or, when num_colocated > 0, colocated (num_colocated x colocated_tp GPUs).
struct Placement {
  int prefill_tp = 1;
  int num_prefill = 1;
  int decode_tp = 1;
  int num_decode = 1;
  int colocated_tp = 1;
  int num_colocated = 0;

  int NumGpus() const;
  std::string Label() const;  // "1P(tp2)+1D(tp1)" or "2xColocated(tp1)"
};

// Everything a simulation needs besides the placement, the workload and the rate.
struct SimSetup {
  std::string model = "opt-13b";                   // profile lookup key
  std::vector<policy::LatencyModel> profiles;      // disaggregated instances, by tp
  std::vector<policy::LatencyModel> colocated_profiles;  // colocated baseline, by tp
  double kv_bytes_per_token = 0.0;
  std::string policy_name = "least_loaded";
  // Placement requests carry the SLOs (as the router's do when a client sets them); best_effort asks
  // the goodput policy to place a request even when no pair is predicted to meet them.
  bool best_effort = false;
  int64_t prefill_max_batch_tokens = 0;  // 0: the profile's kv_capacity_tokens (DistServe's sim)
  int64_t prefill_max_batch_size = 0;    // 0: no limit
  int64_t decode_max_batch_size = 0;     // 0: no limit
  bool prefill_backpressure = false;     // limit held prefill KV to the profile's kv_capacity_tokens
  bool decode_kv_limit = true;           // reserve_full admission against kv_capacity_tokens
  int64_t kv_capacity_tokens = 0;        // > 0: every instance's KV capacity, instead of the profile's
  SloSpec slo;
  SimOptions sim_options;
};

absl::StatusOr<ClusterConfig> BuildCluster(const SimSetup& setup, const Placement& placement);

// A fresh policy named setup.policy_name for `cluster`. The goodput policy predicts with each
// instance's own latency model, keyed by the worker ids the simulator's snapshots use
// ("prefill-0", "decode-1", "colocated-0"), as the router's --latency-model gives it one model.
absl::StatusOr<std::unique_ptr<policy::PlacementPolicy>> MakeSimPolicy(const SimSetup& setup,
                                                                       const ClusterConfig& cluster);

// Simulates every seed's workload scaled to `rate` (req/s, whole cluster) and summarizes the pooled
// records.
absl::StatusOr<Summary> EvaluateRate(const SimSetup& setup, const Placement& placement,
                                     const std::vector<Workload>& seeds, double rate);

struct GoodputOptions {
  double max_per_gpu_rate = 5.0;  // upper end of the bisection (req/s/GPU)
  double tolerance = 0.02;        // stop when hi - lo < tolerance (req/s/GPU)
};

struct GoodputResult {
  Placement placement;
  double per_gpu_goodput = 0.0;  // highest per-GPU rate found to meet the target
  double goodput = 0.0;          // per_gpu_goodput * GPUs
  Summary at_goodput;            // summary at that rate (pooled over seeds)
  std::string limiting;          // "ttft" or "tpot": the lower attainment just above the goodput
  int num_simulations = 0;
};

absl::StatusOr<GoodputResult> FindGoodput(const SimSetup& setup, const Placement& placement,
                                          const std::vector<Workload>& seeds, const GoodputOptions& options);

struct PlacementSearchOptions {
  int gpu_budget = 4;
  std::vector<int> tensor_parallel = {1, 2, 4};  // degrees tried for each phase
  bool one_prefill_one_decode = false;           // DistServe's open-source search: counts fixed at 1
  int max_instances_per_phase = 8;
  bool include_colocated = false;                // also search the colocated baseline
  int num_threads = 1;
  GoodputOptions goodput;
  // Called after each configuration finishes, from a worker thread (serialized).
  std::function<void(int done, int total)> progress;
};

// Placements to try under the options, in a fixed order.
std::vector<Placement> EnumeratePlacements(const SimSetup& setup, const PlacementSearchOptions& options);

// Goodput of every enumerated placement, best per-GPU goodput first (ties: fewer GPUs, then order).
absl::StatusOr<std::vector<GoodputResult>> SearchPlacements(const SimSetup& setup,
                                                            const std::vector<Workload>& seeds,
                                                            const PlacementSearchOptions& options);

// A fixed-width table of results, best first.
std::string FormatSearchTable(const std::vector<GoodputResult>& results);

}  // namespace tandem::sim

#endif  // TANDEM_SIM_SEARCH_H_
