#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/unicode.h"

namespace tandem {

using tokenizer_internal::AddedToken;
using tokenizer_internal::AddedVocabulary;
using tokenizer_internal::BpeModel;
using tokenizer_internal::Decoder;
using tokenizer_internal::FindField;
using tokenizer_internal::Json;
using tokenizer_internal::Normalizer;
using tokenizer_internal::PostProcessor;
using tokenizer_internal::PreToken;
using tokenizer_internal::PreTokenizer;
using tokenizer_internal::Segment;

namespace {

// Prefixes every error of loading with the file it came from.
absl::Status WithSource(const absl::Status& status, std::string_view source) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(std::string(source), ": ", status.message()));
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat(path, ": cannot open tokenizer file"));
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return FromJson(contents.str(), path);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view json,
                                                               std::string_view source) {
  auto tokenizer = std::unique_ptr<Tokenizer>(new Tokenizer());
  TANDEM_RETURN_IF_ERROR(WithSource(tokenizer->Load(json), source));
  return tokenizer;
}

absl::Status Tokenizer::Load(std::string_view text) {
  // nlohmann::json reports errors by exception; they are translated here, once, and never leave
  // the library.
  Json root;
  try {
    root = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& error) {
    return absl::InvalidArgumentError(absl::StrCat("malformed JSON: ", error.what()));
  }
  try {
    if (!root.is_object()) return absl::InvalidArgumentError("top level must be a JSON object");
    const Json* model = FindField(root, "model");
    if (model == nullptr || !model->is_object()) {
      return absl::InvalidArgumentError("model is missing or not an object");
    }
    TANDEM_ASSIGN_OR_RETURN(auto type, tokenizer_internal::GetOptionalString(*model, "type", "model"));
    if (!type.has_value() && model->contains("vocab") && model->contains("merges")) type = "BPE";
    if (!type.has_value()) return absl::InvalidArgumentError("model.type is missing");
    if (*type != "BPE") {
      return absl::InvalidArgumentError(
          absl::StrCat("model.type '", *type, "' is not supported (supported: BPE)"));
    }
    TANDEM_ASSIGN_OR_RETURN(model_, BpeModel::FromJson(*model));
    TANDEM_ASSIGN_OR_RETURN(added_, AddedVocabulary::FromJson(FindField(root, "added_tokens")));
    if (const Json* normalizer = FindField(root, "normalizer")) {
      TANDEM_ASSIGN_OR_RETURN(normalizer_, Normalizer::FromJson(*normalizer, "normalizer"));
    }
    if (const Json* pre_tokenizer = FindField(root, "pre_tokenizer")) {
      TANDEM_ASSIGN_OR_RETURN(pre_tokenizer_,
                              PreTokenizer::FromJson(*pre_tokenizer, "pre_tokenizer"));
    }
    TANDEM_ASSIGN_OR_RETURN(
        post_processor_, PostProcessor::FromJson(FindField(root, "post_processor"), "post_processor"));
    TANDEM_ASSIGN_OR_RETURN(decoder_, Decoder::FromJson(FindField(root, "decoder"), "decoder"));
  } catch (const Json::exception& error) {
    // Defensive: every access above checks types first, so this means a bug, not a bad file.
    return absl::InternalError(absl::StrCat("unexpected JSON structure: ", error.what()));
  }

  vocab_size_ = model_->vocab_size();
  for (const AddedToken& token : added_->tokens()) {
    vocab_size_ = std::max<int64_t>(vocab_size_, int64_t{token.id} + 1);
  }
  for (const std::vector<int32_t>* ids :
       {&post_processor_->prefix_ids(), &post_processor_->suffix_ids()}) {
    for (int32_t id : *ids) {
      if (!IdToToken(id).has_value()) {
        return absl::InvalidArgumentError(
            absl::StrCat("post_processor refers to token id ", id, ", which has no token"));
      }
    }
  }
  FindBosEos();
  return absl::OkStatus();
}

void Tokenizer::FindBosEos() {
  if (!post_processor_->prefix_ids().empty()) bos_id_ = post_processor_->prefix_ids().front();
  if (!post_processor_->suffix_ids().empty()) eos_id_ = post_processor_->suffix_ids().back();
  auto first_added = [this](std::initializer_list<std::string_view> names) -> std::optional<int32_t> {
    for (std::string_view name : names) {
      if (const AddedToken* token = added_->FindByContent(name)) return token->id;
    }
    return std::nullopt;
  };
  if (!bos_id_.has_value()) {
    bos_id_ = first_added({"<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>"});
  }
  if (!eos_id_.has_value()) {
    eos_id_ = first_added({"</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>", "<|im_end|>",
                           "<|eot_id|>"});
  }
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                                       bool add_special_tokens) const {
  if (auto offset = tokenizer_internal::FindInvalidUtf8(text)) {
    return absl::InvalidArgumentError(
        absl::StrCat("text to encode is not valid UTF-8 (byte offset ", *offset, ")"));
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) {
    const auto& prefix = post_processor_->prefix_ids();
    ids.insert(ids.end(), prefix.begin(), prefix.end());
  }
  for (const Segment& segment : added_->Split(text, /*normalized_pass=*/false)) {
    if (segment.token_id >= 0) {
      ids.push_back(segment.token_id);
      continue;
    }
    TANDEM_RETURN_IF_ERROR(EncodeSegment(segment.text, segment.offset == 0, &ids));
  }
  if (add_special_tokens) {
    const auto& suffix = post_processor_->suffix_ids();
    ids.insert(ids.end(), suffix.begin(), suffix.end());
  }
  return ids;
}

absl::Status Tokenizer::EncodeSegment(std::string_view text, bool at_start,
                                      std::vector<int32_t>* ids) const {
  std::string normalized;
  if (normalizer_ != nullptr) {
    TANDEM_ASSIGN_OR_RETURN(normalized, normalizer_->Normalize(text));
    text = normalized;
  }
  std::vector<PreToken> words;
  for (const Segment& segment : added_->Split(text, /*normalized_pass=*/true)) {
    if (segment.token_id >= 0) {
      // Flush the words before this added token, then the token itself.
      if (!words.empty()) {
        if (pre_tokenizer_ != nullptr) TANDEM_RETURN_IF_ERROR(pre_tokenizer_->PreTokenize(&words));
        for (const PreToken& word : words) model_->EncodeWord(word.text, ids);
        words.clear();
      }
      ids->push_back(segment.token_id);
      continue;
    }
    words.push_back(PreToken{std::string(segment.text), at_start && segment.offset == 0});
  }
  if (pre_tokenizer_ != nullptr) TANDEM_RETURN_IF_ERROR(pre_tokenizer_->PreTokenize(&words));
  for (const PreToken& word : words) model_->EncodeWord(word.text, ids);
  return absl::OkStatus();
}

absl::StatusOr<const std::string*> Tokenizer::TokenForDecode(int32_t id,
                                                             bool skip_special_tokens) const {
  if (id < 0 || id >= vocab_size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("token id ", id, " is out of range [0, ", vocab_size_, ")"));
  }
  if (const AddedToken* token = added_->FindById(id)) {
    if (skip_special_tokens && token->special) return nullptr;
    return &token->content;
  }
  const std::string* token = model_->IdToToken(id);
  if (token == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("token id ", id, " has no token"));
  }
  return token;
}

absl::StatusOr<std::string> Tokenizer::Decode(const std::vector<int32_t>& ids,
                                              bool skip_special_tokens) const {
  std::unique_ptr<tokenizer_internal::DecodeStream> stream = decoder_->NewStream();
  std::string text;
  for (int32_t id : ids) {
    TANDEM_ASSIGN_OR_RETURN(const std::string* token, TokenForDecode(id, skip_special_tokens));
    if (token != nullptr) stream->Push(*token, &text);
  }
  stream->Finish(&text);
  return text;
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (const AddedToken* added = added_->FindByContent(token)) return added->id;
  return model_->TokenToId(token);
}

std::optional<std::string_view> Tokenizer::IdToToken(int32_t id) const {
  if (const AddedToken* added = added_->FindById(id)) return added->content;
  if (const std::string* token = model_->IdToToken(id)) return *token;
  return std::nullopt;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  const AddedToken* token = added_->FindById(id);
  return token != nullptr && token->special;
}

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer),
      skip_special_tokens_(skip_special_tokens),
      stream_(tokenizer.decoder_->NewStream()) {}

StreamingDetokenizer::~StreamingDetokenizer() = default;

absl::StatusOr<std::string> StreamingDetokenizer::Push(int32_t id) {
  TANDEM_ASSIGN_OR_RETURN(const std::string* token,
                          tokenizer_.TokenForDecode(id, skip_special_tokens_));
  std::string text;
  if (token != nullptr) stream_->Push(*token, &text);
  return text;
}

std::string StreamingDetokenizer::Flush() {
  std::string text;
  stream_->Finish(&text);
  stream_ = tokenizer_.decoder_->NewStream();
  return text;
}

}  // namespace tandem
