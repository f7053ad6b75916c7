// A compiled PCRE2 pattern (UTF + UCP mode, JIT when available) used by pre-tokenizers,
// normalizers and the BPE trainer.
//
// Thread safety: a Regex is immutable after Compile; FindAll may be called concurrently (each
// call allocates its own match data).
#ifndef TANDEM_TOKENIZER_REGEX_H_
#define TANDEM_TOKENIZER_REGEX_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace tandem::tokenizer_internal {

struct ByteRange {
  size_t begin;
  size_t end;
};

class Regex {
 public:
  // Compiles `pattern` with \p{..} classes, (?i:..) groups and lookarounds. Errors name the
  // pattern and PCRE2's message.
  static absl::StatusOr<std::unique_ptr<Regex>> Compile(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Every non-overlapping match in `text` (valid UTF-8), left to right, as byte ranges. After an
  // empty match the search resumes one character later.
  absl::StatusOr<std::vector<ByteRange>> FindAll(std::string_view text) const;

  const std::string& pattern() const { return pattern_; }

 private:
  Regex(std::string pattern, void* code) : pattern_(std::move(pattern)), code_(code) {}

  std::string pattern_;
  void* code_;  // pcre2_code_8*, owned
};

}  // namespace tandem::tokenizer_internal

#endif  // TANDEM_TOKENIZER_REGEX_H_
