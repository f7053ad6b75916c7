// tandem bench against a real cluster in this process: a prefill worker, a decode worker and a
// router (PrefillServer / DecodeServer / RouterServer on loopback, port 0) serving the tiny random
// model, as `tandem up` runs them as processes.

#include <atomic>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loadgen/bench.h"
#include "router/router_server.h"
#include "tests/testing/local_cluster.h"

namespace tandem::loadgen {
namespace {

using ::testing::HasSubstr;

// Client TTFT vs the router's TTFT (router receipt -> first token queued for writing). The client's
// clock starts before the router's (it sends, then the router receives) and stops after it (the
// router queues, then the client reads), so client >= router up to clock reading order: the router
// uses absl::Now() and the client the steady clock, read in different threads, hence 1 ms of slack
// below. Above, the gap is one loopback request plus one response delivery and the gRPC callback
// dispatch; a few ms on an idle loopback, but on a 2-core test machine the workers' compute threads
// compete with the client's callback thread, so the bound is generous.
constexpr double kBelowSlackMs = 1.0;
constexpr double kAboveSlackMs = 25.0;

class BenchE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<test_support::LocalCluster>> cluster =
        test_support::LocalCluster::Start({.name = "loadgen_e2e"});
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = cluster->release();
  }

  static void TearDownTestSuite() { delete cluster_; }

  static BenchConfig Config() {
    BenchConfig config;
    config.router = cluster_->router().address();
    config.dataset = "code";
    config.max_total_tokens = 160;  // short requests keep the test fast on 2 cores
    config.seed = 1;
    return config;
  }

  static test_support::LocalCluster* cluster_;
};

test_support::LocalCluster* BenchE2eTest::cluster_ = nullptr;

TEST_F(BenchE2eTest, ClientTimingsAgreeWithTheRoutersBreakdown) {
  BenchConfig config = Config();
  config.num_prompts = 20;
  config.rate = 8.0;
  config.metric_percentiles = {50, 90, 99};
  config.out_path = ::testing::TempDir() + "/loadgen_e2e.json";
  absl::StatusOr<BenchPlan> plan = PlanBench(config);
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::ostringstream out, err;
  absl::StatusOr<BenchOutcome> outcome = RunBench(config, *plan, out, err);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(outcome->points.size(), 1u);
  const sim::Summary& s = outcome->points[0].summary;
  EXPECT_EQ(s.completed, 20) << err.str();
  EXPECT_EQ(s.rejected + s.unfinished, 0);
  EXPECT_THAT(out.str(), HasSubstr("Serving Benchmark Result"));
  EXPECT_THAT(out.str(), HasSubstr("P90 ITL (ms):"));

  std::ifstream file(config.out_path);
  const nlohmann::json j = nlohmann::json::parse(file);
  ASSERT_EQ(j["requests"].size(), 20u);
  EXPECT_EQ(j["completed"], 20);
  int64_t input_tokens = 0, output_tokens = 0;
  double max_diff = -1e9, min_diff = 1e9;
  for (const nlohmann::json& r : j["requests"]) {
    ASSERT_EQ(r["status"], "OK") << r.dump();
    ASSERT_FALSE(r["router"].is_null());
    const nlohmann::json& router = r["router"];
    // Counts add up: ignore_eos makes every output exactly as sampled, and the router agrees.
    EXPECT_EQ(r["output_len"], r["requested_output_len"]);
    EXPECT_EQ(router["completion_tokens"], r["output_len"]);
    EXPECT_EQ(router["prompt_tokens"], r["input_len"]);
    EXPECT_LE(r["input_len"].get<int64_t>() + r["output_len"].get<int64_t>(), 160);
    EXPECT_LE(r["itls_ms"].size() + 1, r["output_len"].get<size_t>());
    input_tokens += r["input_len"].get<int64_t>();
    output_tokens += r["output_len"].get<int64_t>();

    const double client_ttft = r["ttft_ms"].get<double>();
    const double router_ttft = router["timing"]["ttft_ms"].get<double>();
    EXPECT_GE(client_ttft, router_ttft - kBelowSlackMs) << r.dump();
    EXPECT_LE(client_ttft, router_ttft + kAboveSlackMs) << r.dump();
    max_diff = std::max(max_diff, client_ttft - router_ttft);
    min_diff = std::min(min_diff, client_ttft - router_ttft);
    // TPOT = (E2E - TTFT) / (n - 1) on both sides: the two ends each differ by at most the same
    // one-way delays, so the TPOTs differ by at most (above + below slack) / (n - 1).
    const int64_t n = r["output_len"].get<int64_t>();
    if (n > 1) {
      const double bound = (kAboveSlackMs + kBelowSlackMs) / static_cast<double>(n - 1);
      EXPECT_NEAR(r["tpot_ms"].get<double>(), router["timing"]["tpot_ms"].get<double>(), bound) << r.dump();
    }
    EXPECT_GE(r["e2e_ms"].get<double>(), router["timing"]["e2e_ms"].get<double>() - kBelowSlackMs);
  }
  EXPECT_EQ(j["total_input_tokens"], input_tokens);
  EXPECT_EQ(j["total_output_tokens"], output_tokens);
  EXPECT_EQ(s.total_output_tokens, output_tokens);
  std::printf("client TTFT - router TTFT: %.3f .. %.3f ms over 20 requests\n", min_diff, max_diff);
}

TEST_F(BenchE2eTest, SweepReportsTheHighestRateMeetingTheTarget) {
  BenchConfig config = Config();
  config.num_prompts = 6;
  config.sweep_rates = {4, 8};
  config.ttft_slo_ms = 10000;  // generous: both rates pass
  config.tpot_slo_ms = 10000;
  absl::StatusOr<BenchPlan> plan = PlanBench(config);
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::ostringstream out, err;
  absl::StatusOr<BenchOutcome> outcome = RunBench(config, *plan, out, err);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(outcome->points.size(), 2u);
  EXPECT_EQ(outcome->goodput_rate, 8.0) << out.str();
  EXPECT_THAT(out.str(), HasSubstr("Rate Sweep"));
  EXPECT_EQ(outcome->json["runs"].size(), 2u);
  EXPECT_EQ(outcome->json["goodput_rate"], 8.0);
  // Common random numbers: the same requests at both rates.
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(outcome->json["runs"][0]["requests"][i]["input_len"], outcome->json["runs"][1]["requests"][i]["input_len"]);
  }
}

// Ctrl-C (the interrupt flag `tandem bench` sets from SIGINT): the sweep stops at the first rate,
// requests in flight are cancelled and left out, and the summary covers the requests that ended.
TEST_F(BenchE2eTest, InterruptGivesAPartialSummaryAndStopsTheSweep) {
  BenchConfig config = Config();
  config.num_prompts = 60;  // 30 s of arrivals at 2 req/s: the interrupt comes long before the end
  config.sweep_rates = {2, 4};
  config.out_path = ::testing::TempDir() + "/loadgen_interrupt.json";
  std::atomic<bool> interrupt{false};
  config.interrupt = &interrupt;
  absl::StatusOr<BenchPlan> plan = PlanBench(config);
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::thread stopper([&interrupt] {
    absl::SleepFor(absl::Seconds(4));
    interrupt.store(true);
  });
  std::ostringstream out, err;
  absl::StatusOr<BenchOutcome> outcome = RunBench(config, *plan, out, err);
  stopper.join();
  ASSERT_TRUE(outcome.ok()) << outcome.status() << "\n" << err.str();
  ASSERT_EQ(outcome->points.size(), 1u) << "the sweep goes on after an interrupt";
  const sim::Summary& s = outcome->points[0].summary;
  EXPECT_GE(s.completed, 1) << err.str();
  EXPECT_LT(s.completed + s.rejected + s.unfinished, 60);
  EXPECT_THAT(err.str(), HasSubstr("interrupted: the summary covers the"));
  EXPECT_THAT(err.str(), HasSubstr("interrupted: 1 of 2 rates ran"));
  EXPECT_THAT(out.str(), HasSubstr("Serving Benchmark Result"));

  std::ifstream file(config.out_path);
  const nlohmann::json j = nlohmann::json::parse(file);
  ASSERT_EQ(j["runs"].size(), 1u);
  EXPECT_EQ(j["runs"][0]["interrupted"], true);
  for (const nlohmann::json& r : j["runs"][0]["requests"]) {
    EXPECT_NE(r["status"], "CANCELLED") << "a request cancelled by the interrupt is in the summary: " << r.dump();
  }
}

TEST(BenchUnreachableTest, RouterUnreachableIsUnavailableNamingTheAddress) {
  BenchConfig config;
  config.router = "127.0.0.1:1";
  config.num_prompts = 2;
  config.connect_timeout = absl::Seconds(2);
  absl::StatusOr<BenchPlan> plan = PlanBench(config);
  ASSERT_TRUE(plan.ok());
  std::ostringstream out, err;
  absl::StatusOr<BenchOutcome> outcome = RunBench(config, *plan, out, err);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(outcome.status().message(), HasSubstr("cannot reach the router at 127.0.0.1:1"));
}

}  // namespace
}  // namespace tandem::loadgen
