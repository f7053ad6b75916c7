#include "sim/metrics.h"

#include "gtest/gtest.h"

namespace tandem::sim {
namespace {

RequestRecord Done(double arrival, double first, double finish, int64_t output_len) {
  RequestRecord r;
  r.prompt_len = 10;
  r.output_len = output_len;
  r.finished = true;
  r.arrival_s = arrival;
  r.prefill_start_s = arrival;
  r.first_token_s = first;
  r.decode_start_s = first;
  r.finish_s = finish;
  return r;
}

TEST(MetricsTest, PercentileMatchesNumpy) {
  // numpy.percentile([1, 2, 3, 4], 90) == 3.7; 50 -> 2.5.
  EXPECT_DOUBLE_EQ(Percentile({4, 1, 3, 2}, 90), 3.7);
  EXPECT_DOUBLE_EQ(Percentile({4, 1, 3, 2}, 50), 2.5);
  EXPECT_DOUBLE_EQ(Percentile({}, 50), 0.0);
}

TEST(MetricsTest, TpotDefinitions) {
  RequestRecord r = Done(0, 0.1, 1.1, 11);
  EXPECT_DOUBLE_EQ(TpotMs(r, TpotDefinition::kClient), 100.0);
  EXPECT_NEAR(TpotMs(r, TpotDefinition::kDistServeSim), 1000.0 / 11, 1e-9);
}

TEST(MetricsTest, JointAttainmentCountsMissesAndRejections) {
  SloSpec slo{.ttft_ms = 200, .tpot_ms = 100, .target = 0.5};
  std::vector<RequestRecord> records = {
      Done(0, 0.1, 1.1, 11),    // ttft 100, tpot 100: met (<= inclusive)
      Done(0, 0.3, 1.3, 11),    // ttft 300: miss
      Done(0, 0.1, 2.1, 11),    // tpot 200: miss
      Done(0, 0.05, 0.05, 1),   // one token: tpot 0, met
  };
  RequestRecord rejected;
  rejected.rejected = true;
  rejected.arrival_s = 0;
  records.push_back(rejected);
  Summary s = Summarize(records, slo);
  EXPECT_EQ(s.num_requests, 5);
  EXPECT_EQ(s.completed, 4);
  EXPECT_EQ(s.rejected, 1);
  EXPECT_DOUBLE_EQ(s.attainment, 2.0 / 5);
  EXPECT_DOUBLE_EQ(s.attainment_ttft, 3.0 / 5);
  EXPECT_DOUBLE_EQ(s.attainment_tpot, 3.0 / 5);
  EXPECT_FALSE(s.meets_target);
  EXPECT_EQ(s.tpot.count, 3);  // output_len 1 excluded, as vLLM does
  EXPECT_NEAR(s.duration_s, 2.1, 1e-12);
  EXPECT_NEAR(s.request_goodput, 2 / 2.1, 1e-12);
  const std::string jsonl = RecordsToJsonl(records, slo);
  EXPECT_NE(jsonl.find("\"met_all\":true"), std::string::npos);
  EXPECT_NE(FormatSummary(s, slo, 1.0, 2).find("Request goodput (req/s):"), std::string::npos);
}

TEST(MetricsTest, SeparatePercentileModeIsStrict) {
  SloSpec slo{.ttft_ms = 200, .tpot_ms = 100, .target = 0.9, .mode = AttainmentMode::kSeparatePercentile};
  std::vector<RequestRecord> records;
  for (int i = 0; i < 10; ++i) records.push_back(Done(0, 0.1, 1.0, 11));  // tpot 90, ttft 100
  EXPECT_TRUE(Summarize(records, slo).meets_target);
  slo.ttft_ms = 100;  // P90 == SLO is not < SLO
  EXPECT_FALSE(Summarize(records, slo).meets_target);
}

// A request with an SLO of its own (a class of a mixed workload) is judged by it, not by the run's.
TEST(MetricsTest, ARequestsOwnSloOverridesTheRunsAndClassesAreSummarised) {
  const SloSpec slo{.ttft_ms = 200, .tpot_ms = 100};
  RequestRecord tight = Done(0, 0.15, 1.15, 11);  // ttft 150, tpot 100
  tight.ttft_slo_ms = 100;
  tight.slo_class = 0;
  RequestRecord loose = Done(0, 0.5, 3.5, 11);  // ttft 500, tpot 300
  loose.ttft_slo_ms = 1000;
  loose.tpot_slo_ms = 500;
  loose.slo_class = 1;
  EXPECT_FALSE(MetTtft(tight, slo));  // 150 > its own 100, though under the run's 200
  EXPECT_TRUE(MetTpot(tight, slo));   // no TPOT of its own: the run's 100
  EXPECT_TRUE(MetTtft(loose, slo));
  EXPECT_TRUE(MetTpot(loose, slo));
  const std::vector<std::string> names = {"chat", "batch"};
  const Summary s = Summarize(std::vector<RequestRecord>{tight, loose}, slo, names);
  EXPECT_DOUBLE_EQ(s.attainment, 0.5);
  ASSERT_EQ(s.classes.size(), 2u);
  EXPECT_EQ(s.classes[0].name, "chat");
  EXPECT_EQ(s.classes[0].num_requests, 1);
  EXPECT_DOUBLE_EQ(s.classes[0].attainment, 0.0);
  EXPECT_DOUBLE_EQ(s.classes[1].attainment, 1.0);
  const std::string text = FormatSummary(s, slo, 1.0, 0);
  EXPECT_NE(text.find("chat, 1 req, TTFT<=100 TPOT<=0"), std::string::npos) << text;
  EXPECT_NE(text.find("own SLO"), std::string::npos) << text;
}

}  // namespace
}  // namespace tandem::sim
