// The simulator with the goodput policy: SLOs reach the policy through SimOptions, and MakeSimPolicy
// gives it each instance's own latency model, so it tells a slow decode instance from a fast one.
#include <memory>

#include "gtest/gtest.h"
#include "sim/metrics.h"
#include "sim/rng.h"
#include "sim/search.h"
#include "sim/simulator.h"

namespace tandem::sim {
namespace {

policy::LatencyModel Model(double prefill_per_token_ms, double decode_step_ms) {
  policy::LatencyModelParams p;
  p.model = "toy";
  p.prefill = {5.0, prefill_per_token_ms, 0};
  p.decode_small = {decode_step_ms, 0, 0.1};
  p.decode_large = p.decode_small;
  p.kv_bytes_per_token = 1024;
  return *policy::LatencyModel::Create(p);
}

Workload Poisson(int n, double rate, uint64_t seed) {
  Rng rng(seed);
  Workload w;
  double t = 0;
  for (int i = 0; i < n; ++i) {
    w.requests.push_back({.id = i, .arrival_s = t, .prompt_len = 200, .output_len = 50});
    t += rng.Exponential() / rate;
  }
  w.native_rate = rate;
  return w;
}

// 1 prefill, 2 decode instances: decode-0 takes 40 ms a step, decode-1 5 ms.
ClusterConfig UnequalDecodes() {
  ClusterConfig c;
  c.prefill.push_back({.latency = Model(0.1, 5)});
  c.decode.push_back({.latency = Model(0.1, 40)});
  c.decode.push_back({.latency = Model(0.1, 5)});
  c.kv_bytes_per_token = 1024;
  return c;
}

std::vector<RequestRecord> RunWith(const std::string& policy_name, const ClusterConfig& cluster, SimOptions options,
                                   const Workload& workload, std::vector<std::pair<std::string, int64_t>>* rejects) {
  SimSetup setup;
  setup.policy_name = policy_name;
  absl::StatusOr<std::unique_ptr<policy::PlacementPolicy>> policy = MakeSimPolicy(setup, cluster);
  EXPECT_TRUE(policy.ok()) << policy.status();
  Simulator simulator(cluster, policy->get(), options);
  absl::StatusOr<std::vector<RequestRecord>> records = simulator.Run(workload);
  EXPECT_TRUE(records.ok()) << records.status();
  if (rejects != nullptr) *rejects = simulator.reject_reasons();
  return *records;
}

TEST(SimPolicyTest, GoodputPolicyKeepsRequestsOffTheSlowDecodeInstance) {
  const ClusterConfig cluster = UnequalDecodes();
  const Workload workload = Poisson(300, 4.0, 7);
  SimOptions options{.ttft_slo_ms = 1000, .tpot_slo_ms = 20, .best_effort = true};
  int on_slow[2] = {0, 0};
  int i = 0;
  for (const char* name : {"round_robin", "goodput"}) {
    for (const RequestRecord& r : RunWith(name, cluster, options, workload, nullptr)) {
      ASSERT_TRUE(r.finished) << name << " request " << r.id;
      on_slow[i] += r.decode_instance == 0;
    }
    ++i;
  }
  EXPECT_EQ(on_slow[0], 150);  // round-robin alternates
  // A 40 ms step breaks the 20 ms TPOT SLO; the goodput policy predicts that from decode-0's own model.
  EXPECT_EQ(on_slow[1], 0);
}

TEST(SimPolicyTest, GoodputPolicyRejectsWhatNoPairCanServeUnlessBestEffort) {
  const ClusterConfig cluster = UnequalDecodes();
  const Workload workload = Poisson(50, 1.0, 3);
  // Prefill of 200 tokens takes 25 ms: a 10 ms TTFT SLO is out of reach on an idle cluster.
  std::vector<std::pair<std::string, int64_t>> rejects;
  std::vector<RequestRecord> records =
      RunWith("goodput", cluster, {.ttft_slo_ms = 10, .tpot_slo_ms = 100}, workload, &rejects);
  for (const RequestRecord& r : records) EXPECT_TRUE(r.rejected) << r.id;
  ASSERT_EQ(rejects.size(), 1u);
  EXPECT_EQ(rejects[0].first.rfind("predicted TTFT", 0), 0u) << rejects[0].first;
  EXPECT_EQ(rejects[0].second, 50);
  const Summary summary = Summarize(records, {.ttft_ms = 10, .tpot_ms = 100});
  EXPECT_EQ(summary.attainment, 0.0);

  records = RunWith("goodput", cluster, {.ttft_slo_ms = 10, .tpot_slo_ms = 100, .best_effort = true}, workload,
                    &rejects);
  EXPECT_TRUE(rejects.empty());
  for (const RequestRecord& r : records) EXPECT_TRUE(r.finished) << r.id;
}

TEST(SimPolicyTest, PolicyWithoutSlosPlacesEverything) {
  // No SLO in the request (0): the goodput policy only ranks pairs, it never rejects.
  std::vector<std::pair<std::string, int64_t>> rejects;
  for (const RequestRecord& r : RunWith("goodput", UnequalDecodes(), {}, Poisson(100, 8.0, 5), &rejects)) {
    EXPECT_TRUE(r.finished) << r.id;
  }
  EXPECT_TRUE(rejects.empty());
}

// Per-class SLOs: chat requests (TPOT 20 ms) and batch requests (TPOT 100 ms) in one workload, the run's
// own SLO loose (1 s). Held to its own SLO, no chat request goes to the 40 ms decode instance, every batch
// request finds a place, and each class is judged by its own SLO.
TEST(SimPolicyTest, GoodputPolicyHonoursEachRequestsOwnSlo) {
  Workload workload = Poisson(300, 4.0, 7);
  workload.class_names = {"chat", "batch"};
  for (SimRequest& r : workload.requests) {
    const bool chat = r.id % 2 == 0;
    r.slo_class = chat ? 0 : 1;
    r.ttft_slo_ms = chat ? 1000 : 5000;
    r.tpot_slo_ms = chat ? 20 : 100;
  }
  SimOptions options{.ttft_slo_ms = 1000, .tpot_slo_ms = 1000, .best_effort = false};
  std::vector<std::pair<std::string, int64_t>> rejects;
  const std::vector<RequestRecord> records = RunWith("goodput", UnequalDecodes(), options, workload, &rejects);
  int chat_on_slow = 0, batch_placed = 0;
  for (const RequestRecord& r : records) {
    EXPECT_EQ(r.tpot_slo_ms, r.slo_class == 0 ? 20 : 100);
    if (r.slo_class == 0 && !r.rejected) chat_on_slow += r.decode_instance == 0;
    if (r.slo_class == 1) batch_placed += r.rejected ? 0 : 1;
  }
  EXPECT_EQ(chat_on_slow, 0);
  EXPECT_EQ(batch_placed, 150);
  const Summary summary = Summarize(records, {.ttft_ms = 1000, .tpot_ms = 1000}, workload.class_names);
  ASSERT_EQ(summary.classes.size(), 2u);
  EXPECT_GT(summary.classes[0].attainment, 0.9);
  EXPECT_GT(summary.classes[1].attainment, 0.9);

  // The policy reads each request's own TTFT too: with chat's TTFT at 10 ms (a 200-token prefill takes
  // 25 ms) every chat request is refused, while batch requests (5 s) are all placed.
  for (SimRequest& r : workload.requests) {
    if (r.slo_class == 0) r.ttft_slo_ms = 10;
  }
  int chat_placed = 0;
  batch_placed = 0;
  for (const RequestRecord& r : RunWith("goodput", UnequalDecodes(), options, workload, nullptr)) {
    (r.slo_class == 0 ? chat_placed : batch_placed) += r.rejected ? 0 : 1;
  }
  EXPECT_EQ(chat_placed, 0);
  EXPECT_EQ(batch_placed, 150);
}

}  // namespace
}  // namespace tandem::sim
