// The bottom layer: shapes, dtype tags, and the sampling reference every backend's Sample op is
// checked against.
#include <cmath>
#include <map>
#include <vector>

#include "gtest/gtest.h"
#include "types/dtype.h"
#include "types/sampling.h"
#include "types/tensor.h"

namespace tandem {
namespace {

TEST(ShapeTest, HoldsUpToFourDimensionsWithoutAllocating) {
  const Shape s = {2, 3, 5, 7};
  EXPECT_EQ(s.rank(), 4);
  EXPECT_EQ(s.num_elements(), 210);
  EXPECT_EQ(s[2], 5);
  EXPECT_EQ(s, Shape(std::vector<int64_t>{2, 3, 5, 7}));
  EXPECT_FALSE(s == Shape({2, 3, 5}));
  EXPECT_EQ(Shape().num_elements(), 1);  // a scalar
  EXPECT_EQ(s.ToVector(), (std::vector<int64_t>{2, 3, 5, 7}));
}

TEST(TensorTest, BytesFollowTheDType) {
  EXPECT_EQ((Tensor{nullptr, DType::kBF16, {4, 8}}).num_bytes(), 64);
  EXPECT_EQ((Tensor{nullptr, DType::kI32, {3}}).num_bytes(), 12);
  EXPECT_EQ(DTypeName(DType::kI32), "I32");
  EXPECT_EQ(DTypeSize(DType::kI32), 4);
}

TEST(DTypeTest, IndexTensorsConvertAsIntegers) {
  const std::vector<int32_t> ids = {-3, 0, 70000};
  std::vector<float> f(3);
  ConvertToF32(DType::kI32, ids.data(), 3, f.data());
  EXPECT_EQ(f, (std::vector<float>{-3.0f, 0.0f, 70000.0f}));
  std::vector<int32_t> back(3);
  ConvertFromF32(DType::kI32, f.data(), 3, back.data());
  EXPECT_EQ(back, ids);
}

// F16 -> BF16 goes through float32 in chunks; checked element by element against the scalar conversions
// over more than one chunk, and a same-dtype conversion is a copy.
TEST(DTypeTest, ConvertDTypeBetweenHalfTypes) {
  std::vector<uint16_t> f16(10000);
  for (size_t i = 0; i < f16.size(); ++i) f16[i] = F16FromF32(static_cast<float>(i) * 0.37f - 1500.0f);
  std::vector<uint16_t> bf16(f16.size());
  ConvertDType(DType::kF16, f16.data(), static_cast<int64_t>(f16.size()), DType::kBF16, bf16.data());
  for (size_t i = 0; i < f16.size(); ++i) {
    ASSERT_EQ(bf16[i], F32ToBf16(F16ToF32(f16[i]))) << i;
  }
  std::vector<uint16_t> copy(f16.size());
  ConvertDType(DType::kF16, f16.data(), static_cast<int64_t>(f16.size()), DType::kF16, copy.data());
  EXPECT_EQ(copy, f16);
  std::vector<float> wide(f16.size());
  ConvertDType(DType::kBF16, bf16.data(), static_cast<int64_t>(bf16.size()), DType::kF32, wide.data());
  EXPECT_EQ(wide[9999], Bf16ToF32(bf16[9999]));
}

TEST(SampleRowReferenceTest, GreedyIsArgmaxLowestIdOnTiesAndSkipsNaN) {
  const std::vector<float> a = {0.1f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(SampleRowReference(a.data(), 4, SampleRow{}), 1);
  const std::vector<float> b = {NAN, -5.0f, NAN};
  EXPECT_EQ(SampleRowReference(b.data(), 3, SampleRow{}), 1);
  const std::vector<float> nan = {NAN, NAN};
  EXPECT_EQ(SampleRowReference(nan.data(), 2, SampleRow{.temperature = 1.0f, .uniform = 0.5}), 0);
}

TEST(SampleRowReferenceTest, UniformPicksByCumulativeProbabilityInSortedOrder) {
  // p = 0.5 (id 2), 0.3 (id 0), 0.2 (id 1) at temperature 1: cumulative 0.5, 0.8, 1.0.
  const std::vector<float> logits = {std::log(0.3f), std::log(0.2f), std::log(0.5f)};
  auto pick = [&](double u, float top_p = 1.0f, int32_t top_k = 0) {
    return SampleRowReference(logits.data(), 3,
                              SampleRow{.temperature = 1.0f, .top_k = top_k, .top_p = top_p, .uniform = u});
  };
  EXPECT_EQ(pick(0.0), 2);
  EXPECT_EQ(pick(0.49), 2);
  EXPECT_EQ(pick(0.51), 0);
  EXPECT_EQ(pick(0.79), 0);
  EXPECT_EQ(pick(0.81), 1);
  EXPECT_EQ(pick(0.999999), 1);
  // top_p 0.75 keeps ids 2 and 0 (0.5 < 0.75 <= 0.8), renormalised to 0.625 / 0.375.
  EXPECT_EQ(pick(0.62, 0.75f), 2);
  EXPECT_EQ(pick(0.63, 0.75f), 0);
  EXPECT_EQ(pick(0.999, 0.75f), 0);
  // top_k 1 is greedy whatever the draw.
  EXPECT_EQ(pick(0.99, 1.0f, 1), 2);
}

TEST(SampleRowReferenceTest, TiesAreOrderedById) {
  const std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(SampleRowReference(logits.data(), 4, SampleRow{.temperature = 1.0f, .uniform = 0.25 * i + 0.1}), i);
  }
}

TEST(SamplingParamsErrorTest, NamesTheField) {
  EXPECT_EQ(SamplingParamsError({}, 10), "");
  EXPECT_NE(SamplingParamsError({.temperature = -1.0f}, 10).find("temperature"), std::string::npos);
  EXPECT_NE(SamplingParamsError({.top_k = 11}, 10).find("top_k"), std::string::npos);
  EXPECT_NE(SamplingParamsError({.top_p = 0.0f}, 10).find("top_p"), std::string::npos);
}

TEST(TokenLogprobTest, IsLogSoftmax) {
  const std::vector<float> logits = {std::log(0.25f), std::log(0.75f)};
  EXPECT_NEAR(TokenLogprob(logits.data(), 2, 1), std::log(0.75), 1e-6);
  EXPECT_NEAR(TokenLogprob(logits.data(), 2, 0), std::log(0.25), 1e-6);
  const std::vector<float> with_inf = {-INFINITY, 0.0f};
  EXPECT_EQ(TokenLogprob(with_inf.data(), 2, 0), -INFINITY);
  EXPECT_NEAR(TokenLogprob(with_inf.data(), 2, 1), 0.0, 1e-12);
}

}  // namespace
}  // namespace tandem
