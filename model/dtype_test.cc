#include "model/dtype.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem {
namespace {

float FromBits(uint32_t bits) {
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

uint32_t ToBits(float value) {
  uint32_t out;
  std::memcpy(&out, &value, 4);
  return out;
}

bool IsF16NaN(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

TEST(DTypeTest, SizesAndNames) {
  EXPECT_EQ(DTypeSize(DType::kF32), 4);
  EXPECT_EQ(DTypeSize(DType::kF16), 2);
  EXPECT_EQ(DTypeSize(DType::kBF16), 2);
  EXPECT_EQ(DTypeName(DType::kF32), "F32");
  EXPECT_EQ(DTypeName(DType::kF16), "F16");
  EXPECT_EQ(DTypeName(DType::kBF16), "BF16");
}

TEST(DTypeTest, ParseAcceptsSafetensorsAndTorchSpellings) {
  EXPECT_EQ(*ParseDType("F32"), DType::kF32);
  EXPECT_EQ(*ParseDType("float32"), DType::kF32);
  EXPECT_EQ(*ParseDType("F16"), DType::kF16);
  EXPECT_EQ(*ParseDType("float16"), DType::kF16);
  EXPECT_EQ(*ParseDType("BF16"), DType::kBF16);
  EXPECT_EQ(*ParseDType("bfloat16"), DType::kBF16);
}

TEST(DTypeTest, ParseRefusesOthersNamingTheValue) {
  absl::StatusOr<DType> parsed = ParseDType("int8");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(parsed.status().message()), testing::HasSubstr("int8"));
}

TEST(F16Test, ToF32KnownBitPatterns) {
  EXPECT_EQ(F16ToF32(0x3c00), 1.0f);
  EXPECT_EQ(F16ToF32(0xc100), -2.5f);
  EXPECT_EQ(F16ToF32(0x3800), 0.5f);
  EXPECT_EQ(F16ToF32(0x7bff), 65504.0f);
  EXPECT_EQ(F16ToF32(0x0400), std::ldexp(1.0f, -14));     // smallest normal
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));     // smallest subnormal
  EXPECT_EQ(F16ToF32(0x03ff), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(F16ToF32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(ToBits(F16ToF32(0x0000)), 0x00000000u);
  EXPECT_EQ(ToBits(F16ToF32(0x8000)), 0x80000000u);  // -0 keeps its sign
  EXPECT_EQ(F16ToF32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(F16ToF32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(F16ToF32(0x7e00)));
  EXPECT_TRUE(std::isnan(F16ToF32(0x7c01)));  // signalling pattern is still NaN
  EXPECT_TRUE(std::isnan(F16ToF32(0xfe00)));
}

TEST(F16Test, FromF32KnownBitPatterns) {
  EXPECT_EQ(F16FromF32(1.0f), 0x3c00);
  EXPECT_EQ(F16FromF32(-2.5f), 0xc100);
  EXPECT_EQ(F16FromF32(0.5f), 0x3800);
  EXPECT_EQ(F16FromF32(65504.0f), 0x7bff);
  EXPECT_EQ(F16FromF32(0.0f), 0x0000);
  EXPECT_EQ(F16FromF32(-0.0f), 0x8000);
  EXPECT_EQ(F16FromF32(std::ldexp(1.0f, -14)), 0x0400);
  EXPECT_EQ(F16FromF32(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(F16FromF32(std::ldexp(1023.0f, -24)), 0x03ff);
  EXPECT_EQ(F16FromF32(-std::ldexp(5.0f, -24)), 0x8005);
  EXPECT_EQ(F16FromF32(std::ldexp(1.0f, -15)), 0x0200);
  EXPECT_EQ(F16FromF32(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(F16FromF32(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_TRUE(IsF16NaN(F16FromF32(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(IsF16NaN(F16FromF32(FromBits(0x7f800001u))));  // NaN with payload only in low bits
  EXPECT_TRUE(IsF16NaN(F16FromF32(FromBits(0xffc00000u))));
}

TEST(F16Test, FromF32OverflowsToInfinity) {
  EXPECT_EQ(F16FromF32(65519.0f), 0x7bff);  // below the halfway point to 65536
  EXPECT_EQ(F16FromF32(65520.0f), 0x7c00);  // the tie rounds to even: infinity
  EXPECT_EQ(F16FromF32(1e6f), 0x7c00);
  EXPECT_EQ(F16FromF32(-1e30f), 0xfc00);
  EXPECT_EQ(F16FromF32(std::numeric_limits<float>::max()), 0x7c00);
}

TEST(F16Test, FromF32RoundsTiesToEven) {
  // Normals: 1 + 2^-11 is halfway between 0x3c00 and 0x3c01.
  EXPECT_EQ(F16FromF32(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(F16FromF32(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(F16FromF32(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3c01);
  EXPECT_EQ(F16FromF32(std::nextafter(1.0f + std::ldexp(1.0f, -11), 0.0f)), 0x3c00);
  EXPECT_EQ(F16FromF32(-(1.0f + 3 * std::ldexp(1.0f, -11))), 0xbc02);
  // A carry out of the mantissa moves to the next binade: 2047.5 is between 0x67ff and 0x6800.
  EXPECT_EQ(F16FromF32(2047.5f), 0x6800);
  // Subnormals: 2^-25 is halfway between 0 and the smallest subnormal.
  EXPECT_EQ(F16FromF32(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(F16FromF32(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(F16FromF32(std::ldexp(3.0f, -25)), 0x0002);
  EXPECT_EQ(F16FromF32(std::ldexp(5.0f, -25)), 0x0002);
  EXPECT_EQ(F16FromF32(std::ldexp(1.0f, -30)), 0x0000);
  EXPECT_EQ(F16FromF32(-std::ldexp(1.0f, -30)), 0x8000);
  // The largest subnormal plus half a step rounds up to the smallest normal.
  EXPECT_EQ(F16FromF32(std::ldexp(1023.5f, -24)), 0x0400);
}

TEST(F16Test, AllBitPatternsRoundTrip) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float wide = F16ToF32(bits);
    const uint16_t back = F16FromF32(wide);
    if (IsF16NaN(bits)) {
      EXPECT_TRUE(std::isnan(wide)) << std::hex << h;
      EXPECT_TRUE(IsF16NaN(back)) << std::hex << h;
    } else {
      EXPECT_EQ(back, bits) << std::hex << h;
    }
  }
}

// Reference rounding by search over every finite half: nearest value, ties to the even bit pattern.
uint16_t ReferenceF16(float value) {
  static const std::vector<double> kValues = [] {
    std::vector<double> values;
    for (uint32_t h = 0; h <= 0x7bff; ++h) values.push_back(F16ToF32(static_cast<uint16_t>(h)));
    return values;
  }();
  const uint16_t sign = std::signbit(value) ? 0x8000 : 0;
  const double magnitude = std::fabs(static_cast<double>(value));
  if (magnitude >= 65520.0) return sign | 0x7c00;
  auto upper = std::lower_bound(kValues.begin(), kValues.end(), magnitude);
  if (upper == kValues.end()) return sign | 0x7bff;  // (65504, 65520): nearer the largest half
  const uint16_t hi = static_cast<uint16_t>(upper - kValues.begin());
  if (*upper == magnitude || hi == 0) return sign | hi;
  const uint16_t lo = hi - 1;
  const double below = magnitude - kValues[lo];
  const double above = kValues[hi] - magnitude;
  if (below < above) return sign | lo;
  if (above < below) return sign | hi;
  return sign | ((lo & 1) == 0 ? lo : hi);
}

TEST(F16Test, FromF32MatchesReferenceRounding) {
  std::vector<float> inputs;
  // Every midpoint between neighbouring halves, and the floats just either side of it.
  for (uint32_t h = 0; h < 0x7bff; ++h) {
    const float mid = static_cast<float>(
        (static_cast<double>(F16ToF32(static_cast<uint16_t>(h))) + F16ToF32(static_cast<uint16_t>(h + 1))) /
        2);
    inputs.push_back(mid);
    inputs.push_back(std::nextafter(mid, 0.0f));
    inputs.push_back(std::nextafter(mid, 1e9f));
  }
  std::mt19937 rng(1234);
  std::uniform_int_distribution<uint32_t> exponent(90, 145);  // spans underflow to overflow
  std::uniform_int_distribution<uint32_t> mantissa(0, 0x7fffff);
  for (int i = 0; i < 200000; ++i) inputs.push_back(FromBits((exponent(rng) << 23) | mantissa(rng)));
  for (float value : inputs) {
    ASSERT_EQ(F16FromF32(value), ReferenceF16(value)) << value;
    ASSERT_EQ(F16FromF32(-value), ReferenceF16(-value)) << -value;
  }
}

TEST(Bf16Test, KnownBitPatterns) {
  EXPECT_EQ(F32ToBf16(1.0f), 0x3f80);
  EXPECT_EQ(F32ToBf16(-2.5f), 0xc020);
  EXPECT_EQ(F32ToBf16(0.0f), 0x0000);
  EXPECT_EQ(F32ToBf16(-0.0f), 0x8000);
  EXPECT_EQ(F32ToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(F32ToBf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(Bf16ToF32(0x3f80), 1.0f);
  EXPECT_EQ(Bf16ToF32(0xc020), -2.5f);
  EXPECT_EQ(Bf16ToF32(0x7f7f), FromBits(0x7f7f0000u));  // largest finite bf16
  EXPECT_EQ(Bf16ToF32(0x0001), FromBits(0x00010000u));  // subnormal, as float has them too
  EXPECT_EQ(F32ToBf16(FromBits(0x00010000u)), 0x0001);
  EXPECT_EQ(Bf16ToF32(0x7f80), std::numeric_limits<float>::infinity());
}

TEST(Bf16Test, RoundsTiesToEvenAndOverflows) {
  EXPECT_EQ(F32ToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);      // tie, even stays
  EXPECT_EQ(F32ToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(F32ToBf16(std::nextafter(1.0f + std::ldexp(1.0f, -8), 2.0f)), 0x3f81);
  EXPECT_EQ(F32ToBf16(FromBits(0x3f80ffffu)), 0x3f81);
  EXPECT_EQ(F32ToBf16(std::numeric_limits<float>::max()), 0x7f80);  // past the last bf16: infinity
}

TEST(Bf16Test, NaNStaysNaN) {
  EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(std::numeric_limits<float>::quiet_NaN()))));
  // Payload only in the low 16 bits: truncation alone would turn this into infinity.
  EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(FromBits(0x7f800001u)))));
  EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(FromBits(0xff800001u)))));
  EXPECT_TRUE(std::isnan(Bf16ToF32(0x7fc0)));
}

TEST(Bf16Test, AllBitPatternsRoundTrip) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float wide = Bf16ToF32(bits);
    if (std::isnan(wide)) {
      EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(wide)))) << std::hex << h;
    } else {
      EXPECT_EQ(F32ToBf16(wide), bits) << std::hex << h;
    }
  }
}

TEST(ConvertTest, ArraysMatchScalarConversions) {
  const std::vector<float> values = {0.0f, 1.0f, -2.5f, 3.14159f, 65504.0f, 1e-6f, -7e4f};
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    std::vector<uint8_t> packed(values.size() * DTypeSize(dtype));
    ConvertFromF32(dtype, values.data(), static_cast<int64_t>(values.size()), packed.data());
    std::vector<float> unpacked(values.size());
    ConvertToF32(dtype, packed.data(), static_cast<int64_t>(values.size()), unpacked.data());
    for (size_t i = 0; i < values.size(); ++i) {
      float expected = values[i];
      if (dtype == DType::kF16) expected = F16ToF32(F16FromF32(values[i]));
      if (dtype == DType::kBF16) expected = Bf16ToF32(F32ToBf16(values[i]));
      EXPECT_EQ(ToBits(unpacked[i]), ToBits(expected)) << DTypeName(dtype) << " element " << i;
    }
  }
}

}  // namespace
}  // namespace tandem
