// Fuzzes config.json parsing (ParseModelConfig).
//
// Invariants:
//   - A malformed config is InvalidArgument naming the source, never a crash and never InternalError
//     (the parser checks every JSON type before reading it).
//   - A config that parses has the shape the engine relies on: every size in [1, 2^31),
//     num_key_value_heads divides num_attention_heads, head_dim is even, rms_norm_eps and rope_theta
//     are finite and positive, token ids are non-negative.
//   - ModelConfigToJson round-trips it: parsing the written text gives back the same config.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_support.h"
#include "model/config.h"

namespace tandem::fuzz {
namespace {

constexpr int64_t kMaxSize = int64_t{1} << 31;

bool Same(const ModelConfig& a, const ModelConfig& b) {
  return a.architecture == b.architecture && a.model_type == b.model_type && a.vocab_size == b.vocab_size &&
         a.hidden_size == b.hidden_size && a.intermediate_size == b.intermediate_size &&
         a.num_hidden_layers == b.num_hidden_layers && a.num_attention_heads == b.num_attention_heads &&
         a.num_key_value_heads == b.num_key_value_heads && a.head_dim == b.head_dim &&
         a.max_position_embeddings == b.max_position_embeddings && a.rms_norm_eps == b.rms_norm_eps &&
         a.rope_theta == b.rope_theta && a.rope_scaling.enabled == b.rope_scaling.enabled &&
         a.rope_scaling.factor == b.rope_scaling.factor &&
         a.rope_scaling.low_freq_factor == b.rope_scaling.low_freq_factor &&
         a.rope_scaling.high_freq_factor == b.rope_scaling.high_freq_factor &&
         a.rope_scaling.original_max_position_embeddings == b.rope_scaling.original_max_position_embeddings &&
         a.tie_word_embeddings == b.tie_word_embeddings && a.attention_bias == b.attention_bias &&
         a.torch_dtype == b.torch_dtype && a.bos_token_ids == b.bos_token_ids &&
         a.eos_token_ids == b.eos_token_ids;
}

void CheckSize(const char* field, int64_t value) {
  TANDEM_FUZZ_CHECK(value >= 1 && value < kMaxSize, absl::StrCat(field, " = ", value));
}

void CheckPositive(const char* field, double value) {
  TANDEM_FUZZ_CHECK(std::isfinite(value) && value > 0, absl::StrCat(field, " = ", value));
}

}  // namespace
}  // namespace tandem::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tandem::fuzz;
  absl::StatusOr<tandem::ModelConfig> config = tandem::ParseModelConfig(AsText(data, size), "config.json");
  if (!config.ok()) {
    TANDEM_FUZZ_CHECK(absl::IsInvalidArgument(config.status()), config.status().ToString());
    TANDEM_FUZZ_CHECK(absl::StartsWith(config.status().message(), "config.json: "),
                      config.status().ToString());
    return 0;
  }
  const tandem::ModelConfig& c = *config;
  CheckSize("vocab_size", c.vocab_size);
  CheckSize("hidden_size", c.hidden_size);
  CheckSize("intermediate_size", c.intermediate_size);
  CheckSize("num_hidden_layers", c.num_hidden_layers);
  CheckSize("num_attention_heads", c.num_attention_heads);
  CheckSize("num_key_value_heads", c.num_key_value_heads);
  CheckSize("head_dim", c.head_dim);
  CheckSize("max_position_embeddings", c.max_position_embeddings);
  TANDEM_FUZZ_CHECK(c.num_attention_heads % c.num_key_value_heads == 0,
                    absl::StrCat(c.num_key_value_heads, " kv heads, ", c.num_attention_heads, " heads"));
  TANDEM_FUZZ_CHECK(c.head_dim % 2 == 0, absl::StrCat("head_dim ", c.head_dim));
  CheckPositive("rms_norm_eps", c.rms_norm_eps);
  CheckPositive("rope_theta", c.rope_theta);
  if (c.rope_scaling.enabled) {
    CheckPositive("rope_scaling.factor", c.rope_scaling.factor);
    CheckPositive("rope_scaling.low_freq_factor", c.rope_scaling.low_freq_factor);
    CheckPositive("rope_scaling.high_freq_factor", c.rope_scaling.high_freq_factor);
    TANDEM_FUZZ_CHECK(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor,
                      "rope_scaling factors");
    CheckSize("rope_scaling.original_max_position_embeddings",
              c.rope_scaling.original_max_position_embeddings);
  }
  for (int64_t id : c.bos_token_ids) TANDEM_FUZZ_CHECK(id >= 0, absl::StrCat("bos_token_id ", id));
  for (int64_t id : c.eos_token_ids) TANDEM_FUZZ_CHECK(id >= 0, absl::StrCat("eos_token_id ", id));

  const std::string written = tandem::ModelConfigToJson(c);
  absl::StatusOr<tandem::ModelConfig> reread = tandem::ParseModelConfig(written, "written");
  TANDEM_FUZZ_CHECK(reread.ok(), absl::StrCat(reread.status().ToString(), " for\n", written));
  TANDEM_FUZZ_CHECK(Same(c, *reread), absl::StrCat("the written config reads back differently:\n", written));
  return 0;
}
