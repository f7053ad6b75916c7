#include "model/sampler.h"

#include <cmath>
#include <map>
#include <vector>

#include "gtest/gtest.h"

namespace tandem {
namespace {

TEST(SamplerTest, GreedyTakesArgmaxAndLowestIdOnTies) {
  Sampler sampler(SamplingParams{});
  EXPECT_EQ(sampler.Sample(std::vector<float>{0.1f, 2.0f, -1.0f}), 1);
  EXPECT_EQ(sampler.Sample(std::vector<float>{3.0f, 1.0f, 3.0f}), 0);
  EXPECT_EQ(Argmax(std::vector<float>{NAN, -5.0f, NAN}), 1);
}

TEST(SamplerTest, SameSeedSameSequenceDifferentSeedDiffers) {
  std::vector<float> logits(50);
  for (int i = 0; i < 50; ++i) logits[i] = std::sin(i * 0.7f);
  auto draw = [&](uint64_t seed) {
    Sampler sampler({.temperature = 1.0f, .seed = seed});
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(sampler.Sample(logits));
    return out;
  };
  EXPECT_EQ(draw(7), draw(7));
  EXPECT_NE(draw(7), draw(8));
}

TEST(SamplerTest, TopKOneIsGreedyAndTopKLimitsTheSupport) {
  std::vector<float> logits = {1.0f, 5.0f, 4.0f, 3.0f, 0.0f};
  Sampler top1({.temperature = 2.0f, .top_k = 1, .seed = 3});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(top1.Sample(logits), 1);
  Sampler top2({.temperature = 100.0f, .top_k = 2, .seed = 3});
  for (int i = 0; i < 200; ++i) {
    const int32_t t = top2.Sample(logits);
    EXPECT_TRUE(t == 1 || t == 2) << t;
  }
}

TEST(SamplerTest, TopPKeepsTheSmallestSetReachingP) {
  // Probabilities 0.5, 0.3, 0.2 at temperature 1: top_p 0.75 keeps ids 0 and 1 only (0.5 < 0.75 <= 0.8).
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  Sampler sampler({.temperature = 1.0f, .top_p = 0.75f, .seed = 11});
  std::map<int32_t, int> counts;
  for (int i = 0; i < 4000; ++i) counts[sampler.Sample(logits)]++;
  EXPECT_EQ(counts[2], 0);
  // Renormalised: 0.625 vs 0.375.
  EXPECT_NEAR(counts[0] / 4000.0, 0.625, 0.03);
}

TEST(SamplerTest, TemperatureSamplesFollowTheSoftmax) {
  std::vector<float> logits = {0.0f, std::log(3.0f)};  // p = 0.25, 0.75
  Sampler sampler({.temperature = 1.0f, .seed = 5});
  int ones = 0;
  for (int i = 0; i < 8000; ++i) ones += sampler.Sample(logits);
  EXPECT_NEAR(ones / 8000.0, 0.75, 0.02);
}

TEST(SamplerTest, ValidationNamesTheField) {
  EXPECT_TRUE(ValidateSamplingParams({}, 10).ok());
  auto message = [](SamplingParams p) { return std::string(ValidateSamplingParams(p, 10).message()); };
  EXPECT_NE(message({.temperature = -1.0f}).find("temperature"), std::string::npos);
  EXPECT_NE(message({.temperature = NAN}).find("temperature"), std::string::npos);
  EXPECT_NE(message({.top_k = -1}).find("top_k"), std::string::npos);
  EXPECT_NE(message({.top_k = 11}).find("top_k"), std::string::npos);
  EXPECT_NE(message({.top_p = 0.0f}).find("top_p"), std::string::npos);
  EXPECT_NE(message({.top_p = 1.5f}).find("top_p"), std::string::npos);
}

TEST(RngTest, DoublesAreInUnitIntervalAndVary) {
  Rng rng(0);
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const double x = rng.NextDouble();
    ASSERT_GE(x, 0.0);
    ASSERT_LT(x, 1.0);
    sum += x;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
}

}  // namespace
}  // namespace tandem
