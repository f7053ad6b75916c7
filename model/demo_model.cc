#include "model/demo_model.h"

#include <algorithm>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/random_model.h"
#include "nlohmann/json.hpp"
#include "tokenizer/make_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace tandem {
namespace {

// Tokens trained from the embedded text for demo models (the rest of a preset's vocabulary is reserved).
constexpr int64_t kTrainedVocabulary = 1024;

}  // namespace

absl::Status WriteDemoModel(ModelConfig config, DType dtype, uint64_t seed, const std::string& dir) {
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

  TANDEM_RETURN_IF_ERROR(WriteRandomModel(config, dtype, seed, dir));
  std::ofstream file(dir + "/tokenizer.json", std::ios::trunc);
  file << tokenizer_json;
  file.close();
  if (!file) return absl::InternalError(absl::StrCat(dir, "/tokenizer.json: write failed"));
  return absl::OkStatus();
}

}  // namespace tandem
