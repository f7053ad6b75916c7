// The "pre_tokenizer" of a tokenizer.json: splits normalized text into the words that BPE merges
// within. Supported: ByteLevel (GPT-2 regex when use_regex, then the byte -> unicode mapping),
// Split (String or Regex pattern; Removed, Isolated, MergedWithPrevious, MergedWithNext,
// Contiguous; invert), Metaspace (replacement, prepend_scheme first/always/never or the legacy
// add_prefix_space, split), Digits, Whitespace, WhitespaceSplit and Sequence of these.
//
// Thread safety: immutable after FromJson.
#ifndef TANDEM_TOKENIZER_PRE_TOKENIZER_H_
#define TANDEM_TOKENIZER_PRE_TOKENIZER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/regex.h"

namespace tandem::tokenizer_internal {

// One word on its way to the model.
struct PreToken {
  std::string text;
  bool at_start = false;  // begins at byte 0 of the caller's input (Metaspace "first")
};

// The regex GPT-2's ByteLevel pre-tokenizer splits with.
inline constexpr std::string_view kGpt2SplitPattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

class PreTokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> FromJson(const Json& pre_tokenizer,
                                                                 const std::string& path);
  ~PreTokenizer();

  // Replaces `words` by their pre-tokenized pieces, in order.
  absl::Status PreTokenize(std::vector<PreToken>* words) const;

 private:
  enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
  struct Step;

  PreTokenizer();
  absl::Status AddSteps(const Json& pre_tokenizer, const std::string& path);
  absl::Status ApplyStep(const Step& step, std::vector<PreToken>* words) const;

  std::vector<std::unique_ptr<Step>> steps_;
};

}  // namespace tandem::tokenizer_internal

#endif  // TANDEM_TOKENIZER_PRE_TOKENIZER_H_
