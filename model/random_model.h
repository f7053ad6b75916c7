// Random-weight checkpoints in the Hugging Face layout, for demos, tests and benchmarks
// (`tandem mkmodel`). Presets name shapes: `tiny` (tests), `small` (the demo's embedded default), and
// the real shapes `tinyllama-1.1b`, `llama3.2-1b`, `llama3-8b` (benchmarks; weights are random).
#ifndef TANDEM_MODEL_RANDOM_MODEL_H_
#define TANDEM_MODEL_RANDOM_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.h"

namespace tandem {

// NotFound listing the presets for an unknown name.
absl::StatusOr<ModelConfig> PresetConfig(const std::string& preset);
std::vector<std::string> PresetNames();

// Writes DIR/config.json and DIR/model.safetensors with weights drawn from `seed` in `dtype`
// (projections uniform with std 1/sqrt(fan_in), embeddings std 1, norms around 1). Deterministic:
// the same config, seed and dtype give the same bytes. The tokenizer is written separately.
absl::Status WriteRandomModel(const ModelConfig& config, DType dtype, uint64_t seed, const std::string& dir);

}  // namespace tandem

#endif  // TANDEM_MODEL_RANDOM_MODEL_H_
