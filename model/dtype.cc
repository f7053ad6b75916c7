#include "model/dtype.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace tandem {

absl::StatusOr<DType> ParseDType(std::string_view name) {
  if (name == "F32" || name == "float32") return DType::kF32;
  if (name == "F16" || name == "float16") return DType::kF16;
  if (name == "BF16" || name == "bfloat16") return DType::kBF16;
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported dtype '", std::string(name), "' (supported: F32, F16, BF16)"));
}

}  // namespace tandem
