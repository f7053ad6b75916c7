// Element types of weights, activations, KV caches and index tensors, and scalar conversions between
// them. Part of the bottom layer: no abseil, no protobuf, includable from .cu files.
#ifndef TANDEM_TYPES_DTYPE_H_
#define TANDEM_TYPES_DTYPE_H_

#include <cstdint>
#include <cstring>
#include <string_view>

namespace tandem {

// kI32 tags index tensors (token ids, positions, slot mapping, block tables): they are never floats.
enum class DType { kF32, kF16, kBF16, kI32 };

// Bytes per element.
inline int DTypeSize(DType dtype) { return dtype == DType::kF16 || dtype == DType::kBF16 ? 2 : 4; }

// "F32", "F16", "BF16", "I32" (the safetensors spelling).
std::string_view DTypeName(DType dtype);

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

// Converts `count` elements of a floating `dtype` at `src` to float (kI32 is not a float type: the
// values are converted as integers).
void ConvertToF32(DType dtype, const void* src, int64_t count, float* dst);
// Converts `count` floats to `dtype` at `dst` (kI32: rounded toward zero).
void ConvertFromF32(DType dtype, const float* src, int64_t count, void* dst);
// Converts `count` floating elements of `src_dtype` to `dst_dtype` (a plain copy when they are the
// same), through float32 in small chunks: no temporary the size of the input.
void ConvertDType(DType src_dtype, const void* src, int64_t count, DType dst_dtype, void* dst);

}  // namespace tandem

#endif  // TANDEM_TYPES_DTYPE_H_
