#include "loadgen/workload.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem::loadgen {
namespace {

using ::testing::HasSubstr;

TEST(WorkloadTest, DatasetNamesMapToTheSimulatorsDistributions) {
  EXPECT_EQ(DatasetLengthSpec("chat")->name, "sharegpt");
  EXPECT_EQ(DatasetLengthSpec("code")->name, "humaneval");
  EXPECT_EQ(DatasetLengthSpec("summarization")->name, "longbench");
  EXPECT_EQ(DatasetLengthSpec("azure_conv")->name, "azure_conv");
  absl::StatusOr<sim::LengthSpec> bad = DatasetLengthSpec("poetry");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("--dataset"));
}

TEST(WorkloadTest, ClipShrinksProportionallyKeepingOneTokenEach) {
  int64_t p = 300, o = 300;
  ClipToTotal(512, &p, &o);  // factor 512/600: 256 + 256
  EXPECT_EQ(p, 256);
  EXPECT_EQ(o, 256);
  p = 1000, o = 1;
  ClipToTotal(100, &p, &o);  // floor(1000 * 100/1001) = 99, output stays 1
  EXPECT_EQ(p, 99);
  EXPECT_EQ(o, 1);
  p = 10, o = 20;
  ClipToTotal(30, &p, &o);  // fits: unchanged
  EXPECT_EQ(p, 10);
  EXPECT_EQ(o, 20);
  ClipToTotal(0, &p, &o);  // no limit
  EXPECT_EQ(p + o, 30);
}

TEST(WorkloadTest, RatesShareRequestsAndScaleArrivals) {
  WorkloadOptions options;
  options.dataset = "code";
  options.num_prompts = 50;
  options.seed = 7;
  absl::StatusOr<sim::Workload> base = MakeBaseWorkload(options, 1.0);
  ASSERT_TRUE(base.ok()) << base.status();
  const std::vector<BenchRequest> slow = RequestsAtRate(*base, 1.0, 0, 0);
  const std::vector<BenchRequest> fast = RequestsAtRate(*base, 4.0, 0, 0);
  const std::vector<BenchRequest> burst = RequestsAtRate(*base, std::numeric_limits<double>::infinity(), 0, 0);
  ASSERT_EQ(slow.size(), 50u);
  ASSERT_EQ(fast.size(), 50u);
  ASSERT_EQ(burst.size(), 50u);
  for (size_t i = 0; i < slow.size(); ++i) {
    EXPECT_EQ(slow[i].index, fast[i].index);
    EXPECT_EQ(slow[i].prompt_len, fast[i].prompt_len);
    EXPECT_EQ(slow[i].output_len, fast[i].output_len);
    EXPECT_NEAR(fast[i].arrival_s * 4.0, slow[i].arrival_s, 1e-9);
    EXPECT_EQ(burst[i].arrival_s, 0.0);
  }
  EXPECT_EQ(slow[0].arrival_s, 0.0);
  // The same seed draws the same workload.
  absl::StatusOr<sim::Workload> again = MakeBaseWorkload(options, 1.0);
  EXPECT_EQ(again->requests[17].prompt_len, base->requests[17].prompt_len);
}

TEST(WorkloadTest, DurationKeepsArrivalsInsideTheWindowAtEveryRate) {
  WorkloadOptions options;
  options.duration_s = 10.0;
  options.seed = 1;
  absl::StatusOr<sim::Workload> base = MakeBaseWorkload(options, 8.0);
  ASSERT_TRUE(base.ok()) << base.status();
  EXPECT_GE(base->requests.back().arrival_s, 80.0);  // enough to fill 10 s at 8 req/s
  const std::vector<BenchRequest> at2 = RequestsAtRate(*base, 2.0, 0, 10.0);
  const std::vector<BenchRequest> at8 = RequestsAtRate(*base, 8.0, 0, 10.0);
  EXPECT_GT(at8.size(), at2.size());
  for (const BenchRequest& r : at8) EXPECT_LT(r.arrival_s, 10.0);
  // The lower rate's requests are a prefix of the higher rate's (common random numbers).
  for (size_t i = 0; i < at2.size(); ++i) EXPECT_EQ(at2[i].prompt_len, at8[i].prompt_len);
  options.num_prompts = 5;
  EXPECT_FALSE(MakeBaseWorkload(options, 8.0).ok());  // both given
}

TEST(WorkloadTest, BurstinessGivesGammaGaps) {
  WorkloadOptions options;
  options.num_prompts = 4000;
  options.cv = 2.0;  // vLLM burstiness 0.25
  absl::StatusOr<sim::Workload> base = MakeBaseWorkload(options, 1.0);
  ASSERT_TRUE(base.ok());
  double sum = 0, squares = 0;
  const int n = static_cast<int>(base->requests.size()) - 1;
  for (int i = 1; i <= n; ++i) {
    const double gap = base->requests[i].arrival_s - base->requests[i - 1].arrival_s;
    sum += gap;
    squares += gap * gap;
  }
  const double mean = sum / n;
  const double cv = std::sqrt(squares / n - mean * mean) / mean;
  EXPECT_NEAR(mean, 1.0, 0.15);
  EXPECT_NEAR(cv, 2.0, 0.3);
}

TEST(WorkloadTest, TraceReplaysAtItsRateOrScaled) {
  const std::string path = ::testing::TempDir() + "/loadgen_trace.jsonl";
  std::ofstream(path) << "{\"timestamp\": 0, \"input_length\": 100, \"output_length\": 10}\n"
                         "{\"timestamp\": 500, \"input_length\": 200, \"output_length\": 20}\n"
                         "{\"timestamp\": 1000, \"input_length\": 300, \"output_length\": 30}\n";
  WorkloadOptions options;
  options.trace = path;
  absl::StatusOr<sim::Workload> base = MakeBaseWorkload(options, 1.0);
  ASSERT_TRUE(base.ok()) << base.status();
  EXPECT_DOUBLE_EQ(base->source_rate, 2.0);  // 2 gaps in 1 s
  const std::vector<BenchRequest> own = RequestsAtRate(*base, base->source_rate, 250, 0);
  ASSERT_EQ(own.size(), 3u);
  EXPECT_NEAR(own[1].arrival_s, 0.5, 1e-9);
  EXPECT_NEAR(own[2].arrival_s, 1.0, 1e-9);
  EXPECT_EQ(own[2].prompt_len, 227);  // 330 tokens clipped to 250: floor(300 * 250/330)
  EXPECT_EQ(own[2].output_len, 22);
  options.trace = ::testing::TempDir() + "/missing.jsonl";
  absl::StatusOr<sim::Workload> missing = MakeBaseWorkload(options, 1.0);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("--trace"));
}

TEST(WorkloadTest, PromptIdsAreDeterministicAndInVocabulary) {
  const std::vector<int32_t> a = PromptTokenIds(3, 5, 200, 512);
  const std::vector<int32_t> b = PromptTokenIds(3, 5, 200, 512);
  const std::vector<int32_t> other = PromptTokenIds(3, 6, 200, 512);
  ASSERT_EQ(a.size(), 200u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other);
  for (int32_t id : a) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, 512);
  }
  EXPECT_NE(PromptTokenIds(4, 5, 200, 512), a);
}

}  // namespace
}  // namespace tandem::loadgen
