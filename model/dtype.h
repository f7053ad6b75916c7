// Element types of checkpoints, weights and activations, and scalar conversions between them.
#ifndef TANDEM_MODEL_DTYPE_H_
#define TANDEM_MODEL_DTYPE_H_

#include <cstdint>
#include <cstring>
#include <string_view>

#include "absl/status/statusor.h"

namespace tandem {

enum class DType { kF32, kF16, kBF16 };

// Bytes per element.
inline int DTypeSize(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

// "F32", "F16", "BF16" (the safetensors spelling).
std::string_view DTypeName(DType dtype);
// Accepts the safetensors spelling and the config.json torch_dtype spelling ("float32", "float16",
// "bfloat16"); anything else is InvalidArgument naming the value.
absl::StatusOr<DType> ParseDType(std::string_view name);

inline float Bf16ToF32(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float out;
  std::memcpy(&out, &wide, 4);
  return out;
}

// Round to nearest even; NaN stays NaN.
inline uint16_t F32ToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float F16ToF32(uint16_t bits);
// Round to nearest even, overflow to infinity, subnormals kept.
uint16_t F16FromF32(float value);

// Converts `count` elements of `dtype` at `src` to float.
void ConvertToF32(DType dtype, const void* src, int64_t count, float* dst);
// Converts `count` floats to `dtype` at `dst`.
void ConvertFromF32(DType dtype, const float* src, int64_t count, void* dst);

}  // namespace tandem

#endif  // TANDEM_MODEL_DTYPE_H_
