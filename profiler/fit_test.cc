#include "profiler/fit.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace tandem::profiler {
namespace {

// Deterministic +-`amplitude` relative noise.
double Noise(int i, double amplitude) { return 1.0 + amplitude * std::sin(1.7 * i + 0.3); }

std::vector<PrefillSample> PrefillSamples(double a, double b, double c, double noise) {
  std::vector<PrefillSample> samples;
  int i = 0;
  for (int64_t sequences : {1, 2, 4, 8}) {
    for (int64_t len : {16, 64, 128, 256, 512, 1024}) {
      const double sum = static_cast<double>(sequences * len);
      const double sum_sq = static_cast<double>(sequences) * len * len;
      samples.push_back({sequences, sequences * len, sum_sq, (a + b * sum + c * sum_sq) * Noise(i++, noise)});
    }
  }
  return samples;
}

TEST(FitTest, PrefillRecoversKnownCoefficients) {
  // The DistServe OPT-13B TP1 prefill fit (SLO_SIM.md): 18.1025 + 0.101912 l + 7.1223e-6 l^2.
  const std::vector<PrefillSample> samples = PrefillSamples(18.1025, 0.101912, 7.1223e-6, 0.0);
  absl::StatusOr<PrefillFit> fit = FitPrefill(samples);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_NEAR(fit->coefficients.a, 18.1025, 18.1025 * 1e-6);
  EXPECT_NEAR(fit->coefficients.b, 0.101912, 0.101912 * 1e-6);
  EXPECT_NEAR(fit->coefficients.c, 7.1223e-6, 7.1223e-6 * 1e-6);
  EXPECT_LT(fit->quality.max_rel_err, 1e-9);
  EXPECT_EQ(fit->quality.num_samples, 24);
}

TEST(FitTest, PrefillWithNoiseStaysClose) {
  const std::vector<PrefillSample> samples = PrefillSamples(2.0, 0.05, 1e-5, 0.03);
  absl::StatusOr<PrefillFit> fit = FitPrefill(samples);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_NEAR(fit->coefficients.a, 2.0, 0.2);
  EXPECT_NEAR(fit->coefficients.b, 0.05, 0.005);
  EXPECT_NEAR(fit->coefficients.c, 1e-5, 2e-6);
  EXPECT_LE(fit->quality.max_rel_err, 0.07);
}

TEST(FitTest, NegativeCoefficientIsClampedToZero) {
  // Times that fall with sum(l^2) at fixed sum(l) would want c < 0; the fit keeps c >= 0.
  std::vector<double> x1 = {100, 100, 200, 200, 400}, x2 = {10000, 2500, 40000, 10000, 160000};
  std::vector<double> t = {10, 11, 20, 21, 40};
  absl::StatusOr<policy::QuadraticCoefficients> q = FitRelativeNonNegative(x1, x2, t);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_GE(q->a, 0);
  EXPECT_GE(q->b, 0);
  EXPECT_GE(q->c, 0);
}

TEST(FitTest, RejectsTooFewOrNonPositiveSamples) {
  std::vector<double> two = {1, 2};
  EXPECT_EQ(FitRelativeNonNegative(two, two, two).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<double> x = {1, 2, 3}, t = {1, 0, 3};
  EXPECT_EQ(FitRelativeNonNegative(x, x, t).status().code(), absl::StatusCode::kInvalidArgument);
}

std::vector<DecodeSample> DecodeSamples(const DecodeFit& truth) {
  std::vector<DecodeSample> samples;
  for (int64_t batch : {1, 2, 4, 8, 16, 32, 64}) {
    for (int64_t context : {16, 64, 256, 1024}) {
      DecodeSample s{batch, batch * context, 0.0};
      s.ms = PredictDecode(truth, s);
      samples.push_back(s);
    }
  }
  return samples;
}

TEST(FitTest, DecodeOneRegime) {
  DecodeFit truth{{3.0, 2e-4, 0.05}, {3.0, 2e-4, 0.05}, 1000, false, {}};
  absl::StatusOr<DecodeFit> fit = FitDecode(DecodeSamples(truth));
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_FALSE(fit->two_regimes);
  EXPECT_NEAR(fit->small.a, 3.0, 1e-6);
  EXPECT_NEAR(fit->small.b, 2e-4, 1e-10);
  EXPECT_NEAR(fit->small.c, 0.05, 1e-8);
  EXPECT_LT(fit->quality.max_rel_err, 1e-9);
}

TEST(FitTest, DecodeFindsTwoRegimes) {
  // Small batches cost 0.05 ms per request, from 16 on 0.4 ms (a kernel switching paths);
  // continuous at the threshold: 10 + 0.05*15 = 10.75 <= 5 + 0.4*16 = 11.4.
  DecodeFit truth{{10.0, 2e-4, 0.05}, {5.0, 3e-4, 0.4}, 16, true, {}};
  absl::StatusOr<DecodeFit> fit = FitDecode(DecodeSamples(truth));
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_TRUE(fit->two_regimes);
  EXPECT_EQ(fit->bs_threshold, 16);
  EXPECT_NEAR(fit->small.a, 10.0, 1e-6);
  EXPECT_NEAR(fit->small.c, 0.05, 1e-8);
  EXPECT_NEAR(fit->large.a, 5.0, 1e-6);
  EXPECT_NEAR(fit->large.b, 3e-4, 1e-10);
  EXPECT_NEAR(fit->large.c, 0.4, 1e-8);
  EXPECT_LT(fit->quality.max_rel_err, 1e-9);
}

TEST(FitTest, DecodeSplitsOffBatchOne) {
  // This machine's shape: batch 1 takes a matrix-vector path (0.5 ms + context), every larger batch a
  // GEMM whose fixed cost is four times higher; one line through both misses batch 2 by ~2x.
  DecodeFit truth{{0.5, 1.4e-3, 0.0}, {2.0, 1.6e-3, 0.1}, 2, true, {}};
  absl::StatusOr<DecodeFit> fit = FitDecode(DecodeSamples(truth));
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_TRUE(fit->two_regimes);
  EXPECT_EQ(fit->bs_threshold, 2);
  EXPECT_NEAR(fit->small.a + fit->small.c, 0.5, 1e-6);  // one batch size: a and c are not separable
  EXPECT_NEAR(fit->small.b, 1.4e-3, 1e-9);
  EXPECT_NEAR(fit->large.a, 2.0, 1e-6);
  EXPECT_NEAR(fit->large.c, 0.1, 1e-8);
  EXPECT_LT(fit->quality.max_rel_err, 1e-6);
}

}  // namespace
}  // namespace tandem::profiler
