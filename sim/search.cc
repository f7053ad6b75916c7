#include "sim/search.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/profiles.h"

namespace tandem::sim {

int Placement::NumGpus() const {
  if (num_colocated > 0) return num_colocated * colocated_tp;
  return num_prefill * prefill_tp + num_decode * decode_tp;
}

std::string Placement::Label() const {
  if (num_colocated > 0) return absl::StrCat(num_colocated, "xColocated(tp", colocated_tp, ")");
  return absl::StrCat(num_prefill, "P(tp", prefill_tp, ")+", num_decode, "D(tp", decode_tp, ")");
}

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
           .kv_capacity_tokens = setup.decode_kv_limit ? capacity : 0});
    }
    return cluster;
  }
  absl::StatusOr<policy::LatencyModel> prefill = FindProfile(setup.profiles, setup.model, placement.prefill_tp);
  if (!prefill.ok()) return prefill.status();
  absl::StatusOr<policy::LatencyModel> decode = FindProfile(setup.profiles, setup.model, placement.decode_tp);
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
  for (int i = 0; i < placement.num_decode; ++i) {
    cluster.decode.push_back({.latency = *decode,
                              .num_gpus = placement.decode_tp,
                              .max_batch_size = setup.decode_max_batch_size,
                              .kv_capacity_tokens = setup.decode_kv_limit ? decode_capacity : 0});
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
  // Pooled durations add up across seeds; report rates of one seed's run.
  summary.duration_s /= static_cast<double>(std::max<size_t>(1, seeds.size()));
  if (summary.duration_s > 0) {
    summary.request_throughput = summary.completed / summary.duration_s / seeds.size();
    summary.output_throughput = summary.total_output_tokens / summary.duration_s / seeds.size();
    summary.total_token_throughput =
        (summary.total_input_tokens + summary.total_output_tokens) / summary.duration_s / seeds.size();
    summary.request_goodput = summary.attainment * summary.num_requests / summary.duration_s / seeds.size();
  }
  return summary;
}

absl::StatusOr<GoodputResult> FindGoodput(const SimSetup& setup, const Placement& placement,
                                          const std::vector<Workload>& seeds, const GoodputOptions& options) {
  if (seeds.empty()) return absl::InvalidArgumentError("--seeds: need at least one workload seed");
  if (!(options.max_per_gpu_rate > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("--max_per_gpu_rate: ", options.max_per_gpu_rate, " must be > 0"));
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
  absl::StatusOr<Summary> top = EvaluateRate(setup, placement, seeds, hi * gpus);
  ++result.num_simulations;
  if (!top.ok()) return top.status();
  if (top->meets_target) {
    lo = hi;
    result.at_goodput = *top;
  } else {
    failing = *top;
    have_failing = true;
  }
  while (hi - lo >= options.tolerance && lo < hi) {
    const double mid = 0.5 * (lo + hi);
    absl::StatusOr<Summary> summary = EvaluateRate(setup, placement, seeds, mid * gpus);
    ++result.num_simulations;
    if (!summary.ok()) return summary.status();
    if (summary->meets_target) {
      lo = mid;
      result.at_goodput = *summary;
    } else {
      hi = mid;
      failing = *summary;
      have_failing = true;
    }
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
      if (!FindProfile(setup.profiles, setup.model, decode_tp).ok()) continue;
      for (int num_prefill = 1; num_prefill <= max_count; ++num_prefill) {
        for (int num_decode = 1; num_decode <= max_count; ++num_decode) {
          Placement p{.prefill_tp = prefill_tp, .num_prefill = num_prefill, .decode_tp = decode_tp,
                      .num_decode = num_decode};
          if (p.NumGpus() <= options.gpu_budget) placements.push_back(p);
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
                                                            const PlacementSearchOptions& options) {
  const std::vector<Placement> placements = EnumeratePlacements(setup, options);
  if (placements.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--gpus: no placement with a known profile fits in ",
                                                   options.gpu_budget, " GPUs"));
  }
  std::vector<absl::StatusOr<GoodputResult>> results(placements.size(), absl::UnknownError("not run"));
  std::atomic<size_t> next{0};
  std::mutex progress_mu;
  int done = 0;
  auto worker = [&]() {
    for (size_t i = next++; i < placements.size(); i = next++) {
      results[i] = FindGoodput(setup, placements[i], seeds, options.goodput);
      std::lock_guard<std::mutex> lock(progress_mu);
      ++done;
      if (options.progress) options.progress(done, static_cast<int>(placements.size()));
    }
  };
  const int threads = std::max(1, std::min<int>(options.num_threads, static_cast<int>(placements.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& thread : pool) thread.join();

  std::vector<GoodputResult> out;
  for (auto& result : results) {
    if (!result.ok()) return result.status();
    out.push_back(*std::move(result));
  }
  std::stable_sort(out.begin(), out.end(), [](const GoodputResult& a, const GoodputResult& b) {
    if (a.per_gpu_goodput != b.per_gpu_goodput) return a.per_gpu_goodput > b.per_gpu_goodput;
    return a.placement.NumGpus() < b.placement.NumGpus();
  });
  return out;
}

std::string FormatSearchTable(const std::vector<GoodputResult>& results) {
  std::string out = absl::StrFormat("%-4s %-26s %5s %14s %12s %10s %10s %10s %8s\n", "rank", "placement", "GPUs",
                                    "goodput/GPU", "goodput", "attain%", "p90 TTFT", "p90 TPOT", "limit");
  int rank = 1;
  for (const GoodputResult& r : results) {
    out += absl::StrFormat("%-4d %-26s %5d %14.3f %12.3f %10.1f %10.1f %10.1f %8s\n", rank++, r.placement.Label(),
                           r.placement.NumGpus(), r.per_gpu_goodput, r.goodput, 100 * r.at_goodput.attainment,
                           r.at_goodput.ttft.p90, r.at_goodput.tpot.p90, r.limiting.empty() ? "-" : r.limiting);
  }
  return out;
}

}  // namespace tandem::sim
