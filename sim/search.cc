#include "sim/search.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "sim/profiles.h"

namespace tandem::sim {

int Placement::NumGpus() const {
  if (num_colocated > 0) return num_colocated * colocated_tp;
  return num_prefill * prefill_tp + num_decode * decode_tp * decode_pp;
}

std::string Placement::Label() const {
  if (num_colocated > 0) return absl::StrCat(num_colocated, "xColocated(tp", colocated_tp, ")");
  return absl::StrCat(num_prefill, "P(tp", prefill_tp, ")+", num_decode, "D(tp", decode_tp,
                      decode_pp > 1 ? absl::StrCat(",pp", decode_pp) : "",
                      decode_micro_batches > 0 && decode_micro_batches != decode_pp
                          ? absl::StrCat("x", decode_micro_batches, "mb")
                          : "",
                      ")");
}

namespace {

// vLLM 0.2.x's SchedulerConfig default max_paddings.
constexpr int64_t kVllmMaxPaddings = 256;

bool OnDemandKv(const SimSetup& setup, const policy::LatencyModel& profile) {
  const std::string& engine = profile.params().engine;
  return setup.kv_allocation == SimSetup::KvAllocation::kOnDemand ||
         (setup.kv_allocation == SimSetup::KvAllocation::kAuto && (engine == "distserve" || engine == "vllm"));
}

// DistServe's DecodingStageSchedConfig waiting_block_prop_threshold (its API server sets 0.05).
constexpr double kDistServeWaitingBlockFraction = 0.05;

double WaitingBlockFraction(const SimSetup& setup, const policy::LatencyModel& profile) {
  if (setup.decode_waiting_block_fraction >= 0) return setup.decode_waiting_block_fraction;
  return profile.params().engine == "distserve" ? kDistServeWaitingBlockFraction : 0.0;
}

int64_t MaxPaddings(const SimSetup& setup, const policy::LatencyModel& profile) {
  if (setup.colocated_step_token_budget > 0) return -1;
  if (setup.colocated_max_paddings != SimSetup::kAutoPaddings) return setup.colocated_max_paddings;
  return profile.params().engine == "vllm" ? kVllmMaxPaddings : -1;
}

}  // namespace

absl::StatusOr<ClusterConfig> BuildCluster(const SimSetup& setup, const Placement& placement) {
  ClusterConfig cluster;
  cluster.kv_bytes_per_token = setup.kv_bytes_per_token;
  if (placement.num_colocated > 0) {
    absl::StatusOr<policy::LatencyModel> model =
        FindProfile(setup.colocated_profiles, setup.model, placement.colocated_tp);
    if (!model.ok()) return model.status();
    const int64_t capacity =
        setup.kv_capacity_tokens > 0 ? setup.kv_capacity_tokens : model->params().kv_capacity_tokens;
    for (int i = 0; i < placement.num_colocated; ++i) {
      cluster.colocated.push_back(
          {.latency = *model,
           .num_gpus = placement.colocated_tp,
           .max_batch_tokens = setup.prefill_max_batch_tokens > 0 ? setup.prefill_max_batch_tokens : capacity,
           .max_batch_size = setup.decode_max_batch_size,
           .kv_capacity_tokens = setup.decode_kv_limit ? capacity : 0,
           .step_token_budget = setup.colocated_step_token_budget,
           .on_demand_kv = setup.colocated_step_token_budget == 0 && OnDemandKv(setup, *model),
           .max_paddings = MaxPaddings(setup, *model)});
    }
    return cluster;
  }
  absl::StatusOr<policy::LatencyModel> prefill = FindProfile(setup.profiles, setup.model, placement.prefill_tp);
  if (!prefill.ok()) return prefill.status();
  const int micro_batches = placement.decode_micro_batches > 0 ? placement.decode_micro_batches : placement.decode_pp;
  if (placement.decode_pp < 1 || placement.decode_micro_batches < 0 || micro_batches > placement.decode_pp) {
    return absl::InvalidArgumentError(absl::StrCat("--decode-pp ", placement.decode_pp, " must be >= 1 and --decode-micro-batches ",
                                                   placement.decode_micro_batches, " in [0, --decode-pp]"));
  }
  absl::StatusOr<policy::LatencyModel> decode =
      FindStageProfile(setup.profiles, setup.model, placement.decode_tp, placement.decode_pp);
  if (!decode.ok()) return decode.status();
  const int64_t prefill_capacity =
      setup.kv_capacity_tokens > 0 ? setup.kv_capacity_tokens : prefill->params().kv_capacity_tokens;
  const int64_t decode_capacity =
      setup.kv_capacity_tokens > 0 ? setup.kv_capacity_tokens : decode->params().kv_capacity_tokens;
  for (int i = 0; i < placement.num_prefill; ++i) {
    cluster.prefill.push_back(
        {.latency = *prefill,
         .num_gpus = placement.prefill_tp,
         .max_batch_tokens =
             setup.prefill_max_batch_tokens > 0 ? setup.prefill_max_batch_tokens : prefill_capacity,
         .max_batch_size = setup.prefill_max_batch_size,
         .kv_buffer_tokens = setup.prefill_backpressure ? prefill_capacity : 0});
  }
  const bool on_demand_kv = OnDemandKv(setup, *decode);
  const double waiting_block_fraction = on_demand_kv ? WaitingBlockFraction(setup, *decode) : 0.0;
  if (setup.distserve_step_loop && waiting_block_fraction <= 0) {
    return absl::InvalidArgumentError(
        "--distserve-step-loop: the decode instances do not run DistServe's scheduler (it needs a distserve "
        "profile, or --kv-allocation on_demand with --decode-waiting-block-fraction > 0)");
  }
  for (int i = 0; i < placement.num_decode; ++i) {
    cluster.decode.push_back({.latency = *decode,
                              .num_gpus = placement.decode_tp * placement.decode_pp,
                              .max_batch_size = setup.decode_max_batch_size,
                              .kv_capacity_tokens = setup.decode_kv_limit ? decode_capacity : 0,
                              .pp = placement.decode_pp,
                              .micro_batches = micro_batches,
                              .on_demand_kv = on_demand_kv,
                              .waiting_block_fraction = waiting_block_fraction,
                              .step_loop = setup.distserve_step_loop});
  }
  return cluster;
}

absl::StatusOr<std::unique_ptr<policy::PlacementPolicy>> MakeSimPolicy(const SimSetup& setup,
                                                                       const ClusterConfig& cluster) {
  policy::PlacementPolicyOptions options;
  const auto add = [&options](const std::string& prefix, size_t i, const policy::LatencyModel& model) {
    if (!options.latency_model.has_value()) options.latency_model = model;
    options.worker_latency_models.emplace(absl::StrCat(prefix, i), model);
  };
  for (size_t i = 0; i < cluster.prefill.size(); ++i) add("prefill-", i, cluster.prefill[i].latency);
  for (size_t i = 0; i < cluster.decode.size(); ++i) add("decode-", i, cluster.decode[i].latency);
  for (size_t i = 0; i < cluster.colocated.size(); ++i) add("colocated-", i, cluster.colocated[i].latency);
  return policy::MakePlacementPolicy(setup.policy_name, options);
}

absl::StatusOr<Summary> EvaluateRate(const SimSetup& setup, const Placement& placement,
                                     const std::vector<Workload>& seeds, double rate) {
  absl::StatusOr<ClusterConfig> cluster = BuildCluster(setup, placement);
  if (!cluster.ok()) return cluster.status();
  std::vector<RequestRecord> pooled;
  for (const Workload& seed : seeds) {
    absl::StatusOr<std::unique_ptr<policy::PlacementPolicy>> policy = MakeSimPolicy(setup, *cluster);
    if (!policy.ok()) return policy.status();
    Simulator simulator(*cluster, policy->get(), setup.sim_options);
    absl::StatusOr<std::vector<RequestRecord>> records = simulator.Run(ScaleToRate(seed, rate));
    if (!records.ok()) return records.status();
    pooled.insert(pooled.end(), records->begin(), records->end());
  }
  Summary summary = Summarize(pooled, setup.slo);
  // Every seed's run starts at 0, so the pooled span (first arrival to last finish) is about one run's
  // duration while the counts add up over the seeds: report the rates of one seed's run.
  if (summary.duration_s > 0) {
    summary.request_throughput = summary.completed / summary.duration_s / seeds.size();
    summary.output_throughput = summary.total_output_tokens / summary.duration_s / seeds.size();
    summary.total_token_throughput =
        (summary.total_input_tokens + summary.total_output_tokens) / summary.duration_s / seeds.size();
    summary.request_goodput = summary.attainment * summary.num_requests / summary.duration_s / seeds.size();
  }
  return summary;
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Step times are rounded to whole nanoseconds and latencies pass through seconds as doubles, so a
// latency's lower bound is compared with its SLO with this much room (ms).
constexpr double kLatencyRoomMs = 1e-6;

// What a batch's size is measured in, for one of its caps.
enum class CapSize { kRequests, kPromptTokens, kReservedTokens };

// A cap a batch (or decode step) obeys whenever it holds two or more requests: sum(size) <= limit.
// limit <= 0: no such cap.
struct BatchCap {
  int64_t limit;
  CapSize size;
};

double CapSizeOf(CapSize size, const SimRequest& r) {
  switch (size) {
    case CapSize::kRequests:
      return 1.0;
    case CapSize::kPromptTokens:
      return static_cast<double>(r.prompt_len);
    case CapSize::kReservedTokens:
      return static_cast<double>(r.prompt_len + r.output_len);
  }
  return 1.0;
}

// Least instance time (ms) each request takes in one phase, one vector per cap: its own terms, plus its
// least share of the per-step constant under that cap. Each vector alone bounds the time of the steps
// of any subset of the requests: a step of two or more requests keeps sum(size) <= limit, so the steps
// the subset takes part in number at least sum(steps * size / max(limit, size)). nullopt: no claim (a
// negative step constant or per-request term, which only odd fitted coefficients give).
using PhaseCosts = std::optional<std::vector<std::vector<double>>>;

PhaseCosts CostsUnderCaps(double constant_ms, const std::vector<double>& own_ms, const std::vector<double>& steps,
                          const std::vector<BatchCap>& caps, const std::vector<SimRequest>& requests) {
  if (constant_ms < 0) return std::nullopt;
  std::vector<std::vector<double>> costs(caps.size(), own_ms);
  for (size_t i = 0; i < requests.size(); ++i) {
    if (own_ms[i] < 0) return std::nullopt;
    for (size_t k = 0; k < caps.size(); ++k) {
      if (caps[k].limit <= 0) continue;
      const double size = CapSizeOf(caps[k].size, requests[i]);
      costs[k][i] += constant_ms * steps[i] * size / std::max(static_cast<double>(caps[k].limit), size);
    }
  }
  return costs;
}

PhaseCosts PrefillCosts(const policy::LatencyModel& model, const std::vector<BatchCap>& caps,
                        const std::vector<SimRequest>& requests) {
  const policy::LatencyModelParams& p = model.params();
  std::vector<double> own(requests.size()), steps(requests.size(), 1.0);
  for (size_t i = 0; i < requests.size(); ++i) {
    const double l = static_cast<double>(requests[i].prompt_len);
    own[i] = (p.prefill.b * l + p.prefill.c * l * l) / p.pp + p.overhead_per_ctx_token_ms * l;
  }
  return CostsUnderCaps(p.prefill.a / p.pp + p.prefill_overhead_ms, own, steps, caps, requests);
}

// Sum of the contexts of a request's decode steps: prompt + 1, ..., prompt + output - 1.
double DecodeContextSum(const SimRequest& r) {
  const double steps = static_cast<double>(r.output_len - 1);
  return steps * static_cast<double>(r.prompt_len) + steps * static_cast<double>(r.output_len) / 2.0;
}

// Decode with each coefficient at its least over the two batch regimes, so a bound in both.
PhaseCosts DecodeCosts(const policy::LatencyModel& model, const std::vector<BatchCap>& caps,
                       const std::vector<SimRequest>& requests) {
  const policy::LatencyModelParams& p = model.params();
  const double a = std::min(p.decode_small.a, p.decode_large.a);
  const double b = std::min(p.decode_small.b, p.decode_large.b);
  const double c = std::min(p.decode_small.c, p.decode_large.c);
  std::vector<double> own(requests.size(), 0.0), steps(requests.size(), 0.0);
  for (size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].output_len <= 1) continue;  // done at prefill
    steps[i] = static_cast<double>(requests[i].output_len - 1);
    const double context = DecodeContextSum(requests[i]);
    own[i] = (b * context + c * steps[i]) / p.pp + p.overhead_per_ctx_token_ms * context;
  }
  return CostsUnderCaps(a / p.pp + p.decode_overhead_ms, own, steps, caps, requests);
}

// The least over instances, request by request; no claim if any instance makes none.
PhaseCosts LeastOver(const std::vector<PhaseCosts>& instances) {
  PhaseCosts least;
  for (const PhaseCosts& costs : instances) {
    if (!costs.has_value()) return std::nullopt;
    if (!least.has_value()) {
      least = costs;
      continue;
    }
    for (size_t k = 0; k < least->size(); ++k) {
      for (size_t i = 0; i < (*least)[k].size(); ++i) (*least)[k][i] = std::min((*least)[k][i], (*costs)[k][i]);
    }
  }
  return least;
}

// The cap whose costs add up to the most (any one is valid); zeros for no claim.
std::vector<double> Strongest(const PhaseCosts& costs, size_t num_requests) {
  std::vector<double> best(num_requests, 0.0);
  if (!costs.has_value()) return best;
  double best_total = -1.0;
  for (const std::vector<double>& c : *costs) {
    const double total = std::accumulate(c.begin(), c.end(), 0.0);
    if (total > best_total) {
      best_total = total;
      best = c;
    }
  }
  return best;
}

// A request's decode time alone: each of its steps at batch size >= 1 in either regime.
double DecodeAloneMs(const policy::LatencyModel& model, const SimRequest& r) {
  if (r.output_len <= 1) return 0.0;
  const policy::LatencyModelParams& p = model.params();
  const double per_step = std::min(p.decode_small.a + p.decode_small.c,
                                   p.decode_large.a + p.decode_large.c * static_cast<double>(p.bs_threshold));
  const double b = std::min(p.decode_small.b, p.decode_large.b);
  const double steps = static_cast<double>(r.output_len - 1);
  const double context = DecodeContextSum(r);
  return (per_step * steps + b * context) / p.pp + p.decode_overhead_ms * steps +
         p.overhead_per_ctx_token_ms * context;
}

// A request's prefill alone; other requests in its batch only add when b, c >= 0 (else 0: no claim).
double PrefillAloneMs(const policy::LatencyModel& model, const SimRequest& r) {
  const policy::LatencyModelParams& p = model.params();
  if (p.prefill.b < 0 || p.prefill.c < 0) return 0.0;
  const double l = static_cast<double>(r.prompt_len);
  return model.PrefillMsFromSums(l, l * l);
}

// The least total of `count` of `costs` (ms).
double CheapestSum(std::vector<double> costs, size_t count) {
  std::sort(costs.begin(), costs.end());
  double sum = 0.0;
  for (size_t i = 0; i < count && i < costs.size(); ++i) sum += costs[i];
  return sum;
}

double SustainedRate(int instances, size_t num_requests, const std::vector<double>& work_ms, size_t served) {
  const double work = CheapestSum(work_ms, served);
  return work > 0 ? instances * 1e3 * static_cast<double>(num_requests) / work : kInf;
}

}  // namespace

absl::StatusOr<RateBound> RateUpperBound(const SimSetup& setup, const Placement& placement,
                                         const std::vector<Workload>& seeds) {
  absl::StatusOr<ClusterConfig> cluster = BuildCluster(setup, placement);
  if (!cluster.ok()) return cluster.status();
  std::vector<SimRequest> requests;
  for (const Workload& seed : seeds) requests.insert(requests.end(), seed.requests.begin(), seed.requests.end());
  const size_t n = requests.size();
  if (n == 0) return absl::InvalidArgumentError("rate bound: the workload has no requests");
  // Requests a run must serve: all, unless the policy may reject (only round_robin and least_loaded
  // never do) or a horizon cuts the run; then as many as the target needs (joint attainment >= target,
  // or the separate percentiles), whichever are cheapest.
  const bool all_served = setup.sim_options.horizon_s <= 0 &&
                          (setup.policy_name == "round_robin" || setup.policy_name == "least_loaded");
  const size_t served =
      all_served ? n
                 : std::min(n, static_cast<size_t>(std::floor(setup.slo.target * static_cast<double>(n - 1))) + 1);

  std::vector<double> ttft_alone(n, kInf), tpot_alone(n, kInf), transfer(n, 0.0);
  auto tpot_of = [&](const SimRequest& r, double decode_ms) {
    if (r.output_len <= 1) return 0.0;
    const double tokens = setup.slo.tpot_definition == TpotDefinition::kDistServeSim ? r.output_len : r.output_len - 1;
    return decode_ms / tokens;
  };
  const bool colocated = !cluster->colocated.empty();
  std::vector<PhaseCosts> prefill_instances, decode_instances;
  if (colocated) {
    for (const ColocatedInstanceConfig& c : cluster->colocated) {
      prefill_instances.push_back(PrefillCosts(c.latency,
                                               {{c.max_batch_size, CapSize::kRequests},
                                                {c.max_batch_tokens, CapSize::kPromptTokens},
                                                {c.kv_capacity_tokens, CapSize::kReservedTokens}},
                                               requests));
      decode_instances.push_back(DecodeCosts(
          c.latency, {{c.max_batch_size, CapSize::kRequests}, {c.kv_capacity_tokens, CapSize::kReservedTokens}},
          requests));
      for (size_t i = 0; i < n; ++i) {
        ttft_alone[i] = std::min(ttft_alone[i], PrefillAloneMs(c.latency, requests[i]));
        tpot_alone[i] = std::min(tpot_alone[i], tpot_of(requests[i], DecodeAloneMs(c.latency, requests[i])));
      }
    }
  } else {
    std::fill(transfer.begin(), transfer.end(), kInf);
    for (const PrefillInstanceConfig& c : cluster->prefill) {
      prefill_instances.push_back(PrefillCosts(c.latency,
                                               {{c.max_batch_size, CapSize::kRequests},
                                                {c.max_batch_tokens, CapSize::kPromptTokens},
                                                {c.kv_buffer_tokens, CapSize::kPromptTokens}},
                                               requests));
      for (size_t i = 0; i < n; ++i) {
        ttft_alone[i] = std::min(ttft_alone[i], PrefillAloneMs(c.latency, requests[i]));
        const double bytes = cluster->kv_bytes_per_token * static_cast<double>(requests[i].prompt_len);
        transfer[i] = requests[i].output_len <= 1 ? 0.0 : std::min(transfer[i], c.latency.KvTransferMs(bytes));
      }
    }
    std::vector<double> decode_alone(n, kInf);
    for (const DecodeInstanceConfig& c : cluster->decode) {
      decode_instances.push_back(DecodeCosts(
          c.latency, {{c.max_batch_size, CapSize::kRequests}, {c.kv_capacity_tokens, CapSize::kReservedTokens}},
          requests));
      for (size_t i = 0; i < n; ++i) decode_alone[i] = std::min(decode_alone[i], DecodeAloneMs(c.latency, requests[i]));
    }
    for (size_t i = 0; i < n; ++i) tpot_alone[i] = tpot_of(requests[i], transfer[i] + decode_alone[i]);
  }
  const std::vector<double> prefill = Strongest(LeastOver(prefill_instances), n);
  const std::vector<double> decode = Strongest(LeastOver(decode_instances), n);

  RateBound bound;
  const int num_prefill = static_cast<int>(colocated ? cluster->colocated.size() : cluster->prefill.size());
  const int num_decode = static_cast<int>(colocated ? cluster->colocated.size() : cluster->decode.size());
  bound.prefill_rate = SustainedRate(num_prefill, n, prefill, served);
  bound.decode_rate = SustainedRate(num_decode, n, decode, served);
  if (colocated) {
    // One instance runs both phases of its requests.
    std::vector<double> both(n);
    for (size_t i = 0; i < n; ++i) both[i] = prefill[i] + decode[i];
    bound.transfer_rate = kInf;
    bound.rate = SustainedRate(num_prefill, n, both, served);
    bound.limit = "colocated";
  } else {
    bound.transfer_rate = SustainedRate(num_decode, n, transfer, served);
    bound.rate = bound.prefill_rate;
    bound.limit = "prefill";
    if (bound.decode_rate < bound.rate) {
      bound.rate = bound.decode_rate;
      bound.limit = "decode";
    }
    if (bound.transfer_rate < bound.rate) {
      bound.rate = bound.transfer_rate;
      bound.limit = "transfer";
    }
  }

  int64_t alone_ok = 0;
  for (size_t i = 0; i < n; ++i) {
    alone_ok += ttft_alone[i] <= setup.slo.ttft_ms + kLatencyRoomMs &&
                tpot_alone[i] <= setup.slo.tpot_ms + kLatencyRoomMs;
  }
  bound.feasible_share = alone_ok / static_cast<double>(n);  // as Summarize computes attainment
  if (setup.slo.mode == AttainmentMode::kJoint) {
    bound.slo_reachable = bound.feasible_share >= setup.slo.target;
  } else {
    // Percentiles are monotone in every value, so those of the lone latencies are lower bounds.
    const double q = setup.slo.target * 100.0;
    bound.slo_reachable = Percentile(ttft_alone, q) < setup.slo.ttft_ms + kLatencyRoomMs &&
                          Percentile(tpot_alone, q) < setup.slo.tpot_ms + kLatencyRoomMs;
  }
  if (!bound.slo_reachable) {
    bound.rate = 0.0;
    bound.limit = "slo";
  }
  return bound;
}

absl::StatusOr<GoodputResult> FindGoodput(const SimSetup& setup, const Placement& placement,
                                          const std::vector<Workload>& seeds, const GoodputOptions& options) {
  if (seeds.empty()) return absl::InvalidArgumentError("--seeds: need at least one workload seed");
  if (!(options.max_per_gpu_rate > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("--max-per-gpu-rate: ", options.max_per_gpu_rate, " must be > 0"));
  }
  if (!(options.tolerance > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("--tolerance: ", options.tolerance, " must be > 0"));
  }
  GoodputResult result;
  result.placement = placement;
  const double gpus = placement.NumGpus();
  double lo = 0.0, hi = options.max_per_gpu_rate;
  Summary failing;
  bool have_failing = false;
  // One simulation at a per-GPU rate; true when it meets the target.
  auto probe = [&](double per_gpu) -> absl::StatusOr<bool> {
    absl::StatusOr<Summary> summary = EvaluateRate(setup, placement, seeds, per_gpu * gpus);
    ++result.num_simulations;
    if (!summary.ok()) return summary.status();
    if (summary->meets_target) {
      result.at_goodput = *std::move(summary);
      return true;
    }
    failing = *std::move(summary);
    have_failing = true;
    return false;
  };
  auto bisect = [&]() -> absl::Status {
    while (hi - lo >= options.tolerance && lo < hi) {
      const double mid = 0.5 * (lo + hi);
      TANDEM_ASSIGN_OR_RETURN(const bool met, probe(mid));
      (met ? lo : hi) = mid;
    }
    return absl::OkStatus();
  };
  const double hint = options.assume_fail_above;
  if (hint > 0 && hi > hint) {
    // The probes above the hint -- the top, then halves while lo is still 0 -- are taken as misses
    // without running them, which leaves (lo, hi) where the full bisection would have them.
    while (hi - lo >= options.tolerance && 0.5 * (lo + hi) > hint) hi = 0.5 * (lo + hi);
    TANDEM_RETURN_IF_ERROR(bisect());
    if (!have_failing) {
      // Every probe met the target, so the full bisection's last miss would have been at hi, the last
      // skipped probe: run it. If it meets the target too, the hint was wrong here: walk back up the
      // skipped probes (each twice the last, exactly) to the first miss or the top, which again puts
      // (lo, hi) where the full bisection would have them, and go on.
      for (double at = hi;; at *= 2) {
        TANDEM_ASSIGN_OR_RETURN(const bool met, probe(at));
        if (met) lo = at;
        if (!met || at >= options.max_per_gpu_rate) {
          hi = at;
          break;
        }
      }
      TANDEM_RETURN_IF_ERROR(bisect());
    }
  } else {
    TANDEM_ASSIGN_OR_RETURN(const bool met, probe(hi));
    if (met) lo = hi;
    TANDEM_RETURN_IF_ERROR(bisect());
  }
  result.per_gpu_goodput = lo;
  result.goodput = lo * gpus;
  if (have_failing) result.limiting = failing.attainment_ttft <= failing.attainment_tpot ? "ttft" : "tpot";
  return result;
}

std::vector<Placement> EnumeratePlacements(const SimSetup& setup, const PlacementSearchOptions& options) {
  std::vector<Placement> placements;
  const int max_count = options.one_prefill_one_decode ? 1 : options.max_instances_per_phase;
  for (int prefill_tp : options.tensor_parallel) {
    if (!FindProfile(setup.profiles, setup.model, prefill_tp).ok()) continue;
    for (int decode_tp : options.tensor_parallel) {
      for (int decode_pp : options.decode_pipeline_parallel) {
        if (!FindStageProfile(setup.profiles, setup.model, decode_tp, decode_pp).ok()) continue;
        for (int num_prefill = 1; num_prefill <= max_count; ++num_prefill) {
          for (int num_decode = 1; num_decode <= max_count; ++num_decode) {
            Placement p{.prefill_tp = prefill_tp, .num_prefill = num_prefill, .decode_tp = decode_tp,
                        .num_decode = num_decode, .decode_pp = decode_pp};
            if (p.NumGpus() <= options.gpu_budget) placements.push_back(p);
          }
        }
      }
    }
  }
  if (options.include_colocated) {
    for (int tp : options.tensor_parallel) {
      if (!FindProfile(setup.colocated_profiles, setup.model, tp).ok()) continue;
      for (int count = 1; count * tp <= options.gpu_budget; ++count) {
        placements.push_back(Placement{.colocated_tp = tp, .num_colocated = count});
      }
    }
  }
  return placements;
}

absl::StatusOr<std::vector<GoodputResult>> SearchPlacements(const SimSetup& setup,
                                                            const std::vector<Workload>& seeds,
                                                            const PlacementSearchOptions& options,
                                                            SearchStats* stats) {
  const std::vector<Placement> placements = EnumeratePlacements(setup, options);
  if (placements.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--gpus: no placement with a known profile fits in ",
                                                   options.gpu_budget, " GPUs"));
  }
  if (!(options.prune_slack >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("--prune-slack: ", options.prune_slack, " must be >= 0"));
  }
  const size_t n = placements.size();
  std::vector<RateBound> bounds(n);
  std::vector<double> scaled(n);  // per-GPU bound * (1 + slack)
  for (size_t i = 0; i < n; ++i) {
    absl::StatusOr<RateBound> bound = RateUpperBound(setup, placements[i], seeds);
    if (!bound.ok()) return bound.status();
    bounds[i] = *bound;
    scaled[i] = bound->rate / placements[i].NumGpus() * (1.0 + options.prune_slack);
  }
  // The order placements run in: highest scaled bound first (ties: enumeration order) when pruning.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  if (options.prune) {
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scaled[a] > scaled[b]; });
  }

  // Deterministic pruning. Sequentially, the placement at position k of `order` is a candidate for
  // pruning when a per-GPU goodput found at an earlier position exceeds its scaled bound; a candidate is
  // checked with one simulation at its scaled bound and pruned if that misses the target, else bisected.
  // Scaled bounds only fall along `order` and the best goodput only rises, so the candidates are a
  // suffix, from the first k where max(goodput[0..k-1]) > scaled[k]; that k depends only on goodputs,
  // each a deterministic function of its placement, and a candidate's fate only on its own check. So the
  // result does not depend on timing, and threads may run ahead: a worker takes positions in order and
  // checks a placement first only when a result already complete at an earlier position makes it a
  // candidate -- which proves it is in the suffix, whatever is still running. Otherwise it bisects, and
  // when such a placement turns out to be a candidate the check runs afterwards and decides whether the
  // bisection is kept or dropped (only SearchStats counts the dropped simulations).
  struct Slot {
    std::optional<absl::StatusOr<GoodputResult>> bisected;
    std::optional<absl::StatusOr<Summary>> check;  // nullopt: not run; a bound of 0 needs no simulation
    bool check_done = false;
  };
  std::vector<Slot> slots(n);  // by position
  auto check = [&](size_t pos) {
    Slot& slot = slots[pos];
    const size_t i = order[pos];
    slot.check_done = true;
    if (scaled[i] > 0) slot.check = EvaluateRate(setup, placements[i], seeds, scaled[i] * placements[i].NumGpus());
  };
  auto check_met = [](const Slot& slot) {
    return slot.check.has_value() && slot.check->ok() && (*slot.check)->meets_target;
  };
  std::atomic<size_t> next{0};
  std::mutex mu;
  int done = 0;
  auto worker = [&]() {
    for (size_t pos = next++; pos < n; pos = next++) {
      const size_t i = order[pos];
      bool candidate = false;
      if (options.prune) {
        std::lock_guard<std::mutex> lock(mu);
        for (size_t earlier = 0; earlier < pos && !candidate; ++earlier) {
          const auto& r = slots[earlier].bisected;
          candidate = r.has_value() && r->ok() && (*r)->per_gpu_goodput > scaled[i];
        }
      }
      if (candidate) check(pos);  // slots[pos] is this worker's alone until it is bisected or done
      if (!candidate || check_met(slots[pos])) {
        GoodputOptions goodput = options.goodput;
        if (options.prune && std::isfinite(scaled[i]) && scaled[i] > 0) goodput.assume_fail_above = scaled[i];
        absl::StatusOr<GoodputResult> result = FindGoodput(setup, placements[i], seeds, goodput);
        std::lock_guard<std::mutex> lock(mu);
        slots[pos].bisected = std::move(result);
      }
      std::lock_guard<std::mutex> lock(mu);
      ++done;
      if (options.progress) options.progress(done, static_cast<int>(n));
    }
  };
  const int threads = std::max(1, std::min<int>(options.num_threads, static_cast<int>(n)));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& thread : pool) thread.join();

  // The first candidate, from the results themselves; every earlier position was bisected.
  size_t first_candidate = n;
  double best = -kInf;
  for (size_t pos = 0; pos < n; ++pos) {
    if (options.prune && best > scaled[order[pos]]) {
      first_candidate = pos;
      break;
    }
    const auto& r = slots[pos].bisected;
    if (!r.has_value()) {
      return absl::InternalError(absl::StrCat("search: ", placements[order[pos]].Label(), " was not bisected"));
    }
    if (!r->ok()) return r->status();
    best = std::max(best, (*r)->per_gpu_goodput);
  }
  SearchStats counts;
  counts.num_placements = static_cast<int>(n);
  std::vector<std::pair<size_t, GoodputResult>> ranked;  // (enumeration index, result)
  std::vector<GoodputResult> pruned;                      // in falling bound order
  for (size_t pos = 0; pos < n; ++pos) {
    const size_t i = order[pos];
    Slot& slot = slots[pos];
    if (pos >= first_candidate && !slot.check_done) check(pos);  // a thread ran ahead of the pruning
    const int check_sims = slot.check.has_value() ? 1 : 0;
    const int bisect_sims = slot.bisected.has_value() && slot.bisected->ok() ? (*slot.bisected)->num_simulations : 0;
    counts.num_simulations += check_sims + bisect_sims;
    if (slot.check.has_value() && !slot.check->ok()) return slot.check->status();
    if (pos >= first_candidate && !check_met(slot)) {
      counts.num_discarded_simulations += bisect_sims;
      GoodputResult skipped;
      skipped.placement = placements[i];
      skipped.bound = bounds[i];
      skipped.pruned = true;
      skipped.num_simulations = check_sims;
      if (slot.check.has_value()) {
        const Summary& missed = **slot.check;
        skipped.limiting = missed.attainment_ttft <= missed.attainment_tpot ? "ttft" : "tpot";
      }
      pruned.push_back(std::move(skipped));
      continue;
    }
    if (!slot.bisected.has_value()) {
      return absl::InternalError(absl::StrCat("search: ", placements[i].Label(), " was not bisected"));
    }
    if (!slot.bisected->ok()) return slot.bisected->status();
    ranked.emplace_back(i, *std::move(*slot.bisected));
    ranked.back().second.bound = bounds[i];
    ranked.back().second.num_simulations += check_sims;
  }
  counts.num_pruned = static_cast<int>(pruned.size());
  // Ties go to fewer GPUs, then enumeration order, whatever order the placements ran in.
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    if (a.second.per_gpu_goodput != b.second.per_gpu_goodput) {
      return a.second.per_gpu_goodput > b.second.per_gpu_goodput;
    }
    if (a.second.placement.NumGpus() != b.second.placement.NumGpus()) {
      return a.second.placement.NumGpus() < b.second.placement.NumGpus();
    }
    return a.first < b.first;
  });
  std::vector<GoodputResult> out;
  for (auto& [index, result] : ranked) out.push_back(std::move(result));
  for (GoodputResult& result : pruned) out.push_back(std::move(result));
  if (stats != nullptr) *stats = counts;
  return out;
}

std::string FormatSearchTable(const std::vector<GoodputResult>& results) {
  std::string out = absl::StrFormat("%-4s %-26s %5s %14s %12s %10s %10s %10s %8s %10s %5s\n", "rank", "placement",
                                    "GPUs", "goodput/GPU", "goodput", "attain%", "p90 TTFT", "p90 TPOT", "limit",
                                    "bound/GPU", "sims");
  int rank = 1;
  for (const GoodputResult& r : results) {
    const double bound_per_gpu = r.bound.rate / r.placement.NumGpus();
    if (r.pruned) {
      // Not bisected: its goodput is below the best (see GoodputResult::pruned).
      out += absl::StrFormat("%-4s %-26s %5d %14s %12s %10s %10s %10s %8s %10.3f %5d\n", "-", r.placement.Label(),
                             r.placement.NumGpus(), "-", "-", "-", "-", "-", "pruned", bound_per_gpu,
                             r.num_simulations);
      continue;
    }
    out += absl::StrFormat("%-4d %-26s %5d %14.3f %12.3f %10.1f %10.1f %10.1f %8s %10.3f %5d\n", rank++,
                           r.placement.Label(), r.placement.NumGpus(), r.per_gpu_goodput, r.goodput,
                           100 * r.at_goodput.attainment, r.at_goodput.ttft.p90, r.at_goodput.tpot.p90,
                           r.limiting.empty() ? "-" : r.limiting, bound_per_gpu, r.num_simulations);
  }
  return out;
}

}  // namespace tandem::sim
