// The model's shape and numerics, read from a Hugging Face config.json.
//
// Supported: LlamaForCausalLM (LLaMA 2/3/3.x, TinyLlama), MistralForCausalLM, Qwen2ForCausalLM (q/k/v
// biases). Anything else, or a setting we do not implement (sliding windows that matter, other rope
// scaling types, other activations), is refused with InvalidArgument naming the field.
#ifndef TANDEM_MODEL_CONFIG_H_
#define TANDEM_MODEL_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/dtype.h"

namespace tandem {

// Llama 3 "rope_scaling": {"rope_type": "llama3", ...}. Absent means plain RoPE.
struct RopeScaling {
  bool enabled = false;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string architecture;  // "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"
  std::string model_type;    // "llama", "mistral", "qwen2"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // defaults to num_attention_heads when absent
  int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads when absent
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v projections carry biases (Qwen2: always)
  DType torch_dtype = DType::kF32;
  std::vector<int64_t> bos_token_ids;  // may be empty
  std::vector<int64_t> eos_token_ids;  // "eos_token_id" may be an int or a list

  int64_t q_size() const { return num_attention_heads * head_dim; }
  int64_t kv_size() const { return num_key_value_heads * head_dim; }
};

// Parses config.json text. `source` names the file in error messages.
absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text, std::string_view source);
// Reads and parses DIR/config.json.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir);
// Serializes a config as config.json text (used by `tandem mkmodel`); ParseModelConfig round-trips it.
std::string ModelConfigToJson(const ModelConfig& config);

}  // namespace tandem

#endif  // TANDEM_MODEL_CONFIG_H_
