// Goodput search: the highest request rate a placement serves at the SLO attainment target (DistServe's
// definition, bisection on the per-GPU rate with common random numbers over K seeds), and the placement
// search over prefill/decode tensor-parallel degrees and instance counts under a GPU budget, pruned with
// a rate-matching bound computed from the cost model alone.
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

// One candidate placement: either disaggregated (num_prefill x prefill_tp + num_decode x decode_tp x
// decode_pp GPUs) or, when num_colocated > 0, colocated (num_colocated x colocated_tp GPUs).
struct Placement {
  int prefill_tp = 1;
  int num_prefill = 1;
  int decode_tp = 1;
  int num_decode = 1;
  int decode_pp = 1;  // pipeline stages of each decode instance (decode_tp * decode_pp GPUs each)
  int decode_micro_batches = 0;  // 1..decode_pp, 0: decode_pp (simulator.h DecodeInstanceConfig::micro_batches)
  int colocated_tp = 1;
  int num_colocated = 0;

  int NumGpus() const;
  std::string Label() const;  // "1P(tp2)+1D(tp1)", "1P(tp2)+1D(tp1,pp2)", "1P(tp2)+1D(tp1,pp2x1mb)" or "2xColocated(tp1)"
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
  // Limit held prefill KV to the profile's kv_capacity_tokens: a prefill instance stops when decode does
  // not pull (tandem's prefill workers wait for leases; DistServe's past-capacity TTFT tails need it).
  bool prefill_backpressure = true;
  bool decode_kv_limit = true;           // admission against kv_capacity_tokens
  // How decode and unchunked colocated instances allocate KV (simulator.h on_demand_kv): kAuto follows
  // the instance profile's engine: on demand for "distserve" and "vllm", reserved in full otherwise (a
  // `tandem profile` is a tandem worker, which reserves prompt + output).
  enum class KvAllocation { kAuto, kReserveFull, kOnDemand };
  KvAllocation kv_allocation = KvAllocation::kAuto;
  int64_t kv_capacity_tokens = 0;        // > 0: every instance's KV capacity, instead of the profile's
  // On-demand decode instances (simulator.h waiting_block_fraction): < 0 (auto): DistServe's 0.05 for
  // distserve profiles, 0 otherwise; >= 0: this fraction (0: pull whatever fits, join at once).
  double decode_waiting_block_fraction = -1.0;
  // Decode instances running DistServe's scheduler (waiting fraction > 0) replay its step loop step by
  // step (simulator.h DecodeInstanceConfig::step_loop); an error for any other decode instance.
  bool distserve_step_loop = false;
  // Unchunked colocated instances (simulator.h max_paddings): >= 0 pads prefill steps with at most this
  // many padding tokens, < 0 packs them; kAutoPaddings: vLLM 0.2.x's default of 256 for "vllm" profiles
  // (DistServe's vLLM runs show it: every prefill step of two prompts has <= 256 tokens of padding),
  // packed otherwise.
  static constexpr int64_t kAutoPaddings = -2;
  int64_t colocated_max_paddings = kAutoPaddings;
  // > 0: colocated instances are tandem's chunked-prefill colocated workers with this step token
  // budget (simulator.h); 0: the vLLM v0 baseline.
  int64_t colocated_step_token_budget = 0;
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

// Rate-matching bound (SLO_SIM.md section 1.4, item 4): an upper bound on the request rate (req/s,
// whole cluster) a placement sustains, from the cost model and the workload's own requests (every
// seed's), without simulating.
//
// Least work. Every step an instance runs costs at least
//   prefill batch: sum over its requests of (b*l + c*l^2)/pp + per_ctx_token*l, plus K = a/pp + overhead;
//   decode step:   sum over its requests of (b*ctx + c)/pp + per_ctx_token*ctx, plus K = a/pp + overhead,
// with decode's a, b and c each the smaller of the small- and large-batch values, so it holds in both
// regimes. The per-request terms are exact sums (no batching removes them); only K is shared, and it is
// charged at the least a batch can pay: the steps a set of requests takes part in number at least
// sum(steps * size / max(cap, size)) for a cap every step of two or more requests obeys -- the batch
// size (size 1), prefill's token budget (prompt tokens), the KV reservation (prompt + output tokens).
// No cap: K is not charged. A request takes one prefill and output_len - 1 decode steps at contexts
// prompt + 1 ... prompt + output_len - 1, and each decode instance's KV link (FIFO) carries the prompts
// that decode there. An instance is busy at most 1 s per second, so rate <= instances / E[least work]
// for each phase and the links; a colocated instance runs both phases: instances / E[prefill + decode].
// The expectation is over all requests, or over the cheapest floor(target * (N - 1)) + 1 when requests
// may go unserved (a rejecting policy such as goodput, or a --horizon_s cut-off).
//
// SLO reachability. A request's TTFT is at least its prefill alone, and its TPOT at least its decode
// steps alone at batch size 1 plus its KV transfer; if too few requests meet both SLOs even so,
// attainment stays below the target at every rate: the bound is 0, and the goodput is exactly 0.
//
// What it ignores: queueing, batching delays and the SLOs under load, and the simulator's own schedule
// (FCFS, placement). And it bounds *sustained* throughput: a finite run can meet the target above it,
// since an overloaded run's backlog grows only linearly and a request that can absorb a delay W within
// its SLOs still meets them -- by a relative W * rate / (target * N) or so for N requests, which is
// large when W includes TPOT SLO * (output_len - 1), as for a queue in front of decode. (Measured, 2 x
// 400 ShareGPT requests on OPT-13B: with TTFT 1 s / TPOT 100 ms, 1P(tp2)+2D(tp1) reaches 16.6 req/s
// against a bound of 15.1, but 10.5 with 2 x 2000 requests; with TTFT 2 s / TPOT 200 ms, 2P(tp1)+1D(tp2)
// reaches twice its bound.)
// SearchPlacements therefore checks a pruning with one simulation rather than trusting the bound.
struct RateBound {
  double prefill_rate = 0.0;    // req/s; colocated: the prefill phase alone
  double decode_rate = 0.0;     // req/s; colocated: the decode phase alone
  double transfer_rate = 0.0;   // req/s through the KV links; +inf when colocated
  double feasible_share = 1.0;  // share of requests meeting both SLOs when alone
  bool slo_reachable = true;    // false: the target is out of reach at any rate
  double rate = 0.0;            // the bound: the least of the above (colocated: both phases), 0 if unreachable
  std::string limit;            // what sets `rate`: "prefill", "decode", "transfer", "colocated" or "slo"
};

absl::StatusOr<RateBound> RateUpperBound(const SimSetup& setup, const Placement& placement,
                                         const std::vector<Workload>& seeds);

struct GoodputOptions {
  double max_per_gpu_rate = 5.0;  // upper end of the bisection (req/s/GPU)
  double tolerance = 0.02;        // stop when hi - lo < tolerance (req/s/GPU)
  // > 0: a per-GPU rate (a scaled rate bound) above which the target is expected to be missed. The
  // bisection skips its probes above it (the top, then halves while the lower end is still 0), taking
  // them as misses. The result is the same as without the hint, with fewer simulations, whenever
  // attainment is monotone in the rate: if the target is met above the hint, every later probe meets
  // it, so the last skipped probe is then run, meets it too, and the skipped probes are walked back up.
  double assume_fail_above = 0.0;
};

struct GoodputResult {
  Placement placement;
  double per_gpu_goodput = 0.0;  // highest per-GPU rate found to meet the target
  double goodput = 0.0;          // per_gpu_goodput * GPUs
  Summary at_goodput;            // summary at that rate (pooled over seeds)
  std::string limiting;          // "ttft" or "tpot": the lower attainment just above the goodput
  int num_simulations = 0;
  RateBound bound;               // SearchPlacements: the placement's rate bound
  // SearchPlacements: not bisected. Its goodput is below the best: 0 when bound.rate is 0, else below
  // its scaled bound, where one simulation (num_simulations = 1) missed the target on `limiting`.
  bool pruned = false;
};

absl::StatusOr<GoodputResult> FindGoodput(const SimSetup& setup, const Placement& placement,
                                          const std::vector<Workload>& seeds, const GoodputOptions& options);

struct PlacementSearchOptions {
  int gpu_budget = 4;
  std::vector<int> tensor_parallel = {1, 2, 4};  // degrees tried for each phase
  std::vector<int> decode_pipeline_parallel = {1};  // decode stages tried (with micro-batches = stages)
  bool one_prefill_one_decode = false;           // DistServe's open-source search: counts fixed at 1
  int max_instances_per_phase = 8;
  bool include_colocated = false;                // also search the colocated baseline
  int num_threads = 1;
  GoodputOptions goodput;
  // Pruning with the rate bound. Placements run in falling order of per-GPU bound * (1 + prune_slack),
  // the "scaled bound". A placement whose scaled bound is below a per-GPU goodput already found is not
  // bisected: one simulation at its scaled bound confirms that it misses the target there (so, as the
  // bisection also assumes, above it too), and it is reported as pruned; if it meets the target there
  // after all, it is bisected as usual. Placements whose bound is 0 (SLOs out of reach) are pruned without
  // a simulation. Each bisection also skips its probes above the scaled bound (assume_fail_above).
  // With these checks, pruning changes no result unless attainment is not monotone in the rate; the
  // slack only trades simulations spent on checks that fail against bisections cut short.
  bool prune = true;
  double prune_slack = 0.25;
  // Called after each configuration finishes, from a worker thread (serialized).
  std::function<void(int done, int total)> progress;
};

// What a search did, beyond its results.
struct SearchStats {
  int num_placements = 0;
  int num_pruned = 0;
  // Every simulation run, counting the bisections of placements a spare thread ran before the search
  // knew they were candidates and that were then pruned (dropped: num_discarded_simulations). Only
  // these two counts may vary with num_threads.
  int num_simulations = 0;
  int num_discarded_simulations = 0;
};

// Placements to try under the options, in a fixed order.
std::vector<Placement> EnumeratePlacements(const SimSetup& setup, const PlacementSearchOptions& options);

// Goodput of every enumerated placement, best per-GPU goodput first (ties: fewer GPUs, then order),
// then the pruned ones (GoodputResult::pruned), highest bound first. The results do not depend on
// num_threads. `stats`, when given, receives counts.
absl::StatusOr<std::vector<GoodputResult>> SearchPlacements(const SimSetup& setup,
                                                            const std::vector<Workload>& seeds,
                                                            const PlacementSearchOptions& options,
                                                            SearchStats* stats = nullptr);

// A fixed-width table of results, best first.
std::string FormatSearchTable(const std::vector<GoodputResult>& results);

}  // namespace tandem::sim

#endif  // TANDEM_SIM_SEARCH_H_
