#include "model/random_model.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "model/safetensors.h"
#include "model/sampler.h"

namespace tandem {
namespace {

ModelConfig Base(std::string arch, int64_t vocab, int64_t hidden, int64_t inter, int64_t layers, int64_t heads,
                 int64_t kv_heads, int64_t max_pos, double theta) {
  ModelConfig c;
  c.architecture = std::move(arch);
  c.model_type = "llama";
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = inter;
  c.num_hidden_layers = layers;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv_heads;
  c.head_dim = hidden / heads;
  c.max_position_embeddings = max_pos;
  c.rope_theta = theta;
  c.rms_norm_eps = 1e-5;
  c.bos_token_ids = {0};
  c.eos_token_ids = {1};
  return c;
}

}  // namespace

std::vector<std::string> PresetNames() {
  return {"tiny", "small", "medium", "tinyllama-1.1b", "llama3.2-1b", "llama3-8b"};
}

absl::StatusOr<ModelConfig> PresetConfig(const std::string& preset) {
  if (preset == "tiny") return Base("LlamaForCausalLM", 512, 64, 176, 2, 4, 2, 512, 10000.0);
  if (preset == "small") return Base("LlamaForCausalLM", 1024, 256, 688, 4, 8, 4, 2048, 10000.0);
  // ~25M parameters (~100 MB in f32): past the L3 cache, so decode streams weights from memory and a step
  // costs a few ms on one core, as on real hardware, while prefill stays compute-bound.
  if (preset == "medium") return Base("LlamaForCausalLM", 2048, 512, 1376, 8, 8, 4, 2048, 10000.0);
  if (preset == "tinyllama-1.1b") return Base("LlamaForCausalLM", 32000, 2048, 5632, 22, 32, 4, 2048, 10000.0);
  if (preset == "llama3.2-1b") {
    ModelConfig c = Base("LlamaForCausalLM", 128256, 2048, 8192, 16, 32, 8, 131072, 500000.0);
    c.tie_word_embeddings = true;
    c.rope_scaling = {true, 32.0, 1.0, 4.0, 8192};
    return c;
  }
  if (preset == "llama3-8b") return Base("LlamaForCausalLM", 128256, 4096, 14336, 32, 32, 8, 8192, 500000.0);
  return absl::NotFoundError(
      absl::StrCat("--preset: unknown preset '", preset, "' (presets: ", absl::StrJoin(PresetNames(), ", "), ")"));
}

absl::Status WriteRandomModel(const ModelConfig& config, DType dtype, uint64_t seed, const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::PermissionDeniedError(absl::StrCat(dir, ": cannot create directory: ", std::strerror(errno)));
  }
  Rng rng(seed);
  std::vector<TensorToWrite> tensors;
  std::vector<float> values;
  // Uniform noise with the asked standard deviation around `center`.
  auto add = [&](std::string name, std::vector<int64_t> shape, double std_dev, double center) {
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    values.resize(count);
    const double half_width = std_dev * std::sqrt(3.0);
    for (int64_t i = 0; i < count; ++i) {
      values[i] = static_cast<float>(center + (2.0 * rng.NextDouble() - 1.0) * half_width);
    }
    TensorToWrite t{std::move(name), dtype, std::move(shape), std::string(count * DTypeSize(dtype), '\0')};
    ConvertFromF32(dtype, values.data(), count, t.bytes.data());
    tensors.push_back(std::move(t));
  };
  const int64_t h = config.hidden_size, q = config.q_size(), kv = config.kv_size();
  const int64_t inter = config.intermediate_size;
  add("model.embed_tokens.weight", {config.vocab_size, h}, 1.0, 0.0);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    add(p + "input_layernorm.weight", {h}, 0.1, 1.0);
    add(p + "self_attn.q_proj.weight", {q, h}, 1.0 / std::sqrt(h), 0.0);
    add(p + "self_attn.k_proj.weight", {kv, h}, 1.0 / std::sqrt(h), 0.0);
    add(p + "self_attn.v_proj.weight", {kv, h}, 1.0 / std::sqrt(h), 0.0);
    if (config.attention_bias) {
      add(p + "self_attn.q_proj.bias", {q}, 0.1, 0.0);
      add(p + "self_attn.k_proj.bias", {kv}, 0.1, 0.0);
      add(p + "self_attn.v_proj.bias", {kv}, 0.1, 0.0);
    }
    add(p + "self_attn.o_proj.weight", {h, q}, 1.0 / std::sqrt(q), 0.0);
    add(p + "post_attention_layernorm.weight", {h}, 0.1, 1.0);
    add(p + "mlp.gate_proj.weight", {inter, h}, 1.0 / std::sqrt(h), 0.0);
    add(p + "mlp.up_proj.weight", {inter, h}, 1.0 / std::sqrt(h), 0.0);
    add(p + "mlp.down_proj.weight", {h, inter}, 1.0 / std::sqrt(inter), 0.0);
  }
  add("model.norm.weight", {h}, 0.1, 1.0);
  if (!config.tie_word_embeddings) add("lm_head.weight", {config.vocab_size, h}, 1.0 / std::sqrt(h), 0.0);

  ModelConfig written = config;
  written.torch_dtype = dtype;
  std::ofstream out(dir + "/config.json", std::ios::trunc);
  out << ModelConfigToJson(written);
  out.close();
  if (!out) return absl::InternalError(absl::StrCat(dir, "/config.json: write failed"));
  return WriteSafetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}});
}

}  // namespace tandem
