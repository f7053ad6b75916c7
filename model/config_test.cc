#include "model/config.h"

#include <stdlib.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tandem {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// The published config.json files of the supported families (trimmed of nothing but whitespace).
constexpr char kLlama2_7b[] = R"({
  "architectures": ["LlamaForCausalLM"],
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 11008,
  "max_position_embeddings": 4096,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 32,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "tie_word_embeddings": false,
  "torch_dtype": "float16",
  "transformers_version": "4.31.0.dev0",
  "use_cache": true,
  "vocab_size": 32000
})";

constexpr char kLlama32_1bInstruct[] = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009],
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 16,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 32.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})";

constexpr char kTinyLlamaChat[] = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 5632,
  "max_position_embeddings": 2048,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 22,
  "num_key_value_heads": 4,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 10000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.35.0",
  "use_cache": true,
  "vocab_size": 32000
})";

constexpr char kMistral7bInstructV02[] = R"({
  "architectures": ["MistralForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 32768,
  "model_type": "mistral",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_theta": 1000000.0,
  "sliding_window": null,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.36.0",
  "use_cache": true,
  "vocab_size": 32000
})";

// Mistral 7B v0.1: a 4096-token window over a 32768-token context.
constexpr char kMistral7bV01[] = R"({
  "architectures": ["MistralForCausalLM"],
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 32768,
  "model_type": "mistral",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0,
  "sliding_window": 4096,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.34.0.dev0",
  "use_cache": true,
  "vocab_size": 32000
})";

constexpr char kQwen2_05bInstruct[] = R"({
  "architectures": ["Qwen2ForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "hidden_act": "silu",
  "hidden_size": 896,
  "initializer_range": 0.02,
  "intermediate_size": 4864,
  "max_position_embeddings": 32768,
  "max_window_layers": 24,
  "model_type": "qwen2",
  "num_attention_heads": 14,
  "num_hidden_layers": 24,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0,
  "sliding_window": 32768,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.40.1",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

// The smallest config that parses; refusal tests change one field of it.
Json MinimalLlama() {
  return Json{{"architectures", {"LlamaForCausalLM"}},
              {"vocab_size", 256},
              {"hidden_size", 64},
              {"intermediate_size", 128},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 4}};
}

// Parses `config`, expects InvalidArgument, and returns the message.
std::string RefusalMessage(const Json& config) {
  absl::StatusOr<ModelConfig> parsed = ParseModelConfig(config.dump(), "test/config.json");
  EXPECT_FALSE(parsed.ok()) << config.dump();
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << parsed.status();
  const std::string message(parsed.status().message());
  EXPECT_THAT(message, HasSubstr("test/config.json")) << "message names the file";
  return message;
}

ModelConfig MustParse(std::string_view text) {
  absl::StatusOr<ModelConfig> parsed = ParseModelConfig(text, "config.json");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : ModelConfig();
}

void ExpectSameConfig(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.model_type, b.model_type);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.num_hidden_layers, b.num_hidden_layers);
  EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
  EXPECT_EQ(a.num_key_value_heads, b.num_key_value_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rope_scaling.enabled, b.rope_scaling.enabled);
  EXPECT_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
  EXPECT_EQ(a.rope_scaling.low_freq_factor, b.rope_scaling.low_freq_factor);
  EXPECT_EQ(a.rope_scaling.high_freq_factor, b.rope_scaling.high_freq_factor);
  EXPECT_EQ(a.rope_scaling.original_max_position_embeddings, b.rope_scaling.original_max_position_embeddings);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.torch_dtype, b.torch_dtype);
  EXPECT_EQ(a.bos_token_ids, b.bos_token_ids);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
}

TEST(ConfigTest, Llama2) {
  const ModelConfig config = MustParse(kLlama2_7b);
  EXPECT_EQ(config.architecture, "LlamaForCausalLM");
  EXPECT_EQ(config.model_type, "llama");
  EXPECT_EQ(config.vocab_size, 32000);
  EXPECT_EQ(config.hidden_size, 4096);
  EXPECT_EQ(config.intermediate_size, 11008);
  EXPECT_EQ(config.num_hidden_layers, 32);
  EXPECT_EQ(config.num_attention_heads, 32);
  EXPECT_EQ(config.num_key_value_heads, 32);
  EXPECT_EQ(config.head_dim, 128);
  EXPECT_EQ(config.max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(config.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(config.rope_theta, 10000.0);  // absent: the default
  EXPECT_FALSE(config.rope_scaling.enabled);
  EXPECT_FALSE(config.tie_word_embeddings);
  EXPECT_FALSE(config.attention_bias);
  EXPECT_EQ(config.torch_dtype, DType::kF16);
  EXPECT_THAT(config.bos_token_ids, ElementsAre(1));
  EXPECT_THAT(config.eos_token_ids, ElementsAre(2));
  EXPECT_EQ(config.q_size(), 4096);
  EXPECT_EQ(config.kv_size(), 4096);
}

TEST(ConfigTest, Llama32WithLlama3RopeScalingAndTiedEmbeddings) {
  const ModelConfig config = MustParse(kLlama32_1bInstruct);
  EXPECT_EQ(config.vocab_size, 128256);
  EXPECT_EQ(config.num_hidden_layers, 16);
  EXPECT_EQ(config.num_key_value_heads, 8);
  EXPECT_EQ(config.head_dim, 64);
  EXPECT_EQ(config.max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(config.rope_theta, 500000.0);
  EXPECT_TRUE(config.rope_scaling.enabled);
  EXPECT_DOUBLE_EQ(config.rope_scaling.factor, 32.0);
  EXPECT_DOUBLE_EQ(config.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(config.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(config.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_TRUE(config.tie_word_embeddings);
  EXPECT_FALSE(config.attention_bias);
  EXPECT_EQ(config.torch_dtype, DType::kBF16);
  EXPECT_THAT(config.bos_token_ids, ElementsAre(128000));
  EXPECT_THAT(config.eos_token_ids, ElementsAre(128001, 128008, 128009));
  EXPECT_EQ(config.q_size(), 2048);
  EXPECT_EQ(config.kv_size(), 512);
}

TEST(ConfigTest, TinyLlamaGroupedQueryAttention) {
  const ModelConfig config = MustParse(kTinyLlamaChat);
  EXPECT_EQ(config.num_hidden_layers, 22);
  EXPECT_EQ(config.intermediate_size, 5632);
  EXPECT_EQ(config.num_attention_heads, 32);
  EXPECT_EQ(config.num_key_value_heads, 4);
  EXPECT_EQ(config.head_dim, 64);
  EXPECT_EQ(config.kv_size(), 256);
  EXPECT_EQ(config.max_position_embeddings, 2048);
  EXPECT_FALSE(config.rope_scaling.enabled);
  EXPECT_EQ(config.torch_dtype, DType::kBF16);
}

TEST(ConfigTest, MistralWithoutSlidingWindow) {
  const ModelConfig config = MustParse(kMistral7bInstructV02);
  EXPECT_EQ(config.architecture, "MistralForCausalLM");
  EXPECT_EQ(config.model_type, "mistral");
  EXPECT_EQ(config.intermediate_size, 14336);
  EXPECT_EQ(config.num_key_value_heads, 8);
  EXPECT_EQ(config.head_dim, 128);
  EXPECT_EQ(config.max_position_embeddings, 32768);
  EXPECT_DOUBLE_EQ(config.rope_theta, 1e6);
  EXPECT_FALSE(config.attention_bias);
  EXPECT_FALSE(config.tie_word_embeddings);
}

TEST(ConfigTest, MistralWindowCoveringTheContextIsAccepted) {
  Json config = Json::parse(kMistral7bV01);
  config["sliding_window"] = 32768;
  EXPECT_TRUE(ParseModelConfig(config.dump(), "config.json").ok());
}

TEST(ConfigTest, Qwen2HasBiasesAndTiedEmbeddings) {
  const ModelConfig config = MustParse(kQwen2_05bInstruct);
  EXPECT_EQ(config.architecture, "Qwen2ForCausalLM");
  EXPECT_EQ(config.model_type, "qwen2");
  EXPECT_EQ(config.vocab_size, 151936);
  EXPECT_EQ(config.hidden_size, 896);
  EXPECT_EQ(config.num_attention_heads, 14);
  EXPECT_EQ(config.num_key_value_heads, 2);
  EXPECT_EQ(config.head_dim, 64);
  EXPECT_TRUE(config.attention_bias);
  EXPECT_TRUE(config.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(config.rms_norm_eps, 1e-6);
  EXPECT_THAT(config.bos_token_ids, ElementsAre(151643));
  EXPECT_THAT(config.eos_token_ids, ElementsAre(151645));
}

TEST(ConfigTest, DefaultsForAbsentOptionalFields) {
  const ModelConfig config = MustParse(MinimalLlama().dump());
  EXPECT_EQ(config.num_key_value_heads, 4);  // = num_attention_heads
  EXPECT_EQ(config.head_dim, 16);            // = hidden_size / num_attention_heads
  EXPECT_EQ(config.max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(config.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(config.rope_theta, 10000.0);
  EXPECT_FALSE(config.rope_scaling.enabled);
  EXPECT_FALSE(config.tie_word_embeddings);
  EXPECT_FALSE(config.attention_bias);
  EXPECT_EQ(config.torch_dtype, DType::kF32);
  EXPECT_TRUE(config.bos_token_ids.empty());
  EXPECT_TRUE(config.eos_token_ids.empty());
}

TEST(ConfigTest, NullTokenIdsAndNullOptionalsMeanAbsent) {
  Json config = MinimalLlama();
  config["bos_token_id"] = nullptr;
  config["eos_token_id"] = nullptr;
  config["head_dim"] = nullptr;
  config["rope_scaling"] = nullptr;
  const ModelConfig parsed = MustParse(config.dump());
  EXPECT_TRUE(parsed.bos_token_ids.empty());
  EXPECT_TRUE(parsed.eos_token_ids.empty());
  EXPECT_EQ(parsed.head_dim, 16);
}

TEST(ConfigTest, ExplicitHeadDimNeedNotDivideHiddenSize) {
  Json config = MinimalLlama();
  config["hidden_size"] = 60;
  config["head_dim"] = 32;
  const ModelConfig parsed = MustParse(config.dump());
  EXPECT_EQ(parsed.head_dim, 32);
  EXPECT_EQ(parsed.q_size(), 128);
}

TEST(ConfigTest, LlamaAttentionBiasIsRead) {
  Json config = MinimalLlama();
  config["attention_bias"] = true;
  EXPECT_TRUE(MustParse(config.dump()).attention_bias);
}

TEST(ConfigTest, OldStyleRopeScalingTypeKeyIsAccepted) {
  Json config = MinimalLlama();
  config["rope_scaling"] = {{"type", "llama3"},
                            {"factor", 8.0},
                            {"low_freq_factor", 1.0},
                            {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 8192}};
  const ModelConfig parsed = MustParse(config.dump());
  EXPECT_TRUE(parsed.rope_scaling.enabled);
  EXPECT_DOUBLE_EQ(parsed.rope_scaling.factor, 8.0);
}

TEST(ConfigTest, RefusesUnknownArchitecture) {
  Json config = MinimalLlama();
  config["architectures"] = {"GPT2LMHeadModel"};
  const std::string message = RefusalMessage(config);
  EXPECT_THAT(message, HasSubstr("architectures ['GPT2LMHeadModel'] is not supported"));
  EXPECT_THAT(message, HasSubstr("LlamaForCausalLM"));
  EXPECT_THAT(message, HasSubstr("MistralForCausalLM"));
  EXPECT_THAT(message, HasSubstr("Qwen2ForCausalLM"));
}

TEST(ConfigTest, RefusesMissingRequiredFields) {
  for (const char* field :
       {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"}) {
    Json config = MinimalLlama();
    config.erase(field);
    EXPECT_THAT(RefusalMessage(config), HasSubstr(field));
  }
  Json config = MinimalLlama();
  config.erase("architectures");
  EXPECT_THAT(RefusalMessage(config), HasSubstr("architectures"));
}

TEST(ConfigTest, RefusesWrongTypesNamingTheField) {
  const std::pair<const char*, Json> cases[] = {
      {"hidden_size", "4096"},
      {"vocab_size", 32000.5},
      {"num_hidden_layers", true},
      {"num_key_value_heads", Json::array({8})},
      {"rms_norm_eps", "1e-5"},
      {"rope_theta", Json::object()},
      {"tie_word_embeddings", 1},
      {"attention_bias", "false"},
      {"torch_dtype", 16},
      {"hidden_act", Json::array({"silu"})},
      {"eos_token_id", "2"},
      {"bos_token_id", Json::array({1, "2"})},
      {"rope_scaling", "llama3"},
      {"architectures", "LlamaForCausalLM"},
      {"max_position_embeddings", -1},
      {"hidden_size", 0},
  };
  for (const auto& [field, value] : cases) {
    Json config = MinimalLlama();
    config[field] = value;
    EXPECT_THAT(RefusalMessage(config), HasSubstr(field)) << field << " = " << value.dump();
  }
}

TEST(ConfigTest, RefusesInvalidJsonAndNonObjects) {
  absl::StatusOr<ModelConfig> parsed = ParseModelConfig("{\"vocab_size\": ", "dir/config.json");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("dir/config.json"));
  EXPECT_THAT(RefusalMessage(Json::array({1, 2})), HasSubstr("object"));
}

TEST(ConfigTest, RefusesOtherRopeScalingTypes) {
  for (const char* type : {"linear", "dynamic", "yarn"}) {
    Json config = MinimalLlama();
    config["rope_scaling"] = {{"rope_type", type}, {"factor", 2.0}};
    const std::string message = RefusalMessage(config);
    EXPECT_THAT(message, HasSubstr("rope_scaling.rope_type"));
    EXPECT_THAT(message, HasSubstr(type));
  }
}

TEST(ConfigTest, RefusesIncompleteLlama3RopeScaling) {
  Json config = MinimalLlama();
  config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  EXPECT_THAT(RefusalMessage(config), HasSubstr("rope_scaling.low_freq_factor"));
}

TEST(ConfigTest, RefusesKvHeadsThatDoNotDivideHeads) {
  Json config = MinimalLlama();
  config["num_key_value_heads"] = 3;
  const std::string message = RefusalMessage(config);
  EXPECT_THAT(message, HasSubstr("num_key_value_heads"));
  EXPECT_THAT(message, HasSubstr("num_attention_heads (4)"));
}

TEST(ConfigTest, RefusesDefaultedHeadDimThatDoesNotDivide) {
  Json config = MinimalLlama();
  config["hidden_size"] = 66;
  EXPECT_THAT(RefusalMessage(config), HasSubstr("head_dim"));
}

TEST(ConfigTest, RefusesMistralSlidingWindowShorterThanContext) {
  const std::string message = RefusalMessage(Json::parse(kMistral7bV01));
  EXPECT_THAT(message, HasSubstr("sliding_window"));
  EXPECT_THAT(message, HasSubstr("4096"));
}

TEST(ConfigTest, RefusesQwen2UseSlidingWindow) {
  Json config = Json::parse(kQwen2_05bInstruct);
  config["use_sliding_window"] = true;
  EXPECT_THAT(RefusalMessage(config), HasSubstr("use_sliding_window"));
}

TEST(ConfigTest, RefusesNonSiluActivation) {
  Json config = MinimalLlama();
  config["hidden_act"] = "gelu";
  const std::string message = RefusalMessage(config);
  EXPECT_THAT(message, HasSubstr("hidden_act"));
  EXPECT_THAT(message, HasSubstr("gelu"));
}

TEST(ConfigTest, RefusesUnsupportedTorchDtype) {
  Json config = MinimalLlama();
  config["torch_dtype"] = "int8";
  const std::string message = RefusalMessage(config);
  EXPECT_THAT(message, HasSubstr("torch_dtype"));
  EXPECT_THAT(message, HasSubstr("int8"));
}

TEST(ConfigTest, RefusesQuantizedAndMlpBiasConfigs) {
  Json quantized = MinimalLlama();
  quantized["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4}};
  EXPECT_THAT(RefusalMessage(quantized), HasSubstr("quantization_config"));
  Json mlp_bias = MinimalLlama();
  mlp_bias["mlp_bias"] = true;
  EXPECT_THAT(RefusalMessage(mlp_bias), HasSubstr("mlp_bias"));
}

TEST(ConfigTest, ToJsonRoundTripsEveryExample) {
  for (const char* text :
       {kLlama2_7b, kLlama32_1bInstruct, kTinyLlamaChat, kMistral7bInstructV02, kQwen2_05bInstruct}) {
    const ModelConfig original = MustParse(text);
    const std::string written = ModelConfigToJson(original);
    absl::StatusOr<ModelConfig> reparsed = ParseModelConfig(written, "written/config.json");
    ASSERT_TRUE(reparsed.ok()) << reparsed.status() << "\n" << written;
    ExpectSameConfig(original, *reparsed);
  }
}

TEST(ConfigTest, ToJsonWritesWhatTransformersReads) {
  const ModelConfig config = MustParse(kLlama32_1bInstruct);
  const Json written = Json::parse(ModelConfigToJson(config));
  EXPECT_EQ(written["architectures"], Json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(written["model_type"], "llama");
  EXPECT_EQ(written["hidden_act"], "silu");
  EXPECT_EQ(written["torch_dtype"], "bfloat16");
  EXPECT_EQ(written["rope_scaling"]["rope_type"], "llama3");
  EXPECT_EQ(written["eos_token_id"], Json::array({128001, 128008, 128009}));
  EXPECT_EQ(written["bos_token_id"], 128000);
  EXPECT_EQ(written["num_key_value_heads"], 8);
  EXPECT_EQ(written["tie_word_embeddings"], true);
}

TEST(ConfigTest, ToJsonRoundTripsAProgrammaticConfig) {
  ModelConfig config;
  config.architecture = "MistralForCausalLM";
  config.model_type = "mistral";
  config.vocab_size = 1000;
  config.hidden_size = 96;
  config.intermediate_size = 250;
  config.num_hidden_layers = 3;
  config.num_attention_heads = 6;
  config.num_key_value_heads = 2;
  config.head_dim = 32;  // not hidden_size / heads
  config.max_position_embeddings = 512;
  config.rms_norm_eps = 1.2345678901234e-5;
  config.rope_theta = 123456.789;
  config.torch_dtype = DType::kF16;
  config.eos_token_ids = {7, 9};
  const absl::StatusOr<ModelConfig> reparsed = ParseModelConfig(ModelConfigToJson(config), "mem");
  ASSERT_TRUE(reparsed.ok()) << reparsed.status();
  ExpectSameConfig(config, *reparsed);
}

TEST(ConfigTest, LoadModelConfigReadsTheDirectory) {
  std::string dir = ::testing::TempDir() + "/config_test_XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  std::ofstream(dir + "/config.json") << kTinyLlamaChat;
  absl::StatusOr<ModelConfig> config = LoadModelConfig(dir);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->num_hidden_layers, 22);

  std::ofstream(dir + "/config.json") << R"({"architectures": ["LlamaForCausalLM"]})";
  config = LoadModelConfig(dir);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(dir + "/config.json"));
}

TEST(ConfigTest, LoadModelConfigMissingFileIsNotFound) {
  const std::string dir = ::testing::TempDir() + "/no_such_model_dir";
  absl::StatusOr<ModelConfig> config = LoadModelConfig(dir);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(dir + "/config.json"));
}

}  // namespace
}  // namespace tandem
