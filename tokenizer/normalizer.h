// The "normalizer" of a tokenizer.json: Sequence, Prepend, Replace (String or Regex pattern) and
// Strip. Unicode normalization forms (NFC, NFKC, ...), Lowercase and the Bert/Precompiled
// normalizers are refused at load time with InvalidArgument naming the field.
//
// Thread safety: immutable after FromJson.
#ifndef TANDEM_TOKENIZER_NORMALIZER_H_
#define TANDEM_TOKENIZER_NORMALIZER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/regex.h"

namespace tandem::tokenizer_internal {

class Normalizer {
 public:
  // `normalizer` is the JSON object; `path` names it in errors ("normalizer").
  static absl::StatusOr<std::unique_ptr<Normalizer>> FromJson(const Json& normalizer,
                                                              const std::string& path);

  // Normalizes one segment of input text (valid UTF-8).
  absl::StatusOr<std::string> Normalize(std::string_view text) const;

 private:
  enum class Kind { kPrepend, kReplace, kStrip };
  struct Step {
    Kind kind;
    std::string text;              // kPrepend: the prefix; kReplace: the literal pattern
    std::string content;           // kReplace: the replacement
    std::unique_ptr<Regex> regex;  // kReplace with a Regex pattern; kStrip: leading/trailing \s
  };

  absl::Status AddSteps(const Json& normalizer, const std::string& path);

  std::vector<Step> steps_;
};

}  // namespace tandem::tokenizer_internal

#endif  // TANDEM_TOKENIZER_NORMALIZER_H_
