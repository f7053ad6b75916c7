#include "router/slo_report.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem::router {
namespace {

using ::testing::HasSubstr;

RequestTiming Timing() {
  RequestTiming t;
  t.prefill_queue_ms = 10;
  t.prefill_compute_ms = 40;
  t.kv_transfer_ms = 5;
  t.decode_queue_ms = 1;
  t.decode_compute_ms = 30;
  t.ttft_ms = 60;
  t.e2e_ms = 160;
  t.tpot_ms = ComputeTpotMs(t.e2e_ms, t.ttft_ms, 11);
  return t;
}

TEST(SloReportTest, TpotIsTheMeanGapAfterTheFirstToken) {
  EXPECT_DOUBLE_EQ(ComputeTpotMs(160, 60, 11), 10.0);
  EXPECT_DOUBLE_EQ(ComputeTpotMs(160, 60, 1), 0.0);
  EXPECT_DOUBLE_EQ(ComputeTpotMs(160, 60, 0), 0.0);
}

TEST(SloReportTest, NoObjectivesAreAlwaysMet) {
  const SloVerdict v = EvaluateSlo(Timing(), {});
  EXPECT_TRUE(v.ttft_met);
  EXPECT_TRUE(v.tpot_met);
  EXPECT_EQ(v.missed_stage, RequestStage::kNone);
  EXPECT_TRUE(v.explanation.empty());
}

TEST(SloReportTest, MetObjectives) {
  const SloVerdict v = EvaluateSlo(Timing(), {100, 20});
  EXPECT_TRUE(v.ttft_met && v.tpot_met);
  EXPECT_EQ(v.missed_stage, RequestStage::kNone);
}

TEST(SloReportTest, MissedTtftNamesTheLargestStage) {
  const SloVerdict v = EvaluateSlo(Timing(), {50, 0});
  EXPECT_FALSE(v.ttft_met);
  EXPECT_TRUE(v.tpot_met);
  EXPECT_EQ(v.missed_stage, RequestStage::kPrefillCompute);
  EXPECT_THAT(v.explanation, HasSubstr("TTFT 60.0 ms > SLO 50 ms"));
  EXPECT_THAT(v.explanation, HasSubstr("prefill_compute (40.0 ms)"));
}

TEST(SloReportTest, MissedBoth) {
  const SloVerdict v = EvaluateSlo(Timing(), {50, 5});
  EXPECT_FALSE(v.ttft_met);
  EXPECT_FALSE(v.tpot_met);
  EXPECT_THAT(v.explanation, HasSubstr(" and TPOT 10.00 ms > SLO 5 ms"));
}

TEST(SloReportTest, LargestStageTieGoesToTheEarlierStage) {
  RequestTiming t;
  t.kv_transfer_ms = 7;
  t.decode_compute_ms = 7;
  EXPECT_EQ(LargestStage(t), RequestStage::kKvTransfer);
  EXPECT_EQ(RequestStageName(RequestStage::kDecodeQueue), "decode_queue");
}

}  // namespace
}  // namespace tandem::router
