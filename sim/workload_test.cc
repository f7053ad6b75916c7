#include "sim/workload.h"

#include <algorithm>
#include <cmath>

#include "gtest/gtest.h"
#include "sim/metrics.h"

namespace tandem::sim {
namespace {

TEST(QuantileTableTest, InterpolatesInLogSpace) {
  QuantileTable t{{0, 0.5, 1}, {10, 100, 1000}};
  EXPECT_DOUBLE_EQ(t.Quantile(0), 10);
  EXPECT_NEAR(t.Quantile(0.25), std::sqrt(10.0 * 100.0), 1e-9);
  EXPECT_NEAR(t.Quantile(0.5), 100, 1e-9);
  EXPECT_DOUBLE_EQ(t.Quantile(1), 1000);
}

TEST(WorkloadTest, ShareGptMatchesTheQuantileTable) {
  LengthSpec spec = *BuiltinLengthSpec("sharegpt");
  Workload w = *MakeSyntheticWorkload(spec, {}, 20000, 1);
  std::vector<double> prompts, outputs;
  for (const SimRequest& r : w.requests) {
    prompts.push_back(r.prompt_len);
    outputs.push_back(r.output_len);
    EXPECT_LT(r.prompt_len + r.output_len, 2048);
    EXPECT_GE(r.output_len, 1);
  }
  // Medians 685 / 78, p90 1546 / 512 (SLO_SIM.md section 3).
  EXPECT_NEAR(Percentile(prompts, 50), 685, 685 * 0.05);
  EXPECT_NEAR(Percentile(outputs, 50), 78, 78 * 0.08);
  EXPECT_NEAR(Percentile(prompts, 90), 1546, 1546 * 0.05);
  EXPECT_NEAR(Percentile(outputs, 90), 512, 512 * 0.08);
}

TEST(WorkloadTest, UnitRateArrivalsScaleWithCommonRandomNumbers) {
  LengthSpec spec = *BuiltinLengthSpec("humaneval");
  Workload w = *MakeSyntheticWorkload(spec, {.type = "poisson"}, 50000, 3);
  EXPECT_EQ(w.requests.front().arrival_s, 0.0);
  const double mean_gap = w.requests.back().arrival_s / (w.requests.size() - 1);
  EXPECT_NEAR(mean_gap, 1.0, 0.02);
  Workload fast = ScaleToRate(w, 4.0);
  for (size_t i = 0; i < w.requests.size(); i += 997) {
    EXPECT_DOUBLE_EQ(fast.requests[i].arrival_s, w.requests[i].arrival_s / 4.0);
    EXPECT_EQ(fast.requests[i].prompt_len, w.requests[i].prompt_len);
  }
}

TEST(WorkloadTest, GammaBurstinessHasRequestedCv) {
  LengthSpec spec = *BuiltinLengthSpec("sharegpt");
  Workload w = *MakeSyntheticWorkload(spec, {.type = "gamma", .cv = 3.0}, 100000, 5);
  double sum = 0, sum2 = 0;
  const size_t n = w.requests.size() - 1;
  for (size_t i = 1; i < w.requests.size(); ++i) {
    const double gap = w.requests[i].arrival_s - w.requests[i - 1].arrival_s;
    sum += gap;
    sum2 += gap * gap;
  }
  const double mean = sum / n;
  EXPECT_NEAR(mean, 1.0, 0.05);
  EXPECT_NEAR(std::sqrt(sum2 / n - mean * mean) / mean, 3.0, 0.2);
}

TEST(WorkloadTest, LengthsDoNotDependOnArrivalProcess) {
  LengthSpec spec = *BuiltinLengthSpec("sharegpt");
  Workload a = *MakeSyntheticWorkload(spec, {.type = "poisson"}, 100, 9);
  Workload b = *MakeSyntheticWorkload(spec, {.type = "gamma", .cv = 2}, 100, 9);
  for (size_t i = 0; i < a.requests.size(); ++i) EXPECT_EQ(a.requests[i].prompt_len, b.requests[i].prompt_len);
}

TEST(WorkloadTest, UnknownNamesAreErrors) {
  EXPECT_NE(BuiltinLengthSpec("chat").status().message().find("\"chat\""), std::string::npos);
  LengthSpec spec = *BuiltinLengthSpec("sharegpt");
  EXPECT_FALSE(MakeSyntheticWorkload(spec, {.type = "bursty"}, 10, 0).ok());
  EXPECT_FALSE(MakeSyntheticWorkload(spec, {.type = "gamma", .cv = 0}, 10, 0).ok());
  EXPECT_FALSE(MakeSyntheticWorkload(spec, {}, 0, 0).ok());
}

TEST(TraceTest, Jsonl) {
  Workload w = *ParseTrace(
      "{\"timestamp\": 0, \"input_length\": 100, \"output_length\": 10}\n"
      "{\"timestamp\": 2000, \"input_length\": 200, \"output_length\": 20, \"hash_ids\": [1]}\n"
      "{\"timestamp\": 1000, \"input_length\": 300, \"output_length\": 30}\n",
      "t.jsonl", {});
  ASSERT_EQ(w.requests.size(), 3u);
  EXPECT_DOUBLE_EQ(w.source_rate, 1.0);  // 2 gaps over 2 s
  EXPECT_EQ(w.requests[1].prompt_len, 300);  // sorted by time
  EXPECT_DOUBLE_EQ(w.requests[2].arrival_s, 2.0);
}

TEST(TraceTest, AzureCsvAndClipping) {
  Workload w = *ParseTrace(
      "TIMESTAMP,ContextTokens,GeneratedTokens\n"
      "2023-11-16 18:17:03.000,4000,1000\n"
      "2023-11-16 18:17:05.000,10,5\n"
      "2023-11-16 18:17:07.000,20,6\n",
      "azure.csv", {.max_total_tokens = 2500});
  ASSERT_EQ(w.requests.size(), 3u);
  EXPECT_DOUBLE_EQ(w.source_rate, 0.5);
  EXPECT_DOUBLE_EQ(w.native_rate, 1.0);
  EXPECT_DOUBLE_EQ(w.requests[1].arrival_s, 1.0);  // normalized to unit rate
  EXPECT_EQ(w.requests[0].prompt_len, 2000);
  EXPECT_EQ(w.requests[0].output_len, 500);
  Workload scaled = ScaleToRate(w, 0.5);
  EXPECT_DOUBLE_EQ(scaled.requests[2].arrival_s, 4.0);  // native timing restored
}

TEST(TraceTest, NativeCsvAndErrors) {
  Workload w = *ParseTrace("arrival_s,prompt_len,output_len\n0.5,10,2\n1.5,20,3\n", "n.csv", {});
  EXPECT_EQ(w.requests.size(), 2u);
  absl::StatusOr<Workload> bad = ParseTrace("a,b,c\n1,2,3\n", "x.csv", {});
  EXPECT_NE(bad.status().message().find("x.csv"), std::string::npos);
  bad = ParseTrace("{\"timestamp\": 0, \"input_length\": 1}\n", "y.jsonl", {});
  EXPECT_NE(bad.status().message().find("output_length"), std::string::npos);
}

}  // namespace
}  // namespace tandem::sim

namespace tandem::sim {
namespace {

TEST(MixedWorkloadTest, ClassesTakeTheirShareTheirLengthsAndTheirSlo) {
  absl::StatusOr<WorkloadClass> chat = ParseWorkloadClass("chat:sharegpt:0.8:200:50");
  absl::StatusOr<WorkloadClass> summarize = ParseWorkloadClass("summarize:longbench:0.2:2000:100");
  ASSERT_TRUE(chat.ok()) << chat.status();
  ASSERT_TRUE(summarize.ok()) << summarize.status();
  const ArrivalSpec arrival;
  absl::StatusOr<Workload> mixed = MakeMixedWorkload({*chat, *summarize}, arrival, 4000, 11);
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_EQ(mixed->class_names, (std::vector<std::string>{"chat", "summarize"}));
  // The same arrivals as the first class alone.
  absl::StatusOr<Workload> alone = MakeSyntheticWorkload(chat->lengths, arrival, 4000, 11);
  ASSERT_TRUE(alone.ok());
  int counts[2] = {0, 0};
  for (size_t i = 0; i < mixed->requests.size(); ++i) {
    const SimRequest& r = mixed->requests[i];
    EXPECT_DOUBLE_EQ(r.arrival_s, alone->requests[i].arrival_s);
    ASSERT_TRUE(r.slo_class == 0 || r.slo_class == 1) << r.slo_class;
    ++counts[r.slo_class];
    if (r.slo_class == 0) {
      EXPECT_EQ(r.ttft_slo_ms, 200);
      EXPECT_EQ(r.tpot_slo_ms, 50);
    } else {
      EXPECT_EQ(r.ttft_slo_ms, 2000);
      EXPECT_EQ(r.tpot_slo_ms, 100);
      // DistServe's LongBench rule: prompt = min(2040 - output, U[1900, 2048]) with output <= 1024.
      EXPECT_GE(r.prompt_len, 2040 - 1024);
      EXPECT_LE(r.prompt_len + r.output_len, 2040);
    }
  }
  // 4000 draws at 0.8 / 0.2: within 3 standard deviations (sqrt(4000 * 0.16) = 25).
  EXPECT_NEAR(counts[0], 3200, 75);
  EXPECT_NEAR(counts[1], 800, 75);
}

TEST(MixedWorkloadTest, BadClassesNameWhatIsWrong) {
  EXPECT_NE(ParseWorkloadClass("chat:sharegpt:0.8:200").status().message().find("NAME:LENGTHS"), std::string::npos);
  EXPECT_NE(ParseWorkloadClass("chat:nope:0.8:200:50").status().message().find("unknown length distribution"),
            std::string::npos);
  EXPECT_NE(ParseWorkloadClass("chat:sharegpt:0:200:50").status().message().find("weight"), std::string::npos);
  EXPECT_NE(ParseWorkloadClass("chat:sharegpt:1:x:50").status().message().find("TTFT SLO"), std::string::npos);
  EXPECT_NE(ParseWorkloadClass("chat:sharegpt:1:200:-5").status().message().find("TPOT SLO"), std::string::npos);
  EXPECT_NE(ParseWorkloadClass(":sharegpt:1:200:5").status().message().find("empty class name"), std::string::npos);
  EXPECT_FALSE(MakeMixedWorkload({}, ArrivalSpec{}, 10, 1).ok());
}

}  // namespace
}  // namespace tandem::sim
