#include "router/policy/placement_policy.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "router/policy/least_loaded_policy.h"
#include "router/policy/round_robin_policy.h"

namespace tandem::policy {
namespace {

ClusterSnapshot MakeSnapshot(int num_prefill, int num_decode) {
  ClusterSnapshot snapshot;
  for (int i = 0; i < num_prefill; ++i) {
    snapshot.prefill.push_back({.id = "prefill-" + std::to_string(i)});
  }
  for (int i = 0; i < num_decode; ++i) {
    snapshot.decode.push_back(
        {.id = "decode-" + std::to_string(i), .free_kv_blocks = 100, .total_kv_blocks = 100});
  }
  return snapshot;
}

// What every policy may need ("goodput" needs a latency model).
PlacementPolicyOptions TestOptions() {
  LatencyModelParams params;
  params.prefill = {10, 0.1, 0};
  params.decode_small = params.decode_large = {5, 0.001, 0.1};
  return {.latency_model = *LatencyModel::Create(params)};
}

TEST(MakePlacementPolicyTest, KnownNames) {
  for (const std::string& name : PlacementPolicyNames()) {
    absl::StatusOr<std::unique_ptr<PlacementPolicy>> policy = MakePlacementPolicy(name, TestOptions());
    ASSERT_TRUE(policy.ok()) << policy.status();
    EXPECT_EQ((*policy)->name(), name);
  }
}

TEST(MakePlacementPolicyTest, UnknownNameIsInvalidArgumentNamingTheValue) {
  absl::StatusOr<std::unique_ptr<PlacementPolicy>> policy = MakePlacementPolicy("fastest");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(policy.status().message().find("\"fastest\""), std::string::npos);
  EXPECT_NE(policy.status().message().find("--placement_policy"), std::string::npos);
}

TEST(RoundRobinPolicyTest, CyclesIndependently) {
  RoundRobinPolicy policy;
  ClusterSnapshot snapshot = MakeSnapshot(2, 3);
  const int expected[][2] = {{0, 0}, {1, 1}, {0, 2}, {1, 0}};
  for (const auto& want : expected) {
    PlacementDecision d = policy.Place({}, snapshot);
    ASSERT_TRUE(d.accepted);
    EXPECT_EQ(d.prefill_index, want[0]);
    EXPECT_EQ(d.decode_index, want[1]);
  }
}

TEST(RoundRobinPolicyTest, SkipsUnhealthy) {
  RoundRobinPolicy policy;
  ClusterSnapshot snapshot = MakeSnapshot(3, 2);
  snapshot.prefill[1].healthy = false;
  snapshot.decode[0].healthy = false;
  for (int want_prefill : {0, 2, 0, 2}) {
    PlacementDecision d = policy.Place({}, snapshot);
    ASSERT_TRUE(d.accepted);
    EXPECT_EQ(d.prefill_index, want_prefill);
    EXPECT_EQ(d.decode_index, 1);
  }
}

TEST(PlacementPolicyTest, NoHealthyWorkerRejectsWithReason) {
  for (const std::string& name : PlacementPolicyNames()) {
    std::unique_ptr<PlacementPolicy> policy = *MakePlacementPolicy(name, TestOptions());
    ClusterSnapshot snapshot = MakeSnapshot(2, 1);
    snapshot.prefill[0].healthy = snapshot.prefill[1].healthy = false;
    PlacementDecision d = policy->Place({}, snapshot);
    EXPECT_FALSE(d.accepted) << name;
    EXPECT_EQ(d.reject_reason, "no healthy prefill worker") << name;

    snapshot = MakeSnapshot(1, 1);
    snapshot.decode[0].healthy = false;
    d = policy->Place({}, snapshot);
    EXPECT_FALSE(d.accepted) << name;
    EXPECT_EQ(d.reject_reason, "no healthy decode worker") << name;

    d = policy->Place({}, ClusterSnapshot{});
    EXPECT_EQ(d.reject_reason, "no healthy prefill worker") << name;
  }
}

TEST(LeastLoadedPolicyTest, PicksFewestQueuedTokensAndMostFreeKv) {
  LeastLoadedPolicy policy;
  ClusterSnapshot snapshot = MakeSnapshot(3, 3);
  snapshot.prefill[0].queued_prompt_tokens = 900;
  snapshot.prefill[1].queued_prompt_tokens = 100;
  snapshot.prefill[1].running_tokens = 50;
  snapshot.prefill[2].queued_prompt_tokens = 120;
  snapshot.decode[0].free_kv_blocks = 10;
  snapshot.decode[1].free_kv_blocks = 80;
  snapshot.decode[2].free_kv_blocks = 40;
  PlacementDecision d = policy.Place({}, snapshot);
  ASSERT_TRUE(d.accepted);
  EXPECT_EQ(d.prefill_index, 2);  // 120 < 100 + 50
  EXPECT_EQ(d.decode_index, 1);
}

TEST(LeastLoadedPolicyTest, TiesGoToSmallerBatchThenLowerIndex) {
  LeastLoadedPolicy policy;
  ClusterSnapshot snapshot = MakeSnapshot(2, 3);
  snapshot.decode[0].running_batch_size = 5;
  snapshot.decode[1].running_batch_size = 2;
  snapshot.decode[2].running_batch_size = 2;
  PlacementDecision d = policy.Place({}, snapshot);
  EXPECT_EQ(d.prefill_index, 0);
  EXPECT_EQ(d.decode_index, 1);
}

TEST(LeastLoadedPolicyTest, NeverPicksUnhealthyEvenIfIdle) {
  LeastLoadedPolicy policy;
  ClusterSnapshot snapshot = MakeSnapshot(2, 2);
  snapshot.prefill[0].healthy = false;  // idle but down
  snapshot.prefill[1].queued_prompt_tokens = 5000;
  snapshot.decode[1].healthy = false;
  snapshot.decode[1].free_kv_blocks = 1000;
  PlacementDecision d = policy.Place({}, snapshot);
  ASSERT_TRUE(d.accepted);
  EXPECT_EQ(d.prefill_index, 1);
  EXPECT_EQ(d.decode_index, 0);
}

TEST(LeastLoadedPolicyTest, CountsItsOwnPlacementsUntilTheNextReport) {
  ClusterSnapshot snapshot;
  for (int i = 0; i < 3; ++i) {
    PrefillWorkerState p;
    p.id = "p" + std::to_string(i);
    p.report_seq = 7;
    snapshot.prefill.push_back(p);
    DecodeWorkerState d;
    d.id = "d" + std::to_string(i);
    d.free_kv_blocks = 100;
    d.block_size = 16;
    d.report_seq = 7;
    snapshot.decode.push_back(d);
  }
  PlacementRequest request;
  request.prompt_len = 40;
  request.max_output_len = 24;  // 4 blocks with the prompt
  LeastLoadedPolicy policy;
  std::vector<int> prefill_count(3), decode_count(3);
  for (int i = 0; i < 6; ++i) {
    const PlacementDecision d = policy.Place(request, snapshot);
    ASSERT_TRUE(d.accepted);
    ++prefill_count[d.prefill_index];
    ++decode_count[d.decode_index];
  }
  EXPECT_EQ(prefill_count, (std::vector<int>{2, 2, 2}));
  EXPECT_EQ(decode_count, (std::vector<int>{2, 2, 2}));
  // A fresh report (the figures now include those requests) replaces the count: equal loads again,
  // so the lowest index wins.
  for (auto& p : snapshot.prefill) p.report_seq = 8;
  for (auto& d : snapshot.decode) d.report_seq = 8;
  const PlacementDecision fresh = policy.Place(request, snapshot);
  EXPECT_EQ(fresh.prefill_index, 0);
  EXPECT_EQ(fresh.decode_index, 0);
  // report_seq 0 means exact figures: nothing is counted, the same worker wins every time.
  for (auto& p : snapshot.prefill) p.report_seq = 0;
  for (auto& d : snapshot.decode) d.report_seq = 0;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(policy.Place(request, snapshot).decode_index, 0);
}

}  // namespace
}  // namespace tandem::policy

namespace tandem::policy {
namespace {

ClusterSnapshot WithColocated(int num_prefill, int num_decode, int num_colocated) {
  ClusterSnapshot snapshot = MakeSnapshot(num_prefill, num_decode);
  for (int i = 0; i < num_colocated; ++i) {
    snapshot.colocated.push_back({.id = "colocated-" + std::to_string(i), .free_kv_blocks = 100,
                                  .total_kv_blocks = 100});
  }
  return snapshot;
}

TEST(RoundRobinPolicyTest, RotatesOverThePairSideAndEachColocatedWorker) {
  RoundRobinPolicy policy;
  ClusterSnapshot snapshot = WithColocated(1, 1, 2);
  std::vector<int> colocated;
  for (int i = 0; i < 6; ++i) colocated.push_back(policy.Place({}, snapshot).colocated_index);
  EXPECT_EQ(colocated, (std::vector<int>{-1, 0, 1, -1, 0, 1}));
  snapshot.colocated[0].healthy = false;
  snapshot.prefill[0].healthy = false;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(policy.Place({}, snapshot).colocated_index, 1);
  snapshot.colocated[1].healthy = false;
  EXPECT_EQ(policy.Place({}, snapshot).reject_reason,
            "no healthy worker: no healthy prefill/decode pair and no healthy colocated worker");
  EXPECT_EQ(policy.Place({}, WithColocated(0, 0, 0)).accepted, false);
  ClusterSnapshot only = WithColocated(0, 0, 1);
  only.colocated[0].healthy = false;
  EXPECT_EQ(policy.Place({}, only).reject_reason, "no healthy colocated worker");
}

TEST(LeastLoadedPolicyTest, ColocatedWorkerWithFewerRequestsThanTheDecodeWorkerGetsIt) {
  LeastLoadedPolicy policy;
  ClusterSnapshot snapshot = WithColocated(1, 1, 2);
  snapshot.decode[0].running_batch_size = 3;
  snapshot.colocated[0].running_batch_size = 2;
  snapshot.colocated[0].queued_requests = 2;  // 4 requests: more than the decode worker's 3
  snapshot.colocated[1].running_batch_size = 1;
  snapshot.colocated[1].prefilling_requests = 1;  // 2 requests: the least loaded
  PlacementDecision d = policy.Place({.prompt_len = 10, .max_output_len = 10}, snapshot);
  EXPECT_EQ(d.colocated_index, 1);
  snapshot.colocated[1].queued_requests = 5;
  d = policy.Place({.prompt_len = 10, .max_output_len = 10}, snapshot);
  EXPECT_EQ(d.colocated_index, -1);
  EXPECT_EQ(d.decode_index, 0);
}

}  // namespace
}  // namespace tandem::policy
