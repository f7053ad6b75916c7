// tandem mkmodel: writes a random-weight model with a working tokenizer.json in the Hugging Face
// layout — the embedded default of the demo and the fixture of tests and benchmarks.
#include <cstdio>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "nlohmann/json.hpp"

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/status_macros.h"
#include "model/random_model.h"
#include "tokenizer/make_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace tandem {
namespace {

// Tokens trained from the embedded text for demo models (the rest of a preset's vocabulary is reserved).
constexpr int64_t kTrainedVocabulary = 1024;

absl::Status Mkmodel(const std::string& out, const std::string& preset, int64_t seed, const std::string& dtype_name) {
  if (out.empty()) return absl::InvalidArgumentError("--out is required");
  TANDEM_ASSIGN_OR_RETURN(ModelConfig config, PresetConfig(preset));
  absl::StatusOr<DType> dtype = ParseDType(dtype_name == "f32"    ? "F32"
                                           : dtype_name == "f16"  ? "F16"
                                           : dtype_name == "bf16" ? "BF16"
                                                                  : dtype_name);
  if (!dtype.ok()) return absl::InvalidArgumentError(absl::StrCat("--dtype: ", dtype.status().message()));

  // A byte-level BPE trained on embedded text. The embedded text supports about 1200 tokens; presets with
  // a real model's vocabulary (32000, 128256) get the rest as reserved special tokens, so every id the
  // model can produce still decodes (to nothing, as special tokens do).
  const int trained_size = static_cast<int>(std::min<int64_t>(config.vocab_size, kTrainedVocabulary));
  TANDEM_ASSIGN_OR_RETURN(std::string tokenizer_json,
                          MakeByteLevelBpeTokenizerJson(trained_size, kEnglishTrainingText, {"<s>", "</s>"}));
  if (config.vocab_size > trained_size) {
    nlohmann::json doc = nlohmann::json::parse(tokenizer_json);
    for (int64_t id = trained_size; id < config.vocab_size; ++id) {
      doc["added_tokens"].push_back({{"id", id}, {"content", absl::StrCat("<|reserved_", id, "|>")},
                                     {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                                     {"normalized", false}, {"special", true}});
    }
    tokenizer_json = doc.dump(1);
  }
  TANDEM_ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::FromJson(tokenizer_json, "generated tokenizer.json"));
  if (tokenizer->vocab_size() != config.vocab_size) {
    return absl::InternalError(absl::StrCat("generated tokenizer has ", tokenizer->vocab_size(),
                                            " tokens, the preset wants ", config.vocab_size));
  }
  config.bos_token_ids = {*tokenizer->TokenToId("<s>")};
  config.eos_token_ids = {*tokenizer->TokenToId("</s>")};

  TANDEM_RETURN_IF_ERROR(WriteRandomModel(config, *dtype, static_cast<uint64_t>(seed), out));
  std::ofstream file(out + "/tokenizer.json", std::ios::trunc);
  file << tokenizer_json;
  file.close();
  if (!file) return absl::InternalError(absl::StrCat(out, "/tokenizer.json: write failed"));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> EnsureDefaultModel() {
  std::string root;
  if (const char* env = std::getenv("TANDEM_MODEL_CACHE"); env && *env) {
    root = env;
  } else {
    const char* home = std::getenv("HOME");
    root = absl::StrCat(home && *home ? home : "/tmp", "/.cache/tandem/models");
  }
  const std::string dir = root + "/small";
  if (std::filesystem::exists(dir + "/model.safetensors") && std::filesystem::exists(dir + "/tokenizer.json")) {
    return dir;
  }
  std::error_code error;
  std::filesystem::create_directories(root, error);
  if (error) return absl::PermissionDeniedError(absl::StrCat(root, ": ", error.message()));
  // Written beside and renamed into place, so a half-written model is never picked up.
  const std::string partial = absl::StrCat(dir, ".partial.", getpid());
  TANDEM_RETURN_IF_ERROR(Mkmodel(partial, "small", 0, "f32"));
  std::filesystem::remove_all(dir, error);
  std::filesystem::rename(partial, dir, error);
  if (error) return absl::InternalError(absl::StrCat("moving ", partial, " to ", dir, ": ", error.message()));
  return dir;
}

int MkmodelCommand(const std::vector<std::string>& args) {
  std::string out, preset = "tiny", dtype = "f32";
  int64_t seed = 0;
  FlagParser parser("tandem mkmodel --out DIR [--preset NAME] [--seed S] [--dtype f32|f16|bf16]");
  parser.AddString("out", &out, "directory to write config.json, model.safetensors, tokenizer.json");
  parser.AddString("preset", &preset, "tiny, small, tinyllama-1.1b, llama3.2-1b or llama3-8b");
  parser.AddInt("seed", &seed, "weights seed: the same seed writes the same bytes");
  parser.AddString("dtype", &dtype, "weight dtype on disk: f32, f16 or bf16");
  absl::Status status = parser.Parse(args);
  if (parser.help_requested()) {
    std::fputs(parser.Usage().c_str(), stdout);
    return 0;
  }
  if (status.ok()) status = Mkmodel(out, preset, seed, dtype);
  if (!status.ok()) {
    std::fprintf(stderr, "tandem mkmodel: %s\n", status.ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "wrote %s (preset %s, %s, seed %lld)\n", out.c_str(), preset.c_str(), dtype.c_str(),
               static_cast<long long>(seed));
  return 0;
}

}  // namespace tandem
