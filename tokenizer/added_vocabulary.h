// Added tokens of a tokenizer.json ("added_tokens"): matched in the input before the model runs.
//
// Matching is leftmost-longest. Tokens with normalized=false are matched in the raw text, the
// others in the normalized text of each remaining segment (two passes, as the reference does).
// lstrip/rstrip let a match swallow the whitespace on its left/right; single_word rejects matches
// that touch a word character.
//
// Thread safety: immutable after construction.
#ifndef TANDEM_TOKENIZER_ADDED_VOCABULARY_H_
#define TANDEM_TOKENIZER_ADDED_VOCABULARY_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "tokenizer/json_fields.h"

namespace tandem::tokenizer_internal {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool normalized = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

// A piece of the input: either plain text for the model (token_id < 0) or one added token.
struct Segment {
  std::string_view text;
  int32_t token_id = -1;
  size_t offset = 0;  // byte offset of `text` in the string that was split
};

class AddedVocabulary {
 public:
  // Parses the "added_tokens" array (null or absent: empty).
  static absl::StatusOr<std::unique_ptr<AddedVocabulary>> FromJson(const Json* added_tokens);

  // Splits `text` on tokens with normalized == `normalized_pass`. Segments cover `text` in order
  // except whitespace consumed by lstrip/rstrip; empty plain segments are dropped.
  std::vector<Segment> Split(std::string_view text, bool normalized_pass) const;

  const AddedToken* FindById(int32_t id) const;
  const AddedToken* FindByContent(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  struct Pass {
    // Token indexes by first byte, longest content first.
    std::vector<std::vector<size_t>> by_first_byte = std::vector<std::vector<size_t>>(256);
    bool empty = true;
  };

  // Longest token of `pass` that matches at `text[pos]` and satisfies single_word, or nullptr.
  const AddedToken* MatchAt(const Pass& pass, std::string_view text, size_t pos) const;

  std::vector<AddedToken> tokens_;
  absl::flat_hash_map<int32_t, size_t> by_id_;
  absl::flat_hash_map<std::string, size_t> by_content_;
  Pass raw_pass_;
  Pass normalized_pass_;
};

}  // namespace tandem::tokenizer_internal

#endif  // TANDEM_TOKENIZER_ADDED_VOCABULARY_H_
