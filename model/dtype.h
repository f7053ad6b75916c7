// Parsing the dtype names of checkpoints and config.json. The types and conversions themselves live in
// the bottom layer (types/dtype.h).
#ifndef TANDEM_MODEL_DTYPE_H_
#define TANDEM_MODEL_DTYPE_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "types/dtype.h"

namespace tandem {

// Accepts the safetensors spelling and the config.json torch_dtype spelling ("float32", "float16",
// "bfloat16") of the floating types a checkpoint may hold; anything else is InvalidArgument naming the
// value.
absl::StatusOr<DType> ParseDType(std::string_view name);

}  // namespace tandem

#endif  // TANDEM_MODEL_DTYPE_H_
