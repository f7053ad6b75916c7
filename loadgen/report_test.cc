#include "loadgen/report.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loadgen/bench.h"

namespace tandem::loadgen {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

RequestResult Done(int64_t index, double start, double first, double end, int64_t tokens,
                   std::vector<double> itls, std::vector<double> stages) {
  RequestResult r;
  r.index = index;
  r.input_len = 100;
  r.requested_output_len = tokens;
  r.output_len = tokens;
  r.scheduled_s = start;
  r.start_s = start;
  r.first_token_s = first;
  r.end_s = end;
  r.itls_ms = std::move(itls);
  r.status_code = 0;
  r.status_name = "OK";
  if (!stages.empty()) {
    r.has_final = true;
    r.final.prefill_queue_ms = stages[0];
    r.final.prefill_compute_ms = stages[1];
    r.final.kv_transfer_ms = stages[2];
    r.final.decode_queue_ms = stages[3];
    r.final.decode_compute_ms = stages[4];
    r.final.prefill_worker = "p0";
  }
  return r;
}

// Four requests with latencies worked out by hand:
//   r0: TTFT 100, TPOT (1100 - 100) / 10 = 100, E2E 1100, ITLs 50, 50
//   r1: TTFT 300, TPOT (1300 - 300) / 5 = 200, E2E 1300, ITL 100
//   r2: TTFT 50, one token (no TPOT sample; 0 against an SLO), E2E 50
//   r3: rejected (RESOURCE_EXHAUSTED) at 1.5 s
std::vector<RequestResult> HandRun() {
  std::vector<RequestResult> results;
  results.push_back(Done(0, 0.0, 0.1, 1.1, 11, {50, 50}, {1, 2, 3, 4, 5}));
  results.push_back(Done(1, 0.5, 0.8, 1.8, 6, {100}, {3, 4, 5, 6, 7}));
  results.push_back(Done(2, 1.0, 1.05, 1.05, 1, {}, {2, 3, 4, 0, 0}));
  RequestResult rejected;
  rejected.index = 3;
  rejected.input_len = 100;
  rejected.requested_output_len = 8;
  rejected.start_s = 1.5;
  rejected.end_s = 1.5;
  rejected.status_code = 8;
  rejected.status_name = "RESOURCE_EXHAUSTED";
  rejected.error = "request refused: predicted TTFT 900 ms > SLO 200 ms";
  results.push_back(rejected);
  return results;
}

TEST(ReportTest, LatencyStatisticsMatchHandComputedValues) {
  const sim::SloSpec slo = MakeSloSpec(200, 150, 0.9, sim::AttainmentMode::kJoint);
  const sim::Summary s = SummarizeRun(HandRun(), slo, {.metric_percentiles = {50, 90, 99}});
  EXPECT_EQ(s.num_requests, 4);
  EXPECT_EQ(s.completed, 3);
  EXPECT_EQ(s.rejected, 1);
  EXPECT_EQ(s.total_output_tokens, 18);
  // TTFT {100, 300, 50}: mean 150, population std sqrt((50^2 + 150^2 + 100^2) / 3), numpy-linear
  // P90 at position 1.8 of {50, 100, 300} = 100 + 0.8 * 200 = 260, P99 = 100 + 0.98 * 200 = 296.
  EXPECT_NEAR(s.ttft.mean, 150, 1e-9);
  EXPECT_NEAR(s.ttft.median, 100, 1e-9);
  EXPECT_NEAR(s.ttft.std, std::sqrt(35000.0 / 3), 1e-9);
  EXPECT_NEAR(s.ttft.p90, 260, 1e-9);
  EXPECT_NEAR(s.ttft.p99, 296, 1e-9);
  ASSERT_EQ(s.ttft.percentiles.size(), 3u);
  EXPECT_NEAR(s.ttft.percentiles[0].second, 100, 1e-9);
  EXPECT_NEAR(s.ttft.percentiles[2].second, 296, 1e-9);
  // TPOT {100, 200}: the one-token request is excluded.
  EXPECT_EQ(s.tpot.count, 2);
  EXPECT_NEAR(s.tpot.mean, 150, 1e-9);
  EXPECT_NEAR(s.tpot.p90, 190, 1e-9);
  // ITL pooled {50, 50, 100}.
  EXPECT_EQ(s.itl.count, 3);
  EXPECT_NEAR(s.itl.mean, 200.0 / 3, 1e-9);
  EXPECT_NEAR(s.itl.median, 50, 1e-9);
  EXPECT_NEAR(s.e2e.mean, (1100 + 1300 + 50) / 3.0, 1e-9);
  // Duration: first send (0) to last end (1.8 s).
  EXPECT_NEAR(s.duration_s, 1.8, 1e-12);
  EXPECT_NEAR(s.request_throughput, 3 / 1.8, 1e-9);
  EXPECT_NEAR(s.output_throughput, 18 / 1.8, 1e-9);
  // Stage means over the three Finals.
  EXPECT_NEAR(s.stage_ms[0], 2, 1e-12);
  EXPECT_NEAR(s.stage_ms[3], 10.0 / 3, 1e-12);
  EXPECT_NEAR(s.stage_ms[4], 4, 1e-12);
}

TEST(ReportTest, GoodputAndAttainmentCountRejectionsAsMisses) {
  // TTFT <= 200 and TPOT <= 150: r0 (100, 100) and r2 (50, one token) are good; r1 misses both
  // (300, 200); r3 was rejected.
  const sim::SloSpec slo = MakeSloSpec(200, 150, 0.5, sim::AttainmentMode::kJoint);
  const sim::Summary s = SummarizeRun(HandRun(), slo, {});
  EXPECT_DOUBLE_EQ(s.attainment, 0.5);
  EXPECT_DOUBLE_EQ(s.attainment_ttft, 0.5);
  EXPECT_DOUBLE_EQ(s.attainment_tpot, 0.5);
  EXPECT_TRUE(s.meets_target);  // 0.5 >= 0.5
  EXPECT_NEAR(s.request_goodput, 2 / 1.8, 1e-9);
  // No SLO given: every successful request is good.
  const sim::Summary none = SummarizeRun(HandRun(), MakeSloSpec(0, 0, 0.9, sim::AttainmentMode::kJoint), {});
  EXPECT_DOUBLE_EQ(none.attainment, 0.75);
  EXPECT_TRUE(std::isinf(MakeSloSpec(0, 0, 0.9, sim::AttainmentMode::kJoint).ttft_ms));
  EXPECT_TRUE(std::isnan(ClientTpotMs(HandRun()[3])));
  EXPECT_EQ(ClientTpotMs(HandRun()[2]), 0.0);
}

// Labels of a summary block ("Mean TTFT (ms):", section headers), in order.
std::vector<std::string> Labels(const std::string& block) {
  std::vector<std::string> labels;
  for (absl::string_view line : absl::StrSplit(block, '\n', absl::SkipEmpty())) {
    const size_t colon = line.find(':');
    labels.push_back(std::string(colon == absl::string_view::npos ? line : line.substr(0, colon)));
  }
  return labels;
}

TEST(ReportTest, BenchPrintsTheSimulatorsBlockPlusItl) {
  const sim::SloSpec slo = MakeSloSpec(200, 150, 0.9, sim::AttainmentMode::kJoint);
  const std::string bench = sim::FormatSummary(SummarizeRun(HandRun(), slo, {}), slo, 4.0, 0);
  std::vector<sim::RequestRecord> records;
  for (const RequestResult& r : HandRun()) records.push_back(ToSimRecord(r));
  const std::string simulated = sim::FormatSummary(sim::Summarize(records, slo), slo, 4.0, 0);
  EXPECT_THAT(bench, HasSubstr("============ Serving Benchmark Result ============\n"));
  EXPECT_THAT(bench, HasSubstr("---------------Inter-token Latency----------------\n"));
  EXPECT_THAT(bench, HasSubstr("Mean ITL (ms):"));
  EXPECT_THAT(simulated, Not(HasSubstr("ITL")));
  // Every line of the simulator's block appears in the bench block, in the same order; the bench
  // adds only the ITL section.
  const std::vector<std::string> sim_labels = Labels(simulated);
  std::vector<std::string> bench_labels;
  for (const std::string& label : Labels(bench)) {
    if (label.find("ITL") == std::string::npos && label.find("Inter-token") == std::string::npos) {
      bench_labels.push_back(label);
    }
  }
  EXPECT_EQ(bench_labels, sim_labels);
  // Value formatting follows vLLM: "{:<40} {:<10.2f}".
  EXPECT_THAT(bench, HasSubstr("Successful requests:                     3         \n"));
  EXPECT_THAT(bench, HasSubstr("Mean TTFT (ms):                          150.00    \n"));
}

TEST(ReportTest, MetricPercentilesReplaceTheDefaultLines) {
  const sim::SloSpec slo = MakeSloSpec(0, 0, 0.9, sim::AttainmentMode::kJoint);
  const std::string text =
      sim::FormatSummary(SummarizeRun(HandRun(), slo, {.metric_percentiles = {50, 99.9}, .max_concurrency = 4}),
                         slo, 4.0, 0);
  EXPECT_THAT(text, HasSubstr("P50 TTFT (ms):"));
  EXPECT_THAT(text, HasSubstr("P99.9 ITL (ms):"));
  EXPECT_THAT(text, Not(HasSubstr("P90 TTFT")));
  EXPECT_THAT(text, HasSubstr("Maximum request concurrency:             4"));
}

TEST(ReportTest, JsonHasSummaryAndPerRequestRecords) {
  const sim::SloSpec slo = MakeSloSpec(200, 150, 0.9, sim::AttainmentMode::kJoint);
  const std::vector<RequestResult> results = HandRun();
  const sim::Summary s = SummarizeRun(results, slo, {.metric_percentiles = {50}});
  RunInfo info;
  info.router = "127.0.0.1:1";
  info.model = "tiny";
  info.dataset = "chat";
  info.request_rate = std::numeric_limits<double>::infinity();
  const nlohmann::json j = RunToJson(info, s, slo, results);
  EXPECT_EQ(j["request_rate"], "inf");
  EXPECT_EQ(j["completed"], 3);
  EXPECT_EQ(j["failed"], 1);
  EXPECT_EQ(j["model_id"], "tiny");
  for (const char* key : {"duration", "total_input_tokens", "total_output_tokens", "request_throughput",
                          "request_goodput", "output_throughput", "total_token_throughput", "mean_ttft_ms",
                          "median_tpot_ms", "std_itl_ms", "p99_e2el_ms", "p50_ttft_ms", "attainment",
                          "mean_prefill_queue_ms", "mean_decode_compute_ms"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_NEAR(j["p50_ttft_ms"].get<double>(), 100, 1e-9);
  ASSERT_EQ(j["requests"].size(), 4u);
  const nlohmann::json& r0 = j["requests"][0];
  EXPECT_NEAR(r0["ttft_ms"].get<double>(), 100, 1e-9);
  EXPECT_NEAR(r0["tpot_ms"].get<double>(), 100, 1e-9);
  EXPECT_EQ(r0["itls_ms"].size(), 2u);
  EXPECT_EQ(r0["status"], "OK");
  EXPECT_EQ(r0["met_all"], true);
  EXPECT_EQ(r0["router"]["timing"]["kv_transfer_ms"], 3.0);
  EXPECT_EQ(r0["router"]["prefill_worker"], "p0");
  const nlohmann::json& r3 = j["requests"][3];
  EXPECT_TRUE(r3["ttft_ms"].is_null());
  EXPECT_TRUE(r3["router"].is_null());
  EXPECT_EQ(r3["status"], "RESOURCE_EXHAUSTED");
  EXPECT_THAT(r3["error"].get<std::string>(), HasSubstr("predicted TTFT"));
}

SweepPoint Point(double rate, bool meets) {
  SweepPoint p;
  p.rate = rate;
  p.summary.meets_target = meets;
  p.summary.attainment = meets ? 0.95 : 0.5;
  return p;
}

TEST(ReportTest, SweepPicksTheHighestPassingRate) {
  const std::vector<SweepPoint> monotone = {Point(1, true), Point(2, true), Point(4, false), Point(8, false)};
  EXPECT_EQ(GoodputRate(monotone), 2.0);
  // Not monotone (noise): the highest rate that passed.
  const std::vector<SweepPoint> noisy = {Point(1, true), Point(2, false), Point(4, true), Point(8, false)};
  EXPECT_EQ(GoodputRate(noisy), 4.0);
  const std::vector<SweepPoint> none = {Point(1, false), Point(2, false)};
  EXPECT_FALSE(GoodputRate(none).has_value());
  const sim::SloSpec slo = MakeSloSpec(200, 100, 0.9, sim::AttainmentMode::kJoint);
  const std::string table = FormatSweepTable(monotone, slo);
  EXPECT_THAT(table, HasSubstr("Goodput (req/s, attainment >= 90%):      2.00"));
  EXPECT_THAT(table, HasSubstr("4.00         50.00"));
  EXPECT_THAT(FormatSweepTable(none, slo), HasSubstr("none of the rates"));
}

TEST(ReportTest, FlagListsParseAndNameTheFlag) {
  EXPECT_EQ(*ParseRateList("1,2, 4.5", "rates"), (std::vector<double>{1, 2, 4.5}));
  EXPECT_EQ(*ParseSweepSpec("1:4:4"), (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(*ParseSweepSpec("2:2:1"), (std::vector<double>{2}));
  EXPECT_EQ(*ParsePercentileList("50,90,99.9"), (std::vector<double>{50, 90, 99.9}));
  EXPECT_THAT(ParseRateList("1,x", "rates").status().message(), HasSubstr("--rates"));
  EXPECT_THAT(ParseRateList("1,-2", "rates").status().message(), HasSubstr("--rates"));
  EXPECT_THAT(ParseSweepSpec("4:1:3").status().message(), HasSubstr("--sweep"));
  EXPECT_THAT(ParseSweepSpec("1:4").status().message(), HasSubstr("--sweep"));
  EXPECT_THAT(ParsePercentileList("101").status().message(), HasSubstr("--metric-percentiles"));

  BenchConfig config;
  config.num_prompts = 10;
  EXPECT_THAT(ValidateBenchConfig(config).message(), HasSubstr("--router"));
  config.router = "localhost:1";
  EXPECT_TRUE(ValidateBenchConfig(config).ok());
  config.rate = 2.0;
  config.sweep_rates = {1, 2};
  EXPECT_THAT(ValidateBenchConfig(config).message(), HasSubstr("--rate"));
  config.sweep_rates.clear();
  config.attainment_target = 1.5;
  EXPECT_THAT(ValidateBenchConfig(config).message(), HasSubstr("--attainment-target"));
  config.attainment_target = 0.9;
  config.duration_s = 5;
  EXPECT_THAT(ValidateBenchConfig(config).message(), HasSubstr("--duration-s"));
}

}  // namespace
}  // namespace tandem::loadgen
