#include "model/config.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace tandem {
namespace {

using Json = nlohmann::json;

// The installed abseil has its own string_view, so std::string_view is converted before StrCat.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

struct Architecture {
  const char* name;
  const char* model_type;
};
constexpr Architecture kArchitectures[] = {
    {"LlamaForCausalLM", "llama"},
    {"MistralForCausalLM", "mistral"},
    {"Qwen2ForCausalLM", "qwen2"},
};

// Sizes are bounded so that products the engine forms (vocab * hidden, heads * head_dim) cannot
// overflow int64 and a corrupt config fails here rather than as a huge allocation.
constexpr int64_t kMaxSize = int64_t{1} << 31;

// Reads fields of one JSON object, naming `source` and the field in every error. Optional fields that
// are absent or null yield std::nullopt. Types are checked before any nlohmann accessor runs, so no
// nlohmann exception can escape.
class FieldReader {
 public:
  FieldReader(const Json& object, std::string_view source, std::string prefix = "")
      : object_(object), source_(source), prefix_(std::move(prefix)) {}

  const Json* Get(const char* field) const {
    auto it = object_.find(field);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  absl::Status Error(const char* field, std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(Sv(source_), ": ", prefix_, field, ": ", Sv(what)));
  }

  absl::Status Missing(const char* field) const {
    return absl::InvalidArgumentError(
        absl::StrCat(Sv(source_), ": required field '", prefix_, field, "' is missing"));
  }

  absl::StatusOr<std::optional<int64_t>> OptionalInt(const char* field) const {
    const Json* value = Get(field);
    if (value == nullptr) return std::optional<int64_t>();
    TANDEM_ASSIGN_OR_RETURN(int64_t out, ToInt(field, *value));
    return std::optional<int64_t>(out);
  }

  // A required integer in [1, kMaxSize).
  absl::StatusOr<int64_t> RequiredSize(const char* field) const {
    const Json* value = Get(field);
    if (value == nullptr) return Missing(field);
    TANDEM_ASSIGN_OR_RETURN(int64_t out, ToInt(field, *value));
    TANDEM_RETURN_IF_ERROR(CheckSize(field, out));
    return out;
  }

  // An optional integer in [1, kMaxSize).
  absl::StatusOr<std::optional<int64_t>> OptionalSize(const char* field) const {
    TANDEM_ASSIGN_OR_RETURN(std::optional<int64_t> out, OptionalInt(field));
    if (out.has_value()) TANDEM_RETURN_IF_ERROR(CheckSize(field, *out));
    return out;
  }

  absl::StatusOr<std::optional<double>> OptionalNumber(const char* field) const {
    const Json* value = Get(field);
    if (value == nullptr) return std::optional<double>();
    if (!value->is_number()) return Error(field, absl::StrCat("expected a number, got ", Describe(*value)));
    return std::optional<double>(value->get<double>());
  }

  absl::StatusOr<double> RequiredPositiveNumber(const char* field) const {
    TANDEM_ASSIGN_OR_RETURN(std::optional<double> out, OptionalNumber(field));
    if (!out.has_value()) return Missing(field);
    TANDEM_RETURN_IF_ERROR(CheckPositive(field, *out));
    return *out;
  }

  absl::StatusOr<double> PositiveNumberOr(const char* field, double fallback) const {
    TANDEM_ASSIGN_OR_RETURN(std::optional<double> out, OptionalNumber(field));
    if (!out.has_value()) return fallback;
    TANDEM_RETURN_IF_ERROR(CheckPositive(field, *out));
    return *out;
  }

  absl::StatusOr<bool> BoolOr(const char* field, bool fallback) const {
    const Json* value = Get(field);
    if (value == nullptr) return fallback;
    if (!value->is_boolean()) {
      return Error(field, absl::StrCat("expected true or false, got ", Describe(*value)));
    }
    return value->get<bool>();
  }

  absl::StatusOr<std::optional<std::string>> OptionalString(const char* field) const {
    const Json* value = Get(field);
    if (value == nullptr) return std::optional<std::string>();
    if (!value->is_string()) return Error(field, absl::StrCat("expected a string, got ", Describe(*value)));
    return std::optional<std::string>(value->get<std::string>());
  }

  // "bos_token_id" / "eos_token_id": an int, a list of ints, or null (empty).
  absl::StatusOr<std::vector<int64_t>> TokenIds(const char* field) const {
    std::vector<int64_t> ids;
    const Json* value = Get(field);
    if (value == nullptr) return ids;
    if (value->is_array()) {
      for (const Json& element : *value) {
        TANDEM_ASSIGN_OR_RETURN(int64_t id, ToInt(field, element));
        TANDEM_RETURN_IF_ERROR(CheckTokenId(field, id));
        ids.push_back(id);
      }
      return ids;
    }
    if (!value->is_number_integer()) {
      return Error(field,
                   absl::StrCat("expected an integer, a list of integers or null, got ", Describe(*value)));
    }
    TANDEM_ASSIGN_OR_RETURN(int64_t id, ToInt(field, *value));
    TANDEM_RETURN_IF_ERROR(CheckTokenId(field, id));
    ids.push_back(id);
    return ids;
  }

  // A short rendering of a JSON value for messages.
  static std::string Describe(const Json& value) {
    std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    return absl::StrCat(value.type_name(), " ", text);
  }

 private:
  absl::StatusOr<int64_t> ToInt(const char* field, const Json& value) const {
    if (value.is_number_unsigned()) {
      const uint64_t out = value.get<uint64_t>();
      if (out > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Error(field, absl::StrCat("integer ", out, " is out of range"));
      }
      return static_cast<int64_t>(out);
    }
    if (value.is_number_integer()) return value.get<int64_t>();
    return Error(field, absl::StrCat("expected an integer, got ", Describe(value)));
  }

  absl::Status CheckSize(const char* field, int64_t value) const {
    if (value < 1 || value >= kMaxSize) {
      return Error(field, absl::StrCat("must be a positive integer below 2^31, got ", value));
    }
    return absl::OkStatus();
  }

  absl::Status CheckPositive(const char* field, double value) const {
    if (!(value > 0.0) || value == std::numeric_limits<double>::infinity()) {
      return Error(field, absl::StrCat("must be a positive number, got ", value));
    }
    return absl::OkStatus();
  }

  absl::Status CheckTokenId(const char* field, int64_t id) const {
    if (id < 0) return Error(field, absl::StrCat("token ids must be non-negative, got ", id));
    return absl::OkStatus();
  }

  const Json& object_;
  std::string_view source_;
  std::string prefix_;
};

absl::StatusOr<std::string> ReadArchitecture(const FieldReader& reader, std::string_view source) {
  std::vector<std::string> supported;
  for (const Architecture& arch : kArchitectures) supported.push_back(arch.name);
  const std::string supported_list = absl::StrJoin(supported, ", ");

  const Json* architectures = reader.Get("architectures");
  if (architectures == nullptr) {
    // Some configs carry only model_type; transformers accepts them, so do we.
    TANDEM_ASSIGN_OR_RETURN(std::optional<std::string> model_type, reader.OptionalString("model_type"));
    if (!model_type.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          Sv(source), ": required field 'architectures' is missing (supported: ", supported_list, ")"));
    }
    for (const Architecture& arch : kArchitectures) {
      if (*model_type == arch.model_type) return std::string(arch.name);
    }
    return reader.Error(
        "model_type", absl::StrCat("'", *model_type, "' is not supported (supported: ", supported_list, ")"));
  }
  if (!architectures->is_array() || architectures->empty()) {
    return reader.Error("architectures", absl::StrCat("expected a non-empty list of strings, got ",
                                                      FieldReader::Describe(*architectures)));
  }
  std::vector<std::string> names;
  for (const Json& element : *architectures) {
    if (!element.is_string()) {
      return reader.Error("architectures", absl::StrCat("expected a list of strings, got ",
                                                        FieldReader::Describe(*architectures)));
    }
    names.push_back(absl::StrCat("'", element.get<std::string>(), "'"));
  }
  const std::string first = (*architectures)[0].get<std::string>();
  for (const Architecture& arch : kArchitectures) {
    if (first == arch.name) return first;
  }
  return absl::InvalidArgumentError(absl::StrCat(Sv(source), ": architectures [", absl::StrJoin(names, ", "),
                                                 "] is not supported (supported: ", supported_list, ")"));
}

absl::Status ReadRopeScaling(const FieldReader& reader, std::string_view source, RopeScaling* out) {
  const Json* value = reader.Get("rope_scaling");
  *out = RopeScaling();
  if (value == nullptr) return absl::OkStatus();
  if (!value->is_object()) {
    return reader.Error("rope_scaling",
                        absl::StrCat("expected an object or null, got ", FieldReader::Describe(*value)));
  }
  const FieldReader scaling(*value, source, "rope_scaling.");
  // transformers writes "rope_type"; older configs write "type".
  const char* type_field = scaling.Get("rope_type") != nullptr ? "rope_type" : "type";
  TANDEM_ASSIGN_OR_RETURN(std::optional<std::string> type, scaling.OptionalString(type_field));
  if (!type.has_value()) return scaling.Missing("rope_type");
  if (*type == "default") return absl::OkStatus();  // plain RoPE, spelled out
  if (*type != "llama3") {
    return scaling.Error(type_field,
                         absl::StrCat("'", *type, "' is not supported (supported: llama3, default)"));
  }
  out->enabled = true;
  TANDEM_ASSIGN_OR_RETURN(out->factor, scaling.RequiredPositiveNumber("factor"));
  TANDEM_ASSIGN_OR_RETURN(out->low_freq_factor, scaling.RequiredPositiveNumber("low_freq_factor"));
  TANDEM_ASSIGN_OR_RETURN(out->high_freq_factor, scaling.RequiredPositiveNumber("high_freq_factor"));
  TANDEM_ASSIGN_OR_RETURN(out->original_max_position_embeddings,
                          scaling.RequiredSize("original_max_position_embeddings"));
  // The llama3 formula interpolates over high_freq_factor - low_freq_factor.
  if (out->high_freq_factor <= out->low_freq_factor) {
    return scaling.Error("high_freq_factor",
                         absl::StrCat("must exceed low_freq_factor (", out->low_freq_factor, "), got ",
                                      out->high_freq_factor));
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> Parse(const Json& root, std::string_view source) {
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Sv(source), ": expected a JSON object, got ", root.type_name()));
  }
  const FieldReader reader(root, source);
  ModelConfig config;
  TANDEM_ASSIGN_OR_RETURN(config.architecture, ReadArchitecture(reader, source));
  for (const Architecture& arch : kArchitectures) {
    if (config.architecture == arch.name) config.model_type = arch.model_type;
  }
  const bool is_llama = config.model_type == "llama";
  const bool is_mistral = config.model_type == "mistral";
  const bool is_qwen2 = config.model_type == "qwen2";

  TANDEM_ASSIGN_OR_RETURN(config.vocab_size, reader.RequiredSize("vocab_size"));
  TANDEM_ASSIGN_OR_RETURN(config.hidden_size, reader.RequiredSize("hidden_size"));
  TANDEM_ASSIGN_OR_RETURN(config.intermediate_size, reader.RequiredSize("intermediate_size"));
  TANDEM_ASSIGN_OR_RETURN(config.num_hidden_layers, reader.RequiredSize("num_hidden_layers"));
  TANDEM_ASSIGN_OR_RETURN(config.num_attention_heads, reader.RequiredSize("num_attention_heads"));

  TANDEM_ASSIGN_OR_RETURN(std::optional<int64_t> kv_heads, reader.OptionalSize("num_key_value_heads"));
  config.num_key_value_heads = kv_heads.value_or(config.num_attention_heads);
  if (config.num_attention_heads % config.num_key_value_heads != 0) {
    return reader.Error("num_key_value_heads",
                        absl::StrCat(config.num_key_value_heads, " does not divide num_attention_heads (",
                                     config.num_attention_heads, ")"));
  }

  TANDEM_ASSIGN_OR_RETURN(std::optional<int64_t> head_dim, reader.OptionalSize("head_dim"));
  if (head_dim.has_value()) {
    config.head_dim = *head_dim;
  } else {
    if (config.hidden_size % config.num_attention_heads != 0) {
      return reader.Error("head_dim", absl::StrCat("absent, and hidden_size (", config.hidden_size,
                                                   ") is not a multiple of num_attention_heads (",
                                                   config.num_attention_heads, ")"));
    }
    config.head_dim = config.hidden_size / config.num_attention_heads;
  }
  // RoPE rotates pairs of dimensions.
  if (config.head_dim % 2 != 0) {
    return reader.Error("head_dim",
                        absl::StrCat("must be even for rotary embeddings, got ", config.head_dim));
  }

  TANDEM_ASSIGN_OR_RETURN(std::optional<int64_t> max_positions,
                          reader.OptionalSize("max_position_embeddings"));
  config.max_position_embeddings = max_positions.value_or(4096);
  TANDEM_ASSIGN_OR_RETURN(config.rms_norm_eps, reader.PositiveNumberOr("rms_norm_eps", 1e-6));
  TANDEM_ASSIGN_OR_RETURN(config.rope_theta, reader.PositiveNumberOr("rope_theta", 10000.0));
  TANDEM_RETURN_IF_ERROR(ReadRopeScaling(reader, source, &config.rope_scaling));

  TANDEM_ASSIGN_OR_RETURN(std::optional<std::string> act, reader.OptionalString("hidden_act"));
  if (act.has_value() && *act != "silu") {
    return reader.Error("hidden_act", absl::StrCat("'", *act, "' is not supported (supported: silu)"));
  }

  TANDEM_ASSIGN_OR_RETURN(config.tie_word_embeddings, reader.BoolOr("tie_word_embeddings", false));

  if (is_qwen2) {
    config.attention_bias = true;  // Qwen2's q/k/v projections always carry biases
  } else if (is_llama) {
    TANDEM_ASSIGN_OR_RETURN(config.attention_bias, reader.BoolOr("attention_bias", false));
  }
  if (is_llama) {
    TANDEM_ASSIGN_OR_RETURN(bool mlp_bias, reader.BoolOr("mlp_bias", false));
    if (mlp_bias) return reader.Error("mlp_bias", "true is not supported (MLP biases are not implemented)");
  }

  if (is_mistral) {
    // A window at least as long as the context never drops a key, so it is plain causal attention.
    TANDEM_ASSIGN_OR_RETURN(std::optional<int64_t> window, reader.OptionalInt("sliding_window"));
    if (window.has_value() && *window < config.max_position_embeddings) {
      return reader.Error(
          "sliding_window",
          absl::StrCat(*window, " is shorter than max_position_embeddings (", config.max_position_embeddings,
                       "); sliding-window attention is not implemented"));
    }
  }
  if (is_qwen2) {
    TANDEM_ASSIGN_OR_RETURN(bool use_window, reader.BoolOr("use_sliding_window", false));
    if (use_window) {
      return reader.Error("use_sliding_window",
                          "true is not supported (sliding-window attention is not implemented)");
    }
  }

  if (reader.Get("quantization_config") != nullptr) {
    return reader.Error("quantization_config",
                        "quantized checkpoints are not supported (supported weights: F32, F16, BF16)");
  }

  // Newer transformers write "dtype"; older ones "torch_dtype".
  const char* dtype_field = reader.Get("torch_dtype") != nullptr ? "torch_dtype" : "dtype";
  TANDEM_ASSIGN_OR_RETURN(std::optional<std::string> dtype, reader.OptionalString(dtype_field));
  if (dtype.has_value()) {
    absl::StatusOr<DType> parsed = ParseDType(*dtype);
    if (!parsed.ok()) return reader.Error(dtype_field, std::string(parsed.status().message()));
    config.torch_dtype = *parsed;
  }

  TANDEM_ASSIGN_OR_RETURN(config.bos_token_ids, reader.TokenIds("bos_token_id"));
  TANDEM_ASSIGN_OR_RETURN(config.eos_token_ids, reader.TokenIds("eos_token_id"));
  return config;
}

const char* TorchDTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "float32";
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
    case DType::kI32: return "int32";
  }
  return "float32";
}

nlohmann::ordered_json TokenIdsToJson(const std::vector<int64_t>& ids) {
  if (ids.empty()) return nullptr;
  if (ids.size() == 1) return ids[0];
  return ids;
}

}  // namespace

absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text, std::string_view source) {
  Json root;
  try {
    root = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(Sv(source), ": invalid JSON: ", e.what()));
  }
  try {
    return Parse(root, source);
  } catch (const Json::exception& e) {
    // Parse checks every type before reading it; this is a backstop so nothing escapes the library.
    return absl::InternalError(absl::StrCat(Sv(source), ": ", e.what()));
  }
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  const std::string path = absl::StrCat(model_dir, "/config.json");
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    const int error = errno;
    const std::string message = absl::StrCat(path, ": ", std::strerror(error));
    if (error == ENOENT) return absl::NotFoundError(message);
    if (error == EACCES) return absl::PermissionDeniedError(message);
    return absl::UnavailableError(message);
  }
  std::string text;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) text.append(buffer, n);
  const bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) return absl::UnavailableError(absl::StrCat(path, ": read failed"));
  return ParseModelConfig(text, path);
}

std::string ModelConfigToJson(const ModelConfig& config) {
  nlohmann::ordered_json out;
  out["architectures"] = {config.architecture};
  out["model_type"] = config.model_type;
  out["vocab_size"] = config.vocab_size;
  out["hidden_size"] = config.hidden_size;
  out["intermediate_size"] = config.intermediate_size;
  out["num_hidden_layers"] = config.num_hidden_layers;
  out["num_attention_heads"] = config.num_attention_heads;
  out["num_key_value_heads"] = config.num_key_value_heads;
  out["head_dim"] = config.head_dim;
  out["max_position_embeddings"] = config.max_position_embeddings;
  out["rms_norm_eps"] = config.rms_norm_eps;
  out["rope_theta"] = config.rope_theta;
  if (config.rope_scaling.enabled) {
    out["rope_scaling"] = {
        {"rope_type", "llama3"},
        {"factor", config.rope_scaling.factor},
        {"low_freq_factor", config.rope_scaling.low_freq_factor},
        {"high_freq_factor", config.rope_scaling.high_freq_factor},
        {"original_max_position_embeddings", config.rope_scaling.original_max_position_embeddings},
    };
  } else {
    out["rope_scaling"] = nullptr;
  }
  out["hidden_act"] = "silu";
  out["tie_word_embeddings"] = config.tie_word_embeddings;
  if (config.model_type == "llama") {
    out["attention_bias"] = config.attention_bias;
    out["mlp_bias"] = false;
  } else if (config.model_type == "mistral") {
    out["sliding_window"] = nullptr;
  } else if (config.model_type == "qwen2") {
    out["use_sliding_window"] = false;
  }
  out["torch_dtype"] = TorchDTypeName(config.torch_dtype);
  out["bos_token_id"] = TokenIdsToJson(config.bos_token_ids);
  out["eos_token_id"] = TokenIdsToJson(config.eos_token_ids);
  return out.dump(2) + "\n";
}

}  // namespace tandem
