#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "tokenizer/unicode.h"

namespace tandem::tokenizer_internal {
namespace {

bool IsAsciiSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
                                   c == '\v' || c == '\f'; }

// Word characters for single_word: ASCII alphanumerics, '_' and any non-ASCII byte (letters of
// other scripts); a conservative stand-in for the Unicode \w class.
bool IsWordByte(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AddedVocabulary>> AddedVocabulary::FromJson(
    const Json* added_tokens) {
  auto vocabulary = std::make_unique<AddedVocabulary>();
  if (added_tokens == nullptr) return vocabulary;
  if (!added_tokens->is_array()) {
    return absl::InvalidArgumentError("added_tokens must be an array");
  }
  for (size_t i = 0; i < added_tokens->size(); ++i) {
    const Json& entry = (*added_tokens)[i];
    const std::string path = absl::StrCat("added_tokens[", i, "]");
    if (!entry.is_object()) return absl::InvalidArgumentError(path + " must be an object");
    AddedToken token;
    TANDEM_ASSIGN_OR_RETURN(const int64_t id, GetInt(entry, "id", path, -1));
    if (id < 0 || id > INT32_MAX - 1) {
      return absl::InvalidArgumentError(path + ".id is missing or out of range");
    }
    token.id = static_cast<int32_t>(id);
    TANDEM_ASSIGN_OR_RETURN(token.content, GetString(entry, "content", path));
    if (token.content.empty()) return absl::InvalidArgumentError(path + ".content is empty");
    if (FindInvalidUtf8(token.content).has_value()) {
      return absl::InvalidArgumentError(path + ".content is not valid UTF-8");
    }
    TANDEM_ASSIGN_OR_RETURN(token.special, GetBool(entry, "special", path, false));
    // The reference defaults `normalized` to the opposite of `special`.
    TANDEM_ASSIGN_OR_RETURN(token.normalized, GetBool(entry, "normalized", path, !token.special));
    TANDEM_ASSIGN_OR_RETURN(token.lstrip, GetBool(entry, "lstrip", path, false));
    TANDEM_ASSIGN_OR_RETURN(token.rstrip, GetBool(entry, "rstrip", path, false));
    TANDEM_ASSIGN_OR_RETURN(token.single_word, GetBool(entry, "single_word", path, false));
    if (vocabulary->by_id_.contains(token.id)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": id ", token.id, " is used twice"));
    }
    const size_t index = vocabulary->tokens_.size();
    vocabulary->by_id_[token.id] = index;
    vocabulary->by_content_.try_emplace(token.content, index);
    vocabulary->tokens_.push_back(std::move(token));
  }
  for (size_t i = 0; i < vocabulary->tokens_.size(); ++i) {
    const AddedToken& token = vocabulary->tokens_[i];
    if (vocabulary->by_content_[token.content] != i) continue;  // duplicate content: first wins
    Pass& pass = token.normalized ? vocabulary->normalized_pass_ : vocabulary->raw_pass_;
    pass.by_first_byte[static_cast<uint8_t>(token.content[0])].push_back(i);
    pass.empty = false;
  }
  for (Pass* pass : {&vocabulary->raw_pass_, &vocabulary->normalized_pass_}) {
    for (auto& bucket : pass->by_first_byte) {
      std::stable_sort(bucket.begin(), bucket.end(), [&](size_t a, size_t b) {
        return vocabulary->tokens_[a].content.size() > vocabulary->tokens_[b].content.size();
      });
    }
  }
  return vocabulary;
}

const AddedToken* AddedVocabulary::MatchAt(const Pass& pass, std::string_view text,
                                           size_t pos) const {
  for (size_t index : pass.by_first_byte[static_cast<uint8_t>(text[pos])]) {
    const AddedToken& token = tokens_[index];
    if (text.substr(pos).starts_with(token.content)) {
      if (token.single_word) {
        const size_t end = pos + token.content.size();
        if ((pos > 0 && IsWordByte(text[pos - 1])) ||
            (end < text.size() && IsWordByte(text[end]))) {
          continue;
        }
      }
      return &token;
    }
  }
  return nullptr;
}

std::vector<Segment> AddedVocabulary::Split(std::string_view text, bool normalized_pass) const {
  std::vector<Segment> segments;
  const Pass& pass = normalized_pass ? normalized_pass_ : raw_pass_;
  if (pass.empty) {
    if (!text.empty()) segments.push_back(Segment{text, -1, 0});
    return segments;
  }
  size_t plain_begin = 0;  // start of the plain text not yet emitted
  size_t pos = 0;
  while (pos < text.size()) {
    const AddedToken* token = MatchAt(pass, text, pos);
    if (token == nullptr) {
      ++pos;
      continue;
    }
    size_t match_begin = pos;
    size_t match_end = pos + token->content.size();
    if (token->lstrip) {
      while (match_begin > plain_begin && IsAsciiSpace(text[match_begin - 1])) --match_begin;
    }
    if (token->rstrip) {
      while (match_end < text.size() && IsAsciiSpace(text[match_end])) ++match_end;
    }
    if (match_begin > plain_begin) {
      segments.push_back(
          Segment{text.substr(plain_begin, match_begin - plain_begin), -1, plain_begin});
    }
    segments.push_back(
        Segment{text.substr(match_begin, match_end - match_begin), token->id, match_begin});
    plain_begin = pos = match_end;
  }
  if (plain_begin < text.size()) {
    segments.push_back(Segment{text.substr(plain_begin), -1, plain_begin});
  }
  return segments;
}

const AddedToken* AddedVocabulary::FindById(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::FindByContent(std::string_view content) const {
  auto it = by_content_.find(absl::string_view(content.data(), content.size()));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

}  // namespace tandem::tokenizer_internal
