#include "sim/simulator.h"

#include <memory>

#include "gtest/gtest.h"
#include "router/policy/least_loaded_policy.h"
#include "router/policy/round_robin_policy.h"
#include "sim/metrics.h"
#include "sim/rng.h"

namespace tandem::sim {
namespace {

policy::LatencyModel ConstantModel(double prefill_ms, double decode_ms) {
  policy::LatencyModelParams p;
  p.prefill = {prefill_ms, 0, 0};
  p.decode_small = {decode_ms, 0, 0};
  p.decode_large = p.decode_small;
  return *policy::LatencyModel::Create(p);
}

policy::LatencyModel Opt13b(int tp) {
  policy::LatencyModelParams p;
  p.tp = tp;
  if (tp == 1) {
    p.prefill = {18.1025, 0.101912, 7.1223e-6};
    p.decode_small = {19.9347, 6.26936e-4, 0.038507};
    p.decode_large = {7.16619, 5.798e-4, 0.158311};
  } else {
    p.prefill = {14.7430, 0.0685772, 2.44957e-6};
    p.decode_small = {13.2948, 3.41092e-4, 0.0629639};
    p.decode_large = {10.6387, 3.11834e-4, 0.0856291};
  }
  p.link_bandwidth_bytes_per_s = 100e9;
  return *policy::LatencyModel::Create(p);
}

// Poisson arrivals at `rate`, every request prompt 100 / output `output_len`.
Workload PoissonWorkload(int n, double rate, int64_t output_len, uint64_t seed) {
  Rng rng(seed);
  Workload w;
  double t = 0;
  for (int i = 0; i < n; ++i) {
    w.requests.push_back({.id = i, .arrival_s = t, .prompt_len = 100, .output_len = output_len});
    t += rng.Exponential() / rate;
  }
  w.native_rate = rate;
  return w;
}

ClusterConfig OnePrefillOneDecode(policy::LatencyModel prefill, policy::LatencyModel decode) {
  ClusterConfig c;
  c.prefill.push_back({.latency = prefill, .max_batch_size = 1});
  c.decode.push_back({.latency = decode});
  c.kv_bytes_per_token = 819200;
  return c;
}

TEST(SimulatorTest, MD1MeanTtftMatchesClosedForm) {
  // M/D/1, D = 100 ms, R = 5/s: mean TTFT = D + R D^2 / (2 (1 - R D)) = 150 ms.
  policy::RoundRobinPolicy policy;
  Simulator sim(OnePrefillOneDecode(ConstantModel(100, 1), ConstantModel(100, 1)), &policy);
  std::vector<RequestRecord> records = *sim.Run(PoissonWorkload(200000, 5.0, 1, 11));
  double sum = 0;
  for (const RequestRecord& r : records) {
    ASSERT_TRUE(r.finished);
    sum += TtftMs(r);
  }
  EXPECT_NEAR(sum / records.size(), 150.0, 150.0 * 0.02);
}

TEST(SimulatorTest, MD1TwoWayIntraOpSpeedup) {
  // 2-way intra-op with speedup K = 1.6: D/K + R D^2 / (2K (K - R D)) = 76.7 ms (SLO_SIM.md 1.4).
  policy::RoundRobinPolicy policy;
  Simulator sim(OnePrefillOneDecode(ConstantModel(100 / 1.6, 1), ConstantModel(1, 1)), &policy);
  std::vector<RequestRecord> records = *sim.Run(PoissonWorkload(200000, 5.0, 1, 12));
  double sum = 0;
  for (const RequestRecord& r : records) sum += TtftMs(r);
  EXPECT_NEAR(sum / records.size(), 76.7, 76.7 * 0.02);
}

TEST(SimulatorTest, SameSeedSameBytes) {
  std::string first;
  for (int run = 0; run < 2; ++run) {
    ClusterConfig c;
    for (int i = 0; i < 2; ++i) c.prefill.push_back({.latency = Opt13b(2), .max_batch_tokens = 4096});
    c.decode.push_back({.latency = Opt13b(1), .kv_capacity_tokens = 66144});
    c.kv_bytes_per_token = 819200;
    policy::LeastLoadedPolicy policy;
    Simulator sim(c, &policy);
    std::vector<RequestRecord> records = *sim.Run(PoissonWorkload(3000, 8.0, 50, 5));
    const std::string bytes = RecordsToJsonl(records, SloSpec{}) + SummaryToJson(Summarize(records, {}), {}, 8);
    if (run == 0) {
      first = bytes;
    } else {
      EXPECT_EQ(bytes, first);
    }
  }
  EXPECT_GT(first.size(), 3000u * 100);
}

TEST(SimulatorTest, CallsThePolicyObjectRoundRobinAlternates) {
  ClusterConfig c;
  for (int i = 0; i < 2; ++i) c.prefill.push_back({.latency = ConstantModel(10, 5)});
  for (int i = 0; i < 3; ++i) c.decode.push_back({.latency = ConstantModel(10, 5)});
  policy::RoundRobinPolicy policy;
  Simulator sim(c, &policy);
  std::vector<RequestRecord> records = *sim.Run(PoissonWorkload(12, 1.0, 4, 1));
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].prefill_instance, static_cast<int>(i % 2));
    EXPECT_EQ(records[i].decode_instance, static_cast<int>(i % 3));
    EXPECT_TRUE(records[i].finished);
  }
}

// Wraps the router's policy and records every (snapshot, decision) the simulator produced.
class RecordingPolicy : public policy::PlacementPolicy {
 public:
  std::string_view name() const override { return "recording"; }
  policy::PlacementDecision Place(const policy::PlacementRequest& request,
                                  const policy::ClusterSnapshot& snapshot) override {
    policy::PlacementDecision d = inner_.Place(request, snapshot);
    calls.push_back({request, snapshot, d});
    return d;
  }
  struct Call {
    policy::PlacementRequest request;
    policy::ClusterSnapshot snapshot;
    policy::PlacementDecision decision;
  };
  std::vector<Call> calls;

 private:
  policy::LeastLoadedPolicy inner_;
};

TEST(SimulatorTest, RouterPolicyMakesTheSameDecisionsOnTheSameSnapshots) {
  ClusterConfig c;
  for (int i = 0; i < 3; ++i) c.prefill.push_back({.latency = Opt13b(1), .max_batch_tokens = 2048});
  for (int i = 0; i < 2; ++i) c.decode.push_back({.latency = Opt13b(1), .kv_capacity_tokens = 20000});
  c.kv_bytes_per_token = 819200;
  RecordingPolicy recording;
  Simulator sim(c, &recording);
  Workload w = PoissonWorkload(500, 12.0, 40, 3);
  for (size_t i = 0; i < w.requests.size(); ++i) w.requests[i].prompt_len = 50 + (i * 37) % 900;
  std::vector<RequestRecord> records = *sim.Run(w);
  ASSERT_EQ(recording.calls.size(), records.size());

  // The router builds its policy by name and feeds it snapshots from load reports; replaying the
  // simulator's snapshots through that object must give the same pairs.
  std::unique_ptr<policy::PlacementPolicy> router_policy = *policy::MakePlacementPolicy("least_loaded");
  int distinct_prefill[3] = {0, 0, 0};
  for (size_t i = 0; i < recording.calls.size(); ++i) {
    const auto& call = recording.calls[i];
    const policy::PlacementDecision d = router_policy->Place(call.request, call.snapshot);
    EXPECT_EQ(d.accepted, call.decision.accepted);
    EXPECT_EQ(d.prefill_index, call.decision.prefill_index);
    EXPECT_EQ(d.decode_index, call.decision.decode_index);
    EXPECT_EQ(records[i].prefill_instance, d.prefill_index);
    EXPECT_EQ(records[i].decode_instance, d.decode_index);
    ++distinct_prefill[d.prefill_index];
  }
  // The snapshots carried real load: every prefill instance was chosen.
  for (int count : distinct_prefill) EXPECT_GT(count, 0);
}

TEST(SimulatorTest, OutputOfOneTokenFinishesAtPrefill) {
  policy::RoundRobinPolicy policy;
  Simulator sim(OnePrefillOneDecode(ConstantModel(10, 5), ConstantModel(10, 5)), &policy);
  std::vector<RequestRecord> records = *sim.Run(PoissonWorkload(5, 0.1, 1, 2));
  for (const RequestRecord& r : records) {
    EXPECT_TRUE(r.finished);
    EXPECT_EQ(r.finish_s, r.first_token_s);
    EXPECT_EQ(TpotMs(r, TpotDefinition::kClient), 0.0);
  }
}

TEST(SimulatorTest, StagesOfALoneRequest) {
  // One request: prefill 10 ms, KV 100 tokens * 819200 B at 100 GB/s = 0.8192 ms, 4 decode steps of
  // 5 ms (output 5 tokens, the first from prefill).
  policy::RoundRobinPolicy policy;
  ClusterConfig c = OnePrefillOneDecode(Opt13b(1), ConstantModel(10, 5));
  c.prefill[0].latency = [] {
    policy::LatencyModelParams p;
    p.prefill = {10, 0, 0};
    p.decode_small = p.decode_large = {5, 0, 0};
    p.link_bandwidth_bytes_per_s = 100e9;
    return *policy::LatencyModel::Create(p);
  }();
  Simulator sim2(c, &policy);
  Workload w;
  w.requests.push_back({.id = 0, .arrival_s = 1.0, .prompt_len = 100, .output_len = 5});
  RequestRecord r = (*sim2.Run(w))[0];
  EXPECT_DOUBLE_EQ(r.prefill_start_s, 1.0);
  EXPECT_NEAR(r.first_token_s, 1.010, 1e-9);
  EXPECT_NEAR(r.kv_end_s - r.kv_start_s, 0.0008192, 1e-9);
  EXPECT_NEAR(r.finish_s, 1.010 + 0.0008192 + 0.020, 1e-9);
  EXPECT_NEAR(TpotMs(r, TpotDefinition::kClient), (0.0008192 + 0.020) * 1e3 / 4, 1e-6);
}

TEST(SimulatorTest, DecodeKvLimitDelaysAdmission) {
  // Capacity for one request at a time (prompt 100 + output 10 = 110 tokens): the second waits for the
  // first to finish before its KV is pulled.
  ClusterConfig c = OnePrefillOneDecode(ConstantModel(10, 5), ConstantModel(10, 5));
  c.decode[0].kv_capacity_tokens = 150;
  policy::RoundRobinPolicy policy;
  Simulator sim(c, &policy);
  Workload w;
  w.requests.push_back({.id = 0, .arrival_s = 0, .prompt_len = 100, .output_len = 10});
  w.requests.push_back({.id = 1, .arrival_s = 0, .prompt_len = 100, .output_len = 10});
  std::vector<RequestRecord> r = *sim.Run(w);
  EXPECT_GE(r[1].kv_start_s, r[0].finish_s);
}

TEST(SimulatorTest, PrefillBackpressureStopsAdmittingWhenBufferFull) {
  // Decode holds one request at a time; the prefill buffer holds one prompt: the third request cannot
  // start prefill until the second's KV leaves.
  ClusterConfig c = OnePrefillOneDecode(ConstantModel(10, 5), ConstantModel(10, 5));
  c.decode[0].kv_capacity_tokens = 150;
  c.prefill[0].kv_buffer_tokens = 100;
  policy::RoundRobinPolicy policy;
  Simulator sim(c, &policy);
  Workload w;
  for (int i = 0; i < 3; ++i) w.requests.push_back({.id = i, .arrival_s = 0, .prompt_len = 100, .output_len = 10});
  std::vector<RequestRecord> r = *sim.Run(w);
  EXPECT_GE(r[2].prefill_start_s, r[1].kv_end_s);
  EXPECT_GE(r[1].kv_start_s, r[0].finish_s);
  for (const RequestRecord& rec : r) EXPECT_TRUE(rec.finished);
}

TEST(SimulatorTest, ColocatedPrefillHasPriority) {
  ClusterConfig c;
  c.colocated.push_back({.latency = ConstantModel(50, 10)});
  policy::RoundRobinPolicy policy;
  Simulator sim(c, &policy);
  Workload w;
  w.requests.push_back({.id = 0, .arrival_s = 0, .prompt_len = 100, .output_len = 3});
  w.requests.push_back({.id = 1, .arrival_s = 0.055, .prompt_len = 100, .output_len = 3});
  std::vector<RequestRecord> r = *sim.Run(w);
  // Request 0: prefill [0, 50], decode step [50, 60]; request 1 arrives at 55 and prefills [60, 110]
  // before request 0's second decode step, which runs batched with request 1 [110, 120].
  EXPECT_NEAR(r[0].first_token_s, 0.050, 1e-9);
  EXPECT_NEAR(r[1].prefill_start_s, 0.060, 1e-9);
  EXPECT_NEAR(r[1].first_token_s, 0.110, 1e-9);
  EXPECT_NEAR(r[0].finish_s, 0.120, 1e-9);
  EXPECT_NEAR(r[1].finish_s, 0.130, 1e-9);
}

// A decode stage profile of a pp = 2 instance: 10 ms of coefficient time per step, so 5 ms per stage,
// plus `overhead_ms` once per pass. No link cost.
ClusterConfig PipelinedDecode(int micro_batches, double overhead_ms) {
  ClusterConfig c = OnePrefillOneDecode(ConstantModel(10, 1), ConstantModel(1, 1));
  policy::LatencyModelParams p;
  p.pp = 2;
  p.prefill = {10, 0, 0};
  p.decode_small = p.decode_large = {10, 0, 0};
  p.decode_overhead_ms = overhead_ms;
  c.decode[0].latency = *policy::LatencyModel::Create(p);
  c.decode[0].pp = 2;
  c.decode[0].micro_batches = micro_batches;
  return c;
}

Workload TwoAtOnce(int64_t output_len) {
  Workload w;
  for (int i = 0; i < 2; ++i) w.requests.push_back({.id = i, .arrival_s = 0, .prompt_len = 100, .output_len = output_len});
  return w;
}

TEST(SimulatorTest, PipelinedDecodeTwoMicroBatchesOverlapAfterAKvPullDrainsThePipeline) {
  // Prefill one at a time: request 0's first token at 10 ms, request 1's at 20 ms. Request 0 runs alone
  // in micro-batch 0: stages [10, 15] [15, 20], then [20, 25] [25, 30]. Request 1's KV arrives at 20
  // with that pass under way: the pipeline drains first (DistServe awaits the migration behind it), so
  // at 30 micro-batch 1 {1} takes [30, 35] [35, 40] and micro-batch 0 {0} follows it through the stages,
  // [35, 40] [40, 45]: request 0 finishes at 45 (its fourth token), request 1's passes end at 40, 50, 60.
  policy::RoundRobinPolicy policy;
  Simulator sim(PipelinedDecode(2, 0), &policy);
  std::vector<RequestRecord> r = *sim.Run(TwoAtOnce(4));
  EXPECT_NEAR(r[0].first_token_s, 0.010, 1e-9);
  EXPECT_NEAR(r[1].first_token_s, 0.020, 1e-9);
  EXPECT_NEAR(r[1].decode_start_s, 0.030, 1e-9);
  EXPECT_NEAR(r[0].finish_s, 0.045, 1e-9);
  EXPECT_NEAR(r[1].finish_s, 0.060, 1e-9);
}

// Prefill 10 ms, decode passes of two 5 ms stages, KV copies of 4 ms, on-demand KV with DistServe's
// waiting fraction; request 0 arrives at 0 (first token at 10 ms), request 1 at 12 (first token at 22).
ClusterConfig PipelinedWithKvCopies(double waiting_block_fraction, bool step_loop) {
  ClusterConfig c = PipelinedDecode(2, 0);
  policy::LatencyModelParams p = c.prefill[0].latency.params();
  p.link_latency_ms = 4;
  c.prefill[0].latency = *policy::LatencyModel::Create(p);
  c.decode[0].on_demand_kv = true;
  c.decode[0].waiting_block_fraction = waiting_block_fraction;
  c.decode[0].step_loop = step_loop;
  return c;
}

Workload AtZeroAndTwelveMs() {
  Workload w;
  w.requests.push_back({.id = 0, .arrival_s = 0, .prompt_len = 100, .output_len = 4});
  w.requests.push_back({.id = 1, .arrival_s = 0.012, .prompt_len = 100, .output_len = 4});
  return w;
}

TEST(SimulatorTest, DistServeLoopCopiesKvBehindThePipelineAndLaunchesNothingMeanwhile) {
  const auto run = [](double waiting_block_fraction) {
    policy::RoundRobinPolicy policy;
    return *Simulator(PipelinedWithKvCopies(waiting_block_fraction, false), &policy).Run(AtZeroAndTwelveMs());
  };
  // Request 0's copy: [10, 14]; its passes [14, 19] [19, 24], then from 24 on. DistServe's loop: request
  // 1's migration waits for the pass under way (copy [24, 28]) and nothing launches until it is done:
  // then micro-batch 1 {1} [28, 33] [33, 38] and micro-batch 0 {0} [33, 38] [38, 43], [43, 48] [48, 53]
  // (request 0's fourth token); request 1's passes end at 38, 48, 58.
  std::vector<RequestRecord> r = run(0.05);
  EXPECT_NEAR(r[1].kv_start_s, 0.024, 1e-9);
  EXPECT_NEAR(r[1].decode_start_s, 0.028, 1e-9);
  EXPECT_NEAR(r[0].finish_s, 0.053, 1e-9);
  EXPECT_NEAR(r[1].finish_s, 0.058, 1e-9);
  // Without it (fraction 0): the copy runs at once [22, 26]; micro-batch 0 relaunched at 24 [24, 29]
  // [29, 34], and the copy's end drains the pipeline: both micro-batches start again from 34, request 0
  // finishing at 49 and request 1's passes ending at 44, 54, 64.
  r = run(0.0);
  EXPECT_NEAR(r[1].kv_start_s, 0.022, 1e-9);
  EXPECT_NEAR(r[1].decode_start_s, 0.034, 1e-9);
  EXPECT_NEAR(r[0].finish_s, 0.049, 1e-9);
  EXPECT_NEAR(r[1].finish_s, 0.064, 1e-9);
}

TEST(SimulatorTest, DistServeStepLoopPutsARequestPulledAfterAnAwaitInTheAwaitedMicroBatch) {
  // The scenario above, with DistServe's step loop replayed step by step. The loop was idle from 0, so
  // it takes request 0 (first token at 10 ms) at its next 3 ms tick, 12: copy [12, 16]; micro-batch 0
  // {0} [16, 21] [21, 26]; the next step finds micro-batch 1 empty and sleeps, then awaits micro-batch 0.
  // After that await (26) it pulls request 1 (first token at 22): copy [26, 30]; and the next step is
  // micro-batch 0's, so request 1 joins it there instead of starting micro-batch 1: {0, 1} passes
  // end at 40 and 50 (request 0's fourth token), then {1} alone at 60.
  policy::RoundRobinPolicy policy;
  std::vector<StepTrace> steps;
  SimOptions options;
  options.on_step = [&](const StepTrace& s) {
    if (s.kind == StepTrace::kDecode) steps.push_back(s);
  };
  std::vector<RequestRecord> r = *Simulator(PipelinedWithKvCopies(0.05, true), &policy, options).Run(AtZeroAndTwelveMs());
  EXPECT_NEAR(r[0].kv_start_s, 0.012, 1e-9);
  EXPECT_NEAR(r[0].decode_start_s, 0.016, 1e-9);
  EXPECT_NEAR(r[1].kv_start_s, 0.026, 1e-9);
  EXPECT_NEAR(r[1].decode_start_s, 0.030, 1e-9);
  EXPECT_NEAR(r[0].finish_s, 0.050, 1e-9);
  EXPECT_NEAR(r[1].finish_s, 0.060, 1e-9);
  std::vector<int64_t> batches;
  for (const StepTrace& s : steps) batches.push_back(s.sequences);
  EXPECT_EQ(batches, (std::vector<int64_t>{1, 2, 2, 1}));
}

TEST(SimulatorTest, DistServeStepLoopFinishesEveryRequestThroughSwapping) {
  // Two bursts of Poisson arrivals at 20 req/s, 10 s apart, into a decode instance holding 250 blocks
  // (about 25 requests of 150 tokens): the loop swaps out and back in, parks between the bursts and
  // wakes again, with pp 1 and 2, and every request finishes.
  Workload w = PoissonWorkload(300, 20, 50, 7);
  for (size_t i = 150; i < w.requests.size(); ++i) w.requests[i].arrival_s += 10;
  for (int pp : {1, 2}) {
    policy::LatencyModelParams p = Opt13b(1).params();
    p.pp = pp;
    ClusterConfig c = OnePrefillOneDecode(Opt13b(2), *policy::LatencyModel::Create(p));
    c.decode[0].pp = pp;
    c.decode[0].micro_batches = pp;
    c.decode[0].kv_capacity_tokens = 250 * 16;
    c.decode[0].on_demand_kv = true;
    c.decode[0].waiting_block_fraction = 0.05;
    c.decode[0].step_loop = true;
    policy::RoundRobinPolicy policy;
    std::vector<RequestRecord> r = *Simulator(c, &policy).Run(w);
    int finished = 0;
    for (const RequestRecord& rec : r) {
      finished += rec.finished;
      EXPECT_GE(rec.decode_start_s, rec.kv_end_s) << "pp " << pp << " request " << rec.id;
    }
    EXPECT_EQ(finished, 300) << "pp " << pp;
  }
}

TEST(SimulatorTest, PipelinedDecodeOneMicroBatchWaitsForThePassToEnd) {
  // One micro-batch: request 1 (ready at 20 ms) cannot join the pass [20, 30] already under way; it
  // joins at 30, when request 0 finishes, and takes passes [30, 40] and [40, 50].
  policy::RoundRobinPolicy policy;
  Simulator sim(PipelinedDecode(1, 0), &policy);
  std::vector<RequestRecord> r = *sim.Run(TwoAtOnce(3));
  EXPECT_NEAR(r[0].finish_s, 0.030, 1e-9);
  EXPECT_NEAR(r[1].decode_start_s, 0.030, 1e-9);
  EXPECT_NEAR(r[1].finish_s, 0.050, 1e-9);
}

TEST(SimulatorTest, PipelinedDecodePaysTheStepOverheadOncePerPass) {
  // Stage 0: 5 + 2 ms, stage 1: 5 ms; two passes after the first token at 10 ms.
  policy::RoundRobinPolicy policy;
  Simulator sim(PipelinedDecode(1, 2), &policy);
  Workload w;
  w.requests.push_back({.id = 0, .arrival_s = 0, .prompt_len = 100, .output_len = 3});
  EXPECT_NEAR((*sim.Run(w))[0].finish_s, 0.010 + 2 * 0.012, 1e-9);
}

TEST(SimulatorTest, OnDemandKvAdmitsOnThePromptAndSwapsOutTheNewestWhenGrowthDoesNotFit) {
  // Blocks of 16 tokens, 14 blocks. Prompts of 96 tokens (6 blocks) + the first decode token: 7 blocks
  // each, so both are admitted at once (reserving prompt + output, 2 x 9 blocks, would not fit). Decode
  // passes of 5 ms start at 20 ms (request 1's first token; request 0 is pulled at 10 and runs [10, 15]).
  // At context 113 request 0 needs an 8th block: the pass that would write it swaps request 1 out,
  // and request 1 comes back when request 0 finishes and frees its blocks.
  ClusterConfig c = OnePrefillOneDecode(ConstantModel(10, 5), ConstantModel(10, 5));
  c.decode[0].kv_capacity_tokens = 14 * 16;
  c.decode[0].on_demand_kv = true;
  policy::RoundRobinPolicy policy;
  Simulator sim(c, &policy);
  Workload w;
  for (int i = 0; i < 2; ++i) w.requests.push_back({.id = i, .arrival_s = 0, .prompt_len = 96, .output_len = 40});
  std::vector<RequestRecord> r = *sim.Run(w);
  ASSERT_TRUE(r[0].finished && r[1].finished);
  // Both pulled right after their prefill (no wait for a reservation).
  EXPECT_NEAR(r[1].kv_start_s, r[1].first_token_s, 1e-9);
  // Request 1 waited out request 0's last passes: it finishes well after request 0 and later than the
  // 39 passes of 5 ms it needs from its first token.
  EXPECT_GT(r[1].finish_s, r[0].finish_s + 0.020);
  EXPECT_GT(r[1].finish_s - r[1].first_token_s, 39 * 0.005 + 0.020);
  // The same cluster reserving prompt + output admits request 1 only once request 0 is done.
  c.decode[0].on_demand_kv = false;
  Simulator reserving(c, &policy);
  std::vector<RequestRecord> full = *reserving.Run(w);
  EXPECT_GE(full[1].kv_start_s, full[0].finish_s);
}

TEST(SimulatorTest, OnDemandKvColocatedPreemptsByRecomputation) {
  // vLLM v0 with on-demand KV: 14 blocks of 16 tokens, two prompts of 96 tokens (7 blocks each with
  // the first decode token). When both need an 8th block, request 1 (the newest) is preempted, waits
  // for request 0 to finish, and is prefilled again with what it had generated; that prefill samples
  // its next token, and its first token stays the first prefill's.
  ClusterConfig c;
  c.colocated.push_back({.latency = ConstantModel(10, 5), .kv_capacity_tokens = 14 * 16, .on_demand_kv = true});
  std::vector<StepTrace> prefills;
  SimOptions options;
  options.on_step = [&](const StepTrace& step) {
    if (step.kind == StepTrace::kColocatedPrefill) prefills.push_back(step);
  };
  policy::RoundRobinPolicy policy;
  Simulator sim(c, &policy, options);
  Workload w;
  for (int i = 0; i < 2; ++i) w.requests.push_back({.id = i, .arrival_s = 0, .prompt_len = 96, .output_len = 40});
  std::vector<RequestRecord> r = *sim.Run(w);
  ASSERT_TRUE(r[0].finished && r[1].finished);
  // Prefill [0, 10] for request 0 and [10, 20] for request 1 (prefill first), 7 blocks each. After 15
  // decode steps of 5 ms (t = 95) both hold 16 tokens and need an 8th block: request 1 is preempted.
  // Request 0 finishes its 24 remaining steps at 215; request 1 (8 blocks for 96 + 16 + 1 tokens, with
  // at most 6 free until then) is prefilled again [215, 225], which gives its 17th token, and takes 23
  // more steps.
  ASSERT_EQ(prefills.size(), 3u);
  EXPECT_EQ(prefills[0].tokens, 96);
  EXPECT_EQ(prefills[1].tokens, 96);
  EXPECT_EQ(prefills[2].sequences, 1);
  EXPECT_EQ(prefills[2].tokens, 96 + 16);
  EXPECT_NEAR(r[1].first_token_s, 0.020, 1e-9);
  EXPECT_NEAR(r[0].finish_s, 0.215, 1e-9);
  EXPECT_NEAR(r[1].finish_s, 0.225 + 23 * 0.005, 1e-9);
}

TEST(SimulatorTest, PaddedColocatedPrefillBatchesOnlyCloseLengthsAndPaysForThePadding) {
  // Prefill 0.1 ms per token; three one-token requests of 1000, 900 and 600 prompt tokens queue behind
  // a 100-token prefill [0, 10 ms].
  policy::LatencyModelParams p;
  p.prefill = {0, 0.1, 0};
  p.decode_small = p.decode_large = {1, 0, 0};
  const auto run = [&](int64_t max_paddings, std::vector<StepTrace>* steps) {
    ClusterConfig c;
    c.colocated.push_back({.latency = *policy::LatencyModel::Create(p), .max_paddings = max_paddings});
    SimOptions options;
    options.on_step = [steps](const StepTrace& step) { steps->push_back(step); };
    policy::RoundRobinPolicy policy;
    Simulator sim(c, &policy, options);
    Workload w;
    w.requests.push_back({.id = 0, .arrival_s = 0, .prompt_len = 100, .output_len = 1});  // busy [0, 10 ms]
    int id = 1;
    for (int64_t len : {1000, 900, 600}) w.requests.push_back({.id = id++, .arrival_s = 0.001, .prompt_len = len, .output_len = 1});
    return *sim.Run(w);
  };
  // vLLM 0.2.x (padding <= 256): {1000, 900} padded to 2 x 1000 tokens, [10, 210 ms]; 600 would pad the
  // batch by 3 x 1000 - 2500 = 500, so it runs alone, [210, 270].
  std::vector<StepTrace> padded;
  std::vector<RequestRecord> r = run(256, &padded);
  ASSERT_EQ(padded.size(), 3u);
  EXPECT_EQ(padded[1].sequences, 2);
  EXPECT_EQ(padded[1].tokens, 2000);
  EXPECT_NEAR(r[2].first_token_s, 0.210, 1e-9);
  EXPECT_NEAR(r[3].first_token_s, 0.270, 1e-9);
  // Packed (no padding): one step of 2500 tokens, [10, 260].
  std::vector<StepTrace> packed;
  r = run(-1, &packed);
  ASSERT_EQ(packed.size(), 2u);
  EXPECT_EQ(packed[1].tokens, 2500);
  EXPECT_NEAR(r[3].first_token_s, 0.260, 1e-9);
}

// DistServe's decode scheduler: prefill 10 ms a batch, decode 100 ms a step, no link cost, on-demand
// KV in 16-token blocks. Request 0 (48 tokens) arrives at 0; requests 1-3 (48 tokens each, 4 blocks
// with the first decode token) at 1 ms and are prefilled together [10, 20 ms].
ClusterConfig DistServeDecode(int64_t capacity_blocks, double waiting_block_fraction) {
  ClusterConfig c = OnePrefillOneDecode(ConstantModel(10, 100), ConstantModel(10, 100));
  c.prefill[0].max_batch_size = 0;
  c.kv_bytes_per_token = 0;
  c.decode[0].kv_capacity_tokens = capacity_blocks * 16;
  c.decode[0].on_demand_kv = true;
  c.decode[0].waiting_block_fraction = waiting_block_fraction;
  return c;
}

Workload OneThenThree(std::vector<int64_t> later_prompts, int64_t output_len) {
  Workload w;
  w.requests.push_back({.id = 0, .arrival_s = 0, .prompt_len = 48, .output_len = output_len});
  int id = 1;
  for (int64_t len : later_prompts) {
    w.requests.push_back({.id = id++, .arrival_s = 0.001, .prompt_len = len, .output_len = output_len});
  }
  return w;
}

TEST(SimulatorTest, DistServeDecodePullsOnlyWhileTheWaitingPromptsHoldUnderTheFraction) {
  // 100 blocks at 5%: pulls stop once the waiting prompts hold 5 blocks. DistServe migrates between
  // steps: requests 1-3, prefilled at 20 ms during the step [10, 110], are considered at 110; request 1
  // (4 blocks, 0 waiting) and request 2 (4 < 5 waiting) are pulled, request 3 is not (8 >= 5). Requests
  // 1 and 2 join the step at 110; request 3 is pulled when that step ends (210) and joins the next one.
  policy::RoundRobinPolicy policy;
  const ClusterConfig gated = DistServeDecode(100, 0.05);
  std::vector<RequestRecord> r = *Simulator(gated, &policy).Run(OneThenThree({48, 48, 48}, 5));
  EXPECT_NEAR(r[0].decode_start_s, 0.010, 1e-9);
  EXPECT_NEAR(r[1].kv_start_s, 0.110, 1e-9);
  EXPECT_NEAR(r[2].kv_start_s, 0.110, 1e-9);
  EXPECT_NEAR(r[2].decode_start_s, 0.110, 1e-9);
  EXPECT_NEAR(r[3].kv_start_s, 0.210, 1e-9);
  EXPECT_NEAR(r[3].decode_start_s, 0.210, 1e-9);
  // Without DistServe's scheduler all three are pulled at 20 ms (during the step) and join at 110.
  const ClusterConfig open = DistServeDecode(100, 0.0);
  r = *Simulator(open, &policy).Run(OneThenThree({48, 48, 48}, 5));
  EXPECT_NEAR(r[3].kv_start_s, 0.020, 1e-9);
  EXPECT_NEAR(r[3].decode_start_s, 0.110, 1e-9);
}

TEST(SimulatorTest, DistServeDecodeJoinsOnlyWhenTheBlocksFitTwice) {
  // 12 blocks. Request 0 holds 4 (48 + 1 tokens; 3 output tokens: steps [10, 110] and [110, 210]).
  // Request 1 (64 tokens: 5 blocks) is pulled at 110, between the steps, leaving 3 free: DistServe
  // counts its prompt in the waiting queue and again for itself, 5 > 3, so it joins only when request 0
  // leaves (210).
  policy::RoundRobinPolicy policy;
  const ClusterConfig gated = DistServeDecode(12, 0.05);
  std::vector<RequestRecord> r = *Simulator(gated, &policy).Run(OneThenThree({64}, 3));
  EXPECT_NEAR(r[1].kv_start_s, 0.110, 1e-9);
  EXPECT_NEAR(r[1].decode_start_s, 0.210, 1e-9);
  EXPECT_NEAR(r[0].finish_s, 0.210, 1e-9);
  // Pulled at once and joining at once (fraction 0), it shares the step at 110.
  const ClusterConfig open = DistServeDecode(12, 0.0);
  r = *Simulator(open, &policy).Run(OneThenThree({64}, 3));
  EXPECT_NEAR(r[1].kv_start_s, 0.020, 1e-9);
  EXPECT_NEAR(r[1].decode_start_s, 0.110, 1e-9);
}

TEST(SimulatorTest, RejectsBadClusters) {
  policy::RoundRobinPolicy policy;
  ClusterConfig empty;
  EXPECT_FALSE(Simulator(empty, &policy).Run({}).ok());
  ClusterConfig mixed = OnePrefillOneDecode(ConstantModel(1, 1), ConstantModel(1, 1));
  mixed.colocated.push_back({.latency = ConstantModel(1, 1)});
  EXPECT_FALSE(Simulator(mixed, &policy).Run({}).ok());
  ClusterConfig more_micro_batches_than_stages = PipelinedDecode(3, 0);
  EXPECT_FALSE(Simulator(more_micro_batches_than_stages, &policy).Run({}).ok());
  ClusterConfig no_stages = PipelinedDecode(1, 0);
  no_stages.decode[0].pp = 0;
  EXPECT_FALSE(Simulator(no_stages, &policy).Run({}).ok());
  // DistServe's step loop without DistServe's scheduler would be silently ignored.
  ClusterConfig step_loop_alone = PipelinedWithKvCopies(0.0, true);
  absl::StatusOr<std::vector<RequestRecord>> refused = Simulator(step_loop_alone, &policy).Run({});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("step_loop"), std::string::npos) << refused.status();
  EXPECT_TRUE(Simulator(PipelinedWithKvCopies(0.05, true), &policy).Run({}).ok());
}

}  // namespace
}  // namespace tandem::sim
