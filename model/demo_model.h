// A random-weight model with a working tokenizer, in the Hugging Face layout: what `tandem mkmodel`
// writes, and the fixture of tests and benchmarks that run a whole cluster. Separate from
// random_model.h so that the engine libraries do not link the tokenizer.
#ifndef TANDEM_MODEL_DEMO_MODEL_H_
#define TANDEM_MODEL_DEMO_MODEL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "model/config.h"

namespace tandem {

// Writes DIR/config.json, DIR/model.safetensors (WriteRandomModel) and DIR/tokenizer.json: a byte-level
// BPE trained on embedded text up to 1024 tokens, the rest of the vocabulary as reserved special tokens
// (so every id the model can produce decodes), "<s>" and "</s>" as BOS and EOS in the config.
absl::Status WriteDemoModel(ModelConfig config, DType dtype, uint64_t seed, const std::string& dir);

}  // namespace tandem

#endif  // TANDEM_MODEL_DEMO_MODEL_H_
