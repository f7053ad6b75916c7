#include "router/policy/goodput_policy.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/simulator.h"

namespace tandem::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A model whose arithmetic fits in a comment:
//   PrefillMs(L)       = 10 + 1 * L                 (sum(l^2) has no weight)
//   DecodeStepMs(B, C) = 5 + 0.01 * C + 1 * B
//   KvTransferMs(L)    = L * 1000 B / 1e8 B/s = 0.01 * L ms
LatencyModel TestModel(double scale = 1.0) {
  LatencyModelParams p;
  p.prefill = {10 * scale, 1 * scale, 0};
  p.decode_small = {5 * scale, 0.01 * scale, 1 * scale};
  p.decode_large = p.decode_small;
  p.kv_bytes_per_token = 1000;
  p.link_bandwidth_bytes_per_s = 1e8;
  absl::StatusOr<LatencyModel> model = LatencyModel::Create(p);
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

GoodputPolicy MakePolicy() { return GoodputPolicy(GoodputModels{.prefill = TestModel(), .decode = TestModel()}); }

ClusterSnapshot Idle(int num_prefill, int num_decode) {
  ClusterSnapshot snapshot;
  for (int i = 0; i < num_prefill; ++i) snapshot.prefill.push_back({.id = "prefill-" + std::to_string(i)});
  for (int i = 0; i < num_decode; ++i) {
    snapshot.decode.push_back(
        {.id = "decode-" + std::to_string(i), .free_kv_blocks = 1000, .total_kv_blocks = 1000, .block_size = 16});
  }
  return snapshot;
}

// prompt 100, 20 output tokens.
PlacementRequest Request(double ttft_slo_ms, double tpot_slo_ms, bool best_effort = false) {
  return {.prompt_len = 100,
          .max_output_len = 20,
          .expected_output_len = 20,
          .ttft_slo_ms = ttft_slo_ms,
          .tpot_slo_ms = tpot_slo_ms,
          .best_effort = best_effort};
}

TEST(GoodputPolicyTest, PicksThePairTheHandCalculationSaysMeetsTheSlo) {
  // prefill-0: 10 queued, 2000 tokens: queue = 10 + 2000 = 2010, own = 10 + 100 = 110
  //            -> TTFT 2120 ms > 300 (the KV transfer is not on the TTFT path).
  // prefill-1: 1 queued, 100 tokens: queue = 110, own = 110 -> TTFT 220 ms <= 300.
  // decode-0 idle: B = 1, C = 100 + 20 / 2 = 110 -> step = 5 + 1.1 + 1 = 7.1 ms, plus the 1 ms KV
  //            transfer spread over the 19 tokens after the first: TPOT = 7.1 + 1/19 ms <= 40.
  GoodputPolicy policy = MakePolicy();
  ClusterSnapshot snapshot = Idle(2, 1);
  snapshot.prefill[0].queued_requests = 10;
  snapshot.prefill[0].queued_prompt_tokens = 2000;
  snapshot.prefill[1].queued_requests = 1;
  snapshot.prefill[1].queued_prompt_tokens = 100;
  const PlacementDecision d = policy.Place(Request(300, 40), snapshot);
  ASSERT_TRUE(d.accepted) << d.reject_reason;
  EXPECT_EQ(d.prefill_index, 1);
  EXPECT_EQ(d.decode_index, 0);
  EXPECT_NEAR(d.predicted_ttft_ms, 220.0, 1e-9);
  EXPECT_NEAR(d.predicted_tpot_ms, 7.1 + 1.0 / 19, 1e-9);
  EXPECT_NEAR(policy.Predict(Request(300, 40), snapshot, 0, 0).ttft_ms, 2120.0, 1e-9);
}

TEST(GoodputPolicyTest, PrefersTheDecodeWorkerWithMoreSlack) {
  // decode-0: 10 running, 1000 context: B = 11, C = 1000 + 110 -> 5 + 11.1 + 11 = 27.1 ms (slack 0.32)
  // decode-1:  2 running,  200 context: B = 3,  C = 200 + 110  -> 5 + 3.1 + 3  = 11.1 ms (slack 0.72)
  // (each plus the 1 ms KV transfer over 19 tokens)
  // Both meet TPOT 40 ms; decode-0 without the request steps 5 + 10 + 10 = 25 <= 40 (no harm).
  GoodputPolicy policy = MakePolicy();
  ClusterSnapshot snapshot = Idle(1, 2);
  snapshot.decode[0].running_batch_size = 10;
  snapshot.decode[0].total_context_tokens = 1000;
  snapshot.decode[1].running_batch_size = 2;
  snapshot.decode[1].total_context_tokens = 200;
  const PlacementDecision d = policy.Place(Request(0, 40), snapshot);
  ASSERT_TRUE(d.accepted) << d.reject_reason;
  EXPECT_EQ(d.decode_index, 1);
  EXPECT_NEAR(d.predicted_tpot_ms, 11.1 + 1.0 / 19, 1e-9);
  EXPECT_NEAR(policy.Predict(Request(0, 40), snapshot, 0, 0).tpot_ms, 27.1 + 1.0 / 19, 1e-9);
}

TEST(GoodputPolicyTest, RejectsTtftBoundNamingTheQueue) {
  // prefill-0: 14 queued, 1400 tokens: queue 1410 + own 110 = 1520 ms > 1000.
  GoodputPolicy policy = MakePolicy();
  ClusterSnapshot snapshot = Idle(1, 1);
  snapshot.prefill[0].queued_requests = 14;
  snapshot.prefill[0].queued_prompt_tokens = 1400;
  const PlacementDecision d = policy.Place(Request(1000, 40), snapshot);
  ASSERT_FALSE(d.accepted);
  EXPECT_THAT(d.reject_reason,
              StartsWith("predicted TTFT 1.5 s > SLO 1.0 s: 14 requests (1400 tokens) queued on prefill-0"));
  EXPECT_THAT(d.reject_reason, HasSubstr("best pair prefill-0 -> decode-0"));
}

TEST(GoodputPolicyTest, RejectsTpotBound) {
  // decode-0: 40 running, 4000 context: B = 41, C = 4110 -> 5 + 41.1 + 41 = 87.1 ms > 50. Without the
  // request it is already 5 + 40 + 40 = 85 > 50, so this is the request's own TPOT, not harm.
  GoodputPolicy policy = MakePolicy();
  ClusterSnapshot snapshot = Idle(1, 1);
  snapshot.decode[0].running_batch_size = 40;
  snapshot.decode[0].total_context_tokens = 4000;
  const PlacementDecision d = policy.Place(Request(0, 50), snapshot);
  ASSERT_FALSE(d.accepted);
  EXPECT_THAT(d.reject_reason, StartsWith("predicted TPOT 87 ms > SLO 50 ms: decode-0 would step a batch of 41"));
}

TEST(GoodputPolicyTest, RejectsWhenJoiningPushesRunningRequestsOverTheirSlo) {
  // decode-0: 20 running, 2000 context, tightest running TPOT SLO 46 ms.
  //   without: 5 + 20 + 20 = 45 <= 46; with: B = 21, C = 2110 -> 5 + 21.1 + 21 = 47.1 > 46.
  // The request's own TPOT SLO (100 ms) is met: the running requests are what it would break.
  GoodputPolicy policy = MakePolicy();
  ClusterSnapshot snapshot = Idle(1, 1);
  snapshot.decode[0].running_batch_size = 20;
  snapshot.decode[0].total_context_tokens = 2000;
  snapshot.decode[0].min_running_tpot_slo_ms = 46;
  const PlacementDecision d = policy.Place(Request(0, 100), snapshot);
  ASSERT_FALSE(d.accepted);
  EXPECT_THAT(d.reject_reason, StartsWith("joining decode-0's batch of 20 would raise its step time to 47 ms > "
                                          "the running requests' TPOT SLO 46 ms"));
}

TEST(GoodputPolicyTest, RejectsKvBoundAndBestEffortWaitsForBlocks) {
  // prompt 100 + max_tokens 20 = 120 tokens = 8 blocks of 16; decode-0 has 5 free.
  GoodputPolicy policy = MakePolicy();
  ClusterSnapshot snapshot = Idle(1, 1);
  snapshot.decode[0].free_kv_blocks = 5;
  PlacementDecision d = policy.Place(Request(1000, 100), snapshot);
  ASSERT_FALSE(d.accepted);
  EXPECT_THAT(d.reject_reason, StartsWith("KV: the request needs 8 KV blocks (prompt 100 + max_tokens 20 tokens)"));
  EXPECT_THAT(d.reject_reason, HasSubstr("5 of 1000 on decode-0"));

  d = policy.Place(Request(1000, 100, /*best_effort=*/true), snapshot);
  EXPECT_TRUE(d.accepted) << d.reject_reason;

  // A cache smaller than the request can never admit it, best effort or not.
  snapshot.decode[0].total_kv_blocks = 6;
  d = policy.Place(Request(1000, 100, /*best_effort=*/true), snapshot);
  EXPECT_FALSE(d.accepted);
  EXPECT_THAT(d.reject_reason, StartsWith("KV:"));
}

TEST(GoodputPolicyTest, KvShortDecodeIsSkippedForOneWithRoom) {
  GoodputPolicy policy = MakePolicy();
  ClusterSnapshot snapshot = Idle(1, 2);
  snapshot.decode[0].free_kv_blocks = 5;  // idle but full of reservations
  snapshot.decode[1].running_batch_size = 8;
  snapshot.decode[1].total_context_tokens = 800;
  const PlacementDecision d = policy.Place(Request(1000, 100), snapshot);
  ASSERT_TRUE(d.accepted) << d.reject_reason;
  EXPECT_EQ(d.decode_index, 1);
}

TEST(GoodputPolicyTest, BestEffortPlacesOnTheLeastViolatingPair) {
  // TTFT: prefill-0 1520 ms, prefill-1 2120 ms (see above); both miss 300 ms. Best effort: prefill-0.
  GoodputPolicy policy = MakePolicy();
  ClusterSnapshot snapshot = Idle(2, 1);
  snapshot.prefill[0].queued_requests = 14;
  snapshot.prefill[0].queued_prompt_tokens = 1400;
  snapshot.prefill[1].queued_requests = 10;
  snapshot.prefill[1].queued_prompt_tokens = 2000;
  EXPECT_FALSE(policy.Place(Request(300, 40), snapshot).accepted);
  const PlacementDecision d = policy.Place(Request(300, 40, /*best_effort=*/true), snapshot);
  ASSERT_TRUE(d.accepted);
  EXPECT_EQ(d.prefill_index, 0);
  EXPECT_NEAR(d.predicted_ttft_ms, 1520.0, 1e-9);
}

TEST(GoodputPolicyTest, NeverPicksUnhealthyWorkers) {
  GoodputPolicy policy = MakePolicy();
  ClusterSnapshot snapshot = Idle(2, 2);
  snapshot.prefill[0].healthy = false;  // idle but down
  snapshot.prefill[1].queued_requests = 50;
  snapshot.prefill[1].queued_prompt_tokens = 5000;
  snapshot.decode[0].healthy = false;
  snapshot.decode[1].running_batch_size = 60;
  snapshot.decode[1].total_context_tokens = 6000;
  for (const PlacementRequest& request : {Request(0, 0), Request(300, 40, true), Request(10000, 1000)}) {
    const PlacementDecision d = policy.Place(request, snapshot);
    ASSERT_TRUE(d.accepted) << d.reject_reason;
    EXPECT_EQ(d.prefill_index, 1);
    EXPECT_EQ(d.decode_index, 1);
  }
  EXPECT_FALSE(policy.Place(Request(300, 40), snapshot).accepted);  // and refuses rather than cheat

  snapshot.prefill[1].healthy = false;
  EXPECT_EQ(policy.Place(Request(0, 0), snapshot).reject_reason, "no healthy prefill worker");
  snapshot.prefill[1].healthy = true;
  snapshot.decode[1].healthy = false;
  EXPECT_EQ(policy.Place(Request(0, 0), snapshot).reject_reason, "no healthy decode worker");
}

TEST(GoodputPolicyTest, RequestsWithoutSloGoWhereThePredictedTimesAreLeast) {
  // prefill-0: 300 queued tokens (TTFT 10 + 300 + 110 = 420); prefill-1: 2 requests of 100 running
  // (half of 10 + 200 = 105, TTFT 105 + 110 = 215). decode-1 is the idler one.
  GoodputPolicy policy = MakePolicy();
  ClusterSnapshot snapshot = Idle(2, 2);
  snapshot.prefill[0].queued_requests = 3;
  snapshot.prefill[0].queued_prompt_tokens = 300;
  snapshot.prefill[1].running_tokens = 200;
  snapshot.prefill[1].running_requests = 2;
  snapshot.decode[0].running_batch_size = 4;
  snapshot.decode[0].total_context_tokens = 400;
  const PlacementDecision d = policy.Place(Request(0, 0), snapshot);
  ASSERT_TRUE(d.accepted);
  EXPECT_EQ(d.prefill_index, 1);
  EXPECT_EQ(d.decode_index, 1);
  EXPECT_NEAR(d.predicted_ttft_ms, 215.0, 1e-9);
}

TEST(GoodputPolicyTest, CorrectionFactorIsClamped) {
  EXPECT_DOUBLE_EQ(CorrectionFactor(20, 10), 2.0);
  EXPECT_DOUBLE_EQ(CorrectionFactor(100, 1), kMaxCorrection);
  EXPECT_DOUBLE_EQ(CorrectionFactor(1, 100), kMinCorrection);
  EXPECT_DOUBLE_EQ(CorrectionFactor(0, 10), 1.0);  // no observation yet
}

TEST(GoodputPolicyTest, OnlineCorrectionShiftsChoiceToTheWorkerObservedFaster) {
  // Both decode workers look the same to the model: 4 running, 400 context, predicted 5 + 4 + 4 = 13
  // ms per step. decode-0 was observed at 26 ms (x2), decode-1 at 6.5 ms (x0.5).
  GoodputPolicy policy = MakePolicy();
  ClusterSnapshot snapshot = Idle(1, 2);
  for (DecodeWorkerState& d : snapshot.decode) {
    d.running_batch_size = 4;
    d.total_context_tokens = 400;
  }
  EXPECT_EQ(policy.Place(Request(0, 40), snapshot).decode_index, 0);  // a tie: the lower index
  snapshot.decode[0].recent_step_ms = 26;
  snapshot.decode[1].recent_step_ms = 6.5;
  for (DecodeWorkerState& d : snapshot.decode) {
    d.recent_batch_size = 4;
    d.recent_batch_context_tokens = 400;
  }
  const PlacementDecision d = policy.Place(Request(0, 40), snapshot);
  ASSERT_TRUE(d.accepted);
  EXPECT_EQ(d.decode_index, 1);
  // B = 5, C = 400 + 110: (5 + 5.1 + 5) * 0.5 = 7.55 ms, plus the 1 ms KV transfer over 19 tokens
  // (the correction scales decode steps only).
  EXPECT_NEAR(d.predicted_tpot_ms, 7.55 + 1.0 / 19, 1e-9);
  // Corrected, decode-0 misses a 20 ms TPOT SLO (15.1 * 2 = 30.2) that decode-1 meets.
  EXPECT_EQ(policy.Place(Request(0, 20), snapshot).decode_index, 1);
  snapshot.decode[1].healthy = false;
  EXPECT_THAT(policy.Place(Request(0, 20), snapshot).reject_reason, StartsWith("predicted TPOT 30 ms > SLO 20 ms"));
}

TEST(GoodputPolicyTest, PerWorkerModelsTellUnequalWorkersApart) {
  // decode-0 is twice as slow as the default model says: 2 * (5 + 1.1 + 1) = 14.2 ms vs 7.1 ms (each
  // plus the prefill side's 1 ms KV transfer over 19 tokens).
  GoodputPolicy policy(
      GoodputModels{.prefill = TestModel(), .decode = TestModel(), .by_worker_id = {{"decode-0", TestModel(2.0)}}});
  const PlacementDecision d = policy.Place(Request(0, 40), Idle(1, 2));
  EXPECT_EQ(d.decode_index, 1);
  EXPECT_NEAR(policy.Predict(Request(0, 40), Idle(1, 2), 0, 0).tpot_ms, 14.2 + 1.0 / 19, 1e-9);
}

// A pipelined decode worker (pp 2): its model's step is one stage's, half the coefficient time (3.55 ms
// idle), but a request waits for both stages: idle, B = 1, C = 110 -> 2 x (5 + 1.1 + 1) / 2 = 7.1 ms,
// plus the 1 ms KV transfer over 19 tokens.
TEST(GoodputPolicyTest, PipelinedDecodeWorkerTpotIsAWholePassNotOneStage) {
  LatencyModelParams p = TestModel().params();
  p.pp = 2;
  GoodputPolicy policy(
      GoodputModels{.prefill = TestModel(), .decode = TestModel(), .by_worker_id = {{"decode-0", *LatencyModel::Create(p)}}});
  EXPECT_NEAR(policy.Predict(Request(0, 40), Idle(1, 1), 0, 0).tpot_ms, 7.1 + 1.0 / 19, 1e-9);
}

TEST(GoodputPolicyTest, FactoryNeedsTheLatencyModel) {
  absl::StatusOr<std::unique_ptr<PlacementPolicy>> missing = MakePlacementPolicy("goodput");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("--latency-model"));

  absl::StatusOr<std::unique_ptr<PlacementPolicy>> policy =
      MakePlacementPolicy("goodput", PlacementPolicyOptions{.latency_model = TestModel()});
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ((*policy)->name(), "goodput");
  EXPECT_TRUE((*policy)->Place(Request(300, 40), Idle(1, 1)).accepted);
}

TEST(GoodputPolicyTest, TheSimulatorRunsIt) {
  // 1 prefill + 2 decode instances; decode-1 is 3x slower and the policy is told so by worker id.
  // The simulator builds snapshots and calls Place through PlacementPolicy*, as `tandem sim` does.
  sim::ClusterConfig cluster;
  cluster.prefill.push_back({.latency = TestModel()});
  cluster.decode.push_back({.latency = TestModel(), .kv_capacity_tokens = 20000});
  cluster.decode.push_back({.latency = TestModel(3.0), .kv_capacity_tokens = 20000});
  cluster.kv_bytes_per_token = 1000;
  GoodputPolicy policy(
      GoodputModels{.prefill = TestModel(), .decode = TestModel(), .by_worker_id = {{"decode-1", TestModel(3.0)}}});
  PlacementPolicy* as_interface = &policy;
  sim::Workload workload;
  for (int i = 0; i < 200; ++i) {
    workload.requests.push_back(
        {.id = i, .arrival_s = i * 0.02, .prompt_len = 20 + (i * 7) % 50, .output_len = 10 + i % 20});
  }
  sim::Simulator simulator(cluster, as_interface);
  absl::StatusOr<std::vector<sim::RequestRecord>> records = simulator.Run(workload);
  ASSERT_TRUE(records.ok()) << records.status();
  int on_decode[2] = {0, 0};
  for (const sim::RequestRecord& r : *records) {
    EXPECT_TRUE(r.finished);
    EXPECT_FALSE(r.rejected);
    ASSERT_GE(r.decode_instance, 0);
    ++on_decode[r.decode_instance];
  }
  // Predicted times steer most requests to the faster decode instance.
  EXPECT_GT(on_decode[0], on_decode[1]);
}

}  // namespace
}  // namespace tandem::policy

namespace tandem::policy {
namespace {

ColocatedWorkerState IdleColocated(const std::string& id) {
  return {.id = id, .free_kv_blocks = 1000, .total_kv_blocks = 1000, .block_size = 16, .step_token_budget = 32};
}

TEST(GoodputPolicyColocatedTest, PredictsChunkedPrefillAndDecodeByHand) {
  // Idle, budget 32: the 100-token prompt runs in ceil(100 / 32) = 4 steps of PrefillMs(32) = 42 ms
  // (no decodes share them) -> TTFT 168 ms. TPOT: DecodeStepMs(1, 100 + 20 / 2) = 5 + 1.1 + 1 = 7.1 ms.
  GoodputPolicy policy = MakePolicy();
  ClusterSnapshot snapshot;
  snapshot.colocated = {IdleColocated("colocated-0")};
  const PlacementDecision d = policy.Place(Request(200, 40), snapshot);
  ASSERT_TRUE(d.accepted) << d.reject_reason;
  EXPECT_EQ(d.colocated_index, 0);
  EXPECT_EQ(d.prefill_index, -1);
  EXPECT_NEAR(d.predicted_ttft_ms, 168.0, 1e-9);
  EXPECT_NEAR(d.predicted_tpot_ms, 7.1, 1e-9);
}

TEST(GoodputPolicyColocatedTest, QueuedPromptsAndRunningDecodesSlowItDown) {
  // colocated-0: 2 decoding over 400 context tokens, 1 queued with 60 prompt tokens. B = 3, chunk =
  // 32 - 3 = 29, steps = ceil((60 + 100) / 29) = 6; a step = DecodeStepMs(3, 400 + 1 * 200) + PrefillMs(29)
  // = (5 + 6 + 3) + 39 = 53 ms -> TTFT 318 ms > 200: the idle colocated-1 (168 ms) is chosen.
  GoodputPolicy policy = MakePolicy();
  ClusterSnapshot snapshot;
  snapshot.colocated = {IdleColocated("colocated-0"), IdleColocated("colocated-1")};
  snapshot.colocated[0].running_batch_size = 2;
  snapshot.colocated[0].total_context_tokens = 400;
  snapshot.colocated[0].queued_requests = 1;
  snapshot.colocated[0].queued_prompt_tokens = 60;
  EXPECT_NEAR(policy.PredictColocated(Request(200, 40), snapshot, 0).ttft_ms, 318.0, 1e-9);
  const PlacementDecision d = policy.Place(Request(200, 40), snapshot);
  ASSERT_TRUE(d.accepted) << d.reject_reason;
  EXPECT_EQ(d.colocated_index, 1);
  // Alone, colocated-0 is refused with the queue named.
  snapshot.colocated.pop_back();
  const PlacementDecision refused = policy.Place(Request(200, 40), snapshot);
  ASSERT_FALSE(refused.accepted);
  EXPECT_THAT(refused.reject_reason, StartsWith("predicted TTFT 318 ms > SLO 200 ms: 60 prompt tokens wait"));
  EXPECT_THAT(refused.reject_reason, HasSubstr("best colocated worker colocated-0"));
}

TEST(GoodputPolicyColocatedTest, MixedClusterTakesTheCandidateWithMoreSlack) {
  // Idle pair: TTFT 110 ms (slack 0.63 under 300 ms); idle colocated: TTFT 168 ms (slack 0.44).
  GoodputPolicy policy = MakePolicy();
  ClusterSnapshot snapshot = Idle(1, 1);
  snapshot.colocated = {IdleColocated("colocated-0")};
  PlacementDecision d = policy.Place(Request(300, 40), snapshot);
  ASSERT_TRUE(d.accepted) << d.reject_reason;
  EXPECT_EQ(d.prefill_index, 0);
  EXPECT_EQ(d.colocated_index, -1);
  // A queue of 2000 tokens on the prefill worker (TTFT 2120 ms) sends it to the colocated worker.
  snapshot.prefill[0].queued_requests = 10;
  snapshot.prefill[0].queued_prompt_tokens = 2000;
  d = policy.Place(Request(300, 40), snapshot);
  ASSERT_TRUE(d.accepted) << d.reject_reason;
  EXPECT_EQ(d.colocated_index, 0);
  // Nothing healthy at all is said as such.
  snapshot.prefill[0].healthy = false;
  snapshot.colocated[0].healthy = false;
  EXPECT_THAT(policy.Place(Request(300, 40), snapshot).reject_reason, StartsWith("no healthy worker"));
}

TEST(GoodputPolicyColocatedTest, KvShortColocatedWorkerIsRefusedNamingIt) {
  GoodputPolicy policy = MakePolicy();
  ClusterSnapshot snapshot;
  snapshot.colocated = {IdleColocated("colocated-0")};
  snapshot.colocated[0].free_kv_blocks = 3;
  snapshot.colocated[0].total_kv_blocks = 3;  // 3 * 16 < 100 + 20: can never fit
  const PlacementDecision d = policy.Place(Request(300, 40), snapshot);
  ASSERT_FALSE(d.accepted);
  EXPECT_THAT(d.reject_reason, HasSubstr("KV: the request needs 8 KV blocks"));
  EXPECT_THAT(d.reject_reason, HasSubstr("colocated worker is 3 of 3 on colocated-0"));
}

}  // namespace
}  // namespace tandem::policy
