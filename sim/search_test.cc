#include "sim/search.h"

#include <cstdio>

#include "gtest/gtest.h"
#include "sim/profiles.h"
#include "sim/testing/distserve_setup.h"

namespace tandem::sim {
namespace {

using fixtures::DistServeSetup;
using fixtures::ShareGptSeeds;

TEST(ProfilesTest, KvBytesPerToken) {
  EXPECT_EQ(BuiltinModelShape("opt-13b")->KvBytesPerToken(), 819200);
  EXPECT_EQ(BuiltinModelShape("opt-66b")->KvBytesPerToken(), 2359296);
  EXPECT_EQ(BuiltinModelShape("llama-3-8b")->KvBytesPerToken(), 131072);
  EXPECT_EQ(BuiltinModelShape("llama-3-70b")->KvBytesPerToken(), 327680);
}

TEST(ProfilesTest, TheVllmBaselineIsThePublishedFitCalibratedOnMeasuredRuns) {
  const policy::LatencyModel published = BuiltinProfiles("vllm-a100-published")->at(0);
  const policy::LatencyModel calibrated = BuiltinProfiles("vllm-a100")->at(0);
  // SLO_SIM.md 2.6's vLLM 13B TP1 row, + 3 ms per prefill step and 2 ms per decode step.
  EXPECT_NEAR(published.PrefillMs(std::vector<int64_t>{1000}), 22.0522 + 140.509 + 8.07658 + 3, 1e-6);
  EXPECT_NEAR(published.DecodeStepMs(10, 5000), 23.4750 + 5.92934e-4 * 5000 + 0.0607269 * 10 + 2, 1e-9);
  // Calibrated (profiles.cc, bench/sim/distserve.md): prefill 15% faster at 1000 tokens, and 0.239 ms
  // more per sequence in a decode step; same engine, KV and everything else.
  EXPECT_NEAR(calibrated.PrefillMs(std::vector<int64_t>{1000}), 25.2372033 + 95.5429668 + 20.4622362 + 3, 1e-6);
  EXPECT_NEAR(calibrated.DecodeStepMs(10, 5000) - published.DecodeStepMs(10, 5000), 2.39, 1e-9);
  EXPECT_NEAR(calibrated.DecodeStepMs(200, 5000) - published.DecodeStepMs(200, 5000), 200 * 0.239, 1e-9);
  EXPECT_EQ(calibrated.params().engine, "vllm");
  EXPECT_EQ(published.params().engine, "vllm");
  EXPECT_EQ(calibrated.params().kv_capacity_tokens, published.params().kv_capacity_tokens);
  EXPECT_FALSE(BuiltinProfiles("vllm-h100").ok());
}

TEST(ProfilesTest, PipelineStageProfileFromTheTensorParallelOne) {
  const std::vector<policy::LatencyModel> profiles = *BuiltinProfiles("distserve-a100");
  const policy::LatencyModel tp1 = *FindProfile(profiles, "opt-13b", 1);
  const policy::LatencyModel stage = *FindStageProfile(profiles, "opt-13b", 1, 2);
  EXPECT_EQ(stage.params().pp, 2);
  // DistServe's max_num_tokens.csv: facebook/opt-13b,1,2,163008 (= the tp 2 capacity).
  EXPECT_EQ(stage.params().kv_capacity_tokens, 163008);
  // Half the coefficient time, the whole per-step overhead (DistServe's ray overhead: 2 ms + 1e-4 ms per
  // context token).
  const double overhead = 2.0 + 1e-4 * 4000;
  EXPECT_EQ(tp1.params().decode_overhead_ms, 2.0);
  EXPECT_EQ(tp1.params().overhead_per_ctx_token_ms, 1e-4);
  EXPECT_NEAR(stage.DecodeStepMs(8, 4000) - overhead, (tp1.DecodeStepMs(8, 4000) - overhead) / 2, 1e-9);
  EXPECT_EQ(FindStageProfile(profiles, "opt-13b", 1, 1)->params().pp, 1);
  // No tp 8 profile for OPT-13B to take a tp 4 x pp 2 capacity from.
  absl::StatusOr<policy::LatencyModel> missing = FindStageProfile(profiles, "opt-13b", 4, 2);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("tp=8"), std::string::npos) << missing.status();
}

TEST(SearchTest, BuildsAPipelinedDecodeInstance) {
  Placement placement{.prefill_tp = 2, .num_prefill = 1, .decode_tp = 1, .num_decode = 1, .decode_pp = 2};
  EXPECT_EQ(placement.NumGpus(), 4);
  EXPECT_EQ(placement.Label(), "1P(tp2)+1D(tp1,pp2)");
  ClusterConfig cluster = *BuildCluster(DistServeSetup(), placement);
  ASSERT_EQ(cluster.decode.size(), 1u);
  EXPECT_EQ(cluster.decode[0].pp, 2);
  EXPECT_EQ(cluster.decode[0].micro_batches, 2);  // 0: one per stage
  EXPECT_EQ(cluster.decode[0].num_gpus, 2);
  EXPECT_EQ(cluster.decode[0].kv_capacity_tokens, 163008);
  EXPECT_TRUE(cluster.decode[0].on_demand_kv);  // a distserve profile: DistServe's allocation
  EXPECT_EQ(cluster.decode[0].waiting_block_fraction, 0.05);  // and its decode scheduler
  SimSetup reserving = DistServeSetup();
  reserving.kv_allocation = SimSetup::KvAllocation::kReserveFull;
  EXPECT_FALSE(BuildCluster(reserving, placement)->decode[0].on_demand_kv);
  EXPECT_EQ(BuildCluster(reserving, placement)->decode[0].waiting_block_fraction, 0.0);
  SimSetup open = DistServeSetup();
  open.decode_waiting_block_fraction = 0;
  EXPECT_EQ(BuildCluster(open, placement)->decode[0].waiting_block_fraction, 0.0);
  EXPECT_EQ(cluster.NumGpus(), 4);
  placement.decode_micro_batches = 1;
  EXPECT_EQ(placement.Label(), "1P(tp2)+1D(tp1,pp2x1mb)");
  EXPECT_EQ(BuildCluster(DistServeSetup(), placement)->decode[0].micro_batches, 1);
  placement.decode_micro_batches = 3;
  EXPECT_FALSE(BuildCluster(DistServeSetup(), placement).ok());
}

TEST(SearchTest, ColocatedVllmInstancesPadTheirPrefillStepsByDefault) {
  const Placement placement{.colocated_tp = 1, .num_colocated = 1};
  SimSetup setup = DistServeSetup();
  EXPECT_EQ(BuildCluster(setup, placement)->colocated[0].max_paddings, 256);  // a vllm profile: vLLM 0.2.x
  setup.colocated_max_paddings = -1;
  EXPECT_EQ(BuildCluster(setup, placement)->colocated[0].max_paddings, -1);
  setup.colocated_max_paddings = SimSetup::kAutoPaddings;
  setup.colocated_profiles = setup.profiles;  // a distserve profile: packed
  EXPECT_EQ(BuildCluster(setup, placement)->colocated[0].max_paddings, -1);
  setup = DistServeSetup();
  setup.colocated_step_token_budget = 512;  // tandem's chunked colocated worker never pads
  EXPECT_EQ(BuildCluster(setup, placement)->colocated[0].max_paddings, -1);
}

TEST(SearchTest, EnumeratesPipelinedDecodeWhenAsked) {
  PlacementSearchOptions options{.gpu_budget = 4, .one_prefill_one_decode = true};
  options.decode_pipeline_parallel = {1, 2};
  std::vector<Placement> placements = EnumeratePlacements(DistServeSetup(), options);
  // (tp_p, tp_d) in {1,2,4}^2 with tp_p + tp_d <= 4: 4 at pp 1; at pp 2, tp_p + 2 tp_d <= 4: (1,1) (2,1);
  // tp_d 2 x pp 2 would need a tp 4 profile's capacity (there is one) but 1 + 4 > 4 GPUs.
  ASSERT_EQ(placements.size(), 6u);
  int pipelined = 0;
  for (const Placement& p : placements) {
    EXPECT_LE(p.NumGpus(), 4);
    if (p.decode_pp == 2) {
      ++pipelined;
      EXPECT_EQ(p.decode_tp, 1);
    }
  }
  EXPECT_EQ(pipelined, 2);
}

TEST(SearchTest, EnumeratesUnderBudget) {
  PlacementSearchOptions options{.gpu_budget = 4, .one_prefill_one_decode = true};
  std::vector<Placement> placements = EnumeratePlacements(DistServeSetup(), options);
  // (tp_p, tp_d) in {1,2,4}^2 with tp_p + tp_d <= 4: (1,1) (1,2) (2,1) (2,2).
  EXPECT_EQ(placements.size(), 4u);
  options.one_prefill_one_decode = false;
  options.include_colocated = true;
  for (const Placement& p : EnumeratePlacements(DistServeSetup(), options)) EXPECT_LE(p.NumGpus(), 4);
}

TEST(SearchTest, GoodputIsMonotoneInCapacity) {
  SimSetup setup = DistServeSetup();
  std::vector<Workload> seeds = ShareGptSeeds(500, 1);
  GoodputOptions options{.max_per_gpu_rate = 8, .tolerance = 0.05};
  // TP2 prefill: with TP1, prompts over ~1590 tokens (about 9% of ShareGPT) miss a 200 ms TTFT even
  // on an idle cluster, so TP1 prefill barely reaches 90% at any rate.
  GoodputResult one = *FindGoodput(setup, {.prefill_tp = 2, .num_prefill = 1, .num_decode = 1}, seeds, options);
  GoodputResult two = *FindGoodput(setup, {.prefill_tp = 2, .num_prefill = 2, .num_decode = 2}, seeds, options);
  EXPECT_GT(one.goodput, 2.0);
  EXPECT_GT(two.goodput, one.goodput * 1.5);
}

// DistServe's README: OPT-13B, ShareGPT, 4 x A100-80G, TTFT 200 ms / TPOT 100 ms at 90%, one prefill
// and one decode instance: "Best per GPU rate: 1.56, Best config: tp_prefill=2, tp_decode=1".
TEST(SearchTest, DistServeOpt13bFourGpus) {
  SimSetup setup = DistServeSetup();
  std::vector<Workload> seeds = ShareGptSeeds(2000, 3);
  PlacementSearchOptions options{.gpu_budget = 4, .one_prefill_one_decode = true, .num_threads = 2};
  options.goodput = {.max_per_gpu_rate = 5, .tolerance = 0.01};
  std::vector<GoodputResult> results = *SearchPlacements(setup, seeds, options);
  std::printf("%s", FormatSearchTable(results).c_str());
  const GoodputResult& best = results.front();
  EXPECT_EQ(best.placement.prefill_tp, 2);
  EXPECT_EQ(best.placement.decode_tp, 1);
  EXPECT_NEAR(best.per_gpu_goodput, 1.56, 0.15);

  // The same with DistServe's simulator definitions (TPOT over n, separate P90 checks).
  setup.slo.tpot_definition = TpotDefinition::kDistServeSim;
  setup.slo.mode = AttainmentMode::kSeparatePercentile;
  std::vector<GoodputResult> distserve_defs = *SearchPlacements(setup, seeds, options);
  std::printf("DistServe-sim definitions:\n%s", FormatSearchTable(distserve_defs).c_str());
  EXPECT_EQ(distserve_defs.front().placement.prefill_tp, 2);
  EXPECT_EQ(distserve_defs.front().placement.decode_tp, 1);
}

// The rate bound is above the goodput the bisection finds, for disaggregated and colocated placements,
// under the default SLOs (where TP1 colocated cannot reach the target at all) and with decode batches
// capped (decode throughput binds harder).
TEST(RateBoundTest, BoundsGoodput) {
  const std::vector<Workload> seeds = ShareGptSeeds(400, 2);
  const GoodputOptions options{.max_per_gpu_rate = 8, .tolerance = 0.05};
  const std::vector<Placement> placements = {
      {.prefill_tp = 2, .num_prefill = 1, .num_decode = 1},
      {.prefill_tp = 1, .num_prefill = 1, .num_decode = 1},
      {.prefill_tp = 1, .num_prefill = 2, .num_decode = 1},
      {.prefill_tp = 2, .num_prefill = 1, .num_decode = 2},
      {.prefill_tp = 1, .num_prefill = 1, .decode_tp = 2, .num_decode = 1},
      {.colocated_tp = 1, .num_colocated = 1},
      {.colocated_tp = 1, .num_colocated = 2},
  };
  SimSetup strict = DistServeSetup();
  SimSetup capped = DistServeSetup();
  capped.decode_max_batch_size = 16;
  for (const SimSetup* setup : {&strict, &capped}) {
    for (const Placement& p : placements) {
      const RateBound bound = *RateUpperBound(*setup, p, seeds);
      const GoodputResult found = *FindGoodput(*setup, p, seeds, options);
      std::printf("%-20s ttft %4.0f batch %2lld: goodput %6.2f bound %6.2f (%-9s prefill %6.2f decode %6.2f "
                  "link %4.0f)\n",
                  p.Label().c_str(), setup->slo.ttft_ms, static_cast<long long>(setup->decode_max_batch_size),
                  found.goodput, bound.rate, bound.limit.c_str(), bound.prefill_rate, bound.decode_rate,
                  bound.transfer_rate);
      EXPECT_GE(bound.rate, found.goodput) << p.Label() << " ttft " << setup->slo.ttft_ms;
      EXPECT_GT(bound.decode_rate, 0) << p.Label();
      EXPECT_GT(bound.prefill_rate, 0) << p.Label();
    }
  }
}

// The bound is on sustained throughput: a short run with loose SLOs beats it (the header's example),
// and a pruned search still finds what the exhaustive one does, because it checks before it prunes.
TEST(RateBoundTest, ShortRunWithLooseSlosBeatsTheBoundButNotThePruning) {
  SimSetup setup = DistServeSetup();
  setup.slo.ttft_ms = 2000;
  setup.slo.tpot_ms = 200;
  const std::vector<Workload> seeds = ShareGptSeeds(400, 2);
  const Placement p{.prefill_tp = 2, .num_prefill = 1, .num_decode = 2};
  const RateBound bound = *RateUpperBound(setup, p, seeds);
  const GoodputResult found = *FindGoodput(setup, p, seeds, {.max_per_gpu_rate = 8, .tolerance = 0.05});
  EXPECT_GT(found.goodput, bound.rate * 1.1);

  PlacementSearchOptions options;
  options.gpu_budget = 4;
  options.include_colocated = true;
  options.num_threads = 2;
  options.goodput = {.max_per_gpu_rate = 8, .tolerance = 0.05};
  options.prune = false;
  const std::vector<GoodputResult> all = *SearchPlacements(setup, seeds, options);
  options.prune = true;
  options.prune_slack = 0.0;  // prune as eagerly as possible: every candidate is checked
  SearchStats stats;
  const std::vector<GoodputResult> pruned = *SearchPlacements(setup, seeds, options, &stats);
  std::printf("exhaustive:\n%spruned, slack 0:\n%s", FormatSearchTable(all).c_str(),
              FormatSearchTable(pruned).c_str());
  EXPECT_EQ(pruned.front().placement.Label(), all.front().placement.Label());
  EXPECT_EQ(pruned.front().per_gpu_goodput, all.front().per_gpu_goodput);
}

// A TTFT SLO that a quarter of ShareGPT's prompts miss even on an idle TP1 prefill instance: the bound
// says the target is out of reach, and the bisection agrees.
TEST(RateBoundTest, UnreachableSloBoundsToZero) {
  SimSetup setup = DistServeSetup();
  setup.slo.ttft_ms = 100;
  const std::vector<Workload> seeds = ShareGptSeeds(300, 1);
  const Placement p{.prefill_tp = 1, .num_prefill = 2, .num_decode = 2};
  const RateBound bound = *RateUpperBound(setup, p, seeds);
  EXPECT_FALSE(bound.slo_reachable);
  EXPECT_LT(bound.feasible_share, 0.9);
  EXPECT_EQ(bound.rate, 0.0);
  EXPECT_EQ(bound.limit, "slo");
  EXPECT_EQ(FindGoodput(setup, p, seeds, {.tolerance = 0.1})->goodput, 0.0);
  // With TP4 prefill it is within reach.
  EXPECT_TRUE(RateUpperBound(setup, {.prefill_tp = 4, .num_prefill = 1, .num_decode = 1}, seeds)->slo_reachable);
}

// A policy that may reject (goodput) only has to serve the cheapest target share of the requests, so
// its bound is higher than least_loaded's.
TEST(RateBoundTest, RejectingPolicyChargesOnlyTheServedShare) {
  SimSetup setup = DistServeSetup();
  const std::vector<Workload> seeds = ShareGptSeeds(300, 1);
  const Placement p{.prefill_tp = 2, .num_prefill = 1, .num_decode = 1};
  const double all = RateUpperBound(setup, p, seeds)->rate;
  setup.policy_name = "goodput";
  EXPECT_GT(RateUpperBound(setup, p, seeds)->rate, all);
}

// Skipping the probes above a hint leaves the bisection's answer unchanged, with fewer simulations; a
// wrong hint (below the goodput) is detected and costs a rerun, not a wrong answer.
TEST(SearchTest, GoodputHintKeepsTheAnswer) {
  const SimSetup setup = DistServeSetup();
  const std::vector<Workload> seeds = ShareGptSeeds(300, 1);
  const Placement p{.prefill_tp = 2, .num_prefill = 1, .num_decode = 1};
  const GoodputOptions plain{.max_per_gpu_rate = 8, .tolerance = 0.02};
  const GoodputResult full = *FindGoodput(setup, p, seeds, plain);
  ASSERT_GT(full.per_gpu_goodput, 0.5);
  const double bound_per_gpu = RateUpperBound(setup, p, seeds)->rate / p.NumGpus();
  const double g = full.per_gpu_goodput;
  for (double hint : {bound_per_gpu * 1.25, g + 0.3, g + 0.01, g - 0.01, g / 3, 0.01, 7.9, 9.0}) {
    GoodputOptions hinted = plain;
    hinted.assume_fail_above = hint;
    const GoodputResult r = *FindGoodput(setup, p, seeds, hinted);
    EXPECT_EQ(r.per_gpu_goodput, full.per_gpu_goodput) << "hint " << hint;
    EXPECT_EQ(r.limiting, full.limiting) << "hint " << hint;
    EXPECT_EQ(r.at_goodput.attainment, full.at_goodput.attainment) << "hint " << hint;
    if (hint > g && hint < 4) {
      EXPECT_LT(r.num_simulations, full.num_simulations) << "hint " << hint;
    }
  }
}

PlacementSearchOptions SmallSearch(bool prune, int threads) {
  PlacementSearchOptions options;
  options.gpu_budget = 4;
  options.include_colocated = true;
  options.num_threads = threads;
  options.goodput = {.max_per_gpu_rate = 5, .tolerance = 0.05};
  options.prune = prune;
  return options;
}

// Pruning finds the same best placement and goodput as the exhaustive search, with fewer simulations,
// and every placement it did bisect has the exhaustive search's result. With a 200 ms TTFT SLO the
// pruned placements are those that cannot reach it (bound 0, no simulation); with 400 ms, those a
// check at the scaled bound rules out (one simulation each).
TEST(SearchTest, PruningKeepsTheBestWithFewerSimulations) {
  const std::vector<Workload> seeds = ShareGptSeeds(300, 1);
  for (double ttft_ms : {200.0, 400.0}) {
    SimSetup setup = DistServeSetup();
    setup.slo.ttft_ms = ttft_ms;
    SearchStats all_stats, pruned_stats;
    const std::vector<GoodputResult> all = *SearchPlacements(setup, seeds, SmallSearch(false, 2), &all_stats);
    const std::vector<GoodputResult> pruned = *SearchPlacements(setup, seeds, SmallSearch(true, 2), &pruned_stats);
    std::printf("TTFT %.0f ms, exhaustive (%d simulations):\n%s", ttft_ms, all_stats.num_simulations,
                FormatSearchTable(all).c_str());
    std::printf("pruned (%d simulations):\n%s", pruned_stats.num_simulations, FormatSearchTable(pruned).c_str());
    ASSERT_EQ(all.size(), pruned.size());
    EXPECT_EQ(all_stats.num_pruned, 0);
    EXPECT_GT(pruned_stats.num_pruned, 0);
    EXPECT_LT(pruned_stats.num_simulations, all_stats.num_simulations);
    EXPECT_EQ(pruned.front().placement.Label(), all.front().placement.Label());
    EXPECT_EQ(pruned.front().per_gpu_goodput, all.front().per_gpu_goodput);
    bool seen_pruned = false;
    for (const GoodputResult& r : pruned) {
      const GoodputResult* a = nullptr;
      for (const GoodputResult& candidate : all) {
        if (candidate.placement.Label() == r.placement.Label()) a = &candidate;
      }
      ASSERT_NE(a, nullptr) << r.placement.Label();
      if (r.pruned) {
        seen_pruned = true;
        // Below the best, as the exhaustive search confirms, and below its scaled bound.
        EXPECT_LT(a->per_gpu_goodput, all.front().per_gpu_goodput) << r.placement.Label();
        if (ttft_ms == 200.0) {
          EXPECT_EQ(r.bound.limit, "slo") << r.placement.Label();
          EXPECT_EQ(a->per_gpu_goodput, 0.0) << r.placement.Label();
          EXPECT_EQ(r.num_simulations, 0) << r.placement.Label();
        } else {
          EXPECT_LT(a->per_gpu_goodput, r.bound.rate / r.placement.NumGpus() * 1.25) << r.placement.Label();
          EXPECT_EQ(r.num_simulations, 1) << r.placement.Label();
        }
        continue;
      }
      EXPECT_FALSE(seen_pruned) << "pruned placements come last";
      EXPECT_EQ(r.per_gpu_goodput, a->per_gpu_goodput) << r.placement.Label();
      EXPECT_EQ(r.limiting, a->limiting) << r.placement.Label();
      EXPECT_EQ(r.at_goodput.attainment, a->at_goodput.attainment) << r.placement.Label();
    }
  }
}

// Which placements are pruned, and every number in the table, do not depend on the thread count.
TEST(SearchTest, PrunedSearchIsThreadIndependent) {
  SimSetup setup = DistServeSetup();
  setup.slo.ttft_ms = 400;
  const std::vector<Workload> seeds = ShareGptSeeds(300, 1);
  const std::string one = FormatSearchTable(*SearchPlacements(setup, seeds, SmallSearch(true, 1)));
  for (int threads : {2, 3, 8}) {
    SearchStats stats;  // how much ran ahead varies with timing; the table may not
    EXPECT_EQ(FormatSearchTable(*SearchPlacements(setup, seeds, SmallSearch(true, threads), &stats)), one) << threads;
    std::printf("%d threads: %d simulations, %d of them dropped\n", threads, stats.num_simulations,
                stats.num_discarded_simulations);
  }
}

}  // namespace
}  // namespace tandem::sim
