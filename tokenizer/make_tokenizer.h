// Builds small byte-level BPE tokenizers for random-weight demo models (`tandem mkmodel`).
//
// Thread safety: pure functions.
#ifndef TANDEM_TOKENIZER_MAKE_TOKENIZER_H_
#define TANDEM_TOKENIZER_MAKE_TOKENIZER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tandem {

// Trains a byte-level BPE on `training_text` and returns a complete tokenizer.json that
// Tokenizer::FromJson loads:
//   ids 0..255       the 256 bytes (GPT-2 byte -> unicode spelling, in byte order),
//   ids 256..        learned merges, most frequent pair first (ties: smaller pair by the bytes of
//                    its two tokens), until vocab_size - special_tokens.size() tokens exist,
//   last ids         `special_tokens`, in order, as special added tokens.
// GPT-2 pre-tokenizer regex and ByteLevel decoder; when special tokens are given, a
// TemplateProcessing post_processor prepends the first one (e.g. "<s>") as BOS.
// The output is a deterministic function of the arguments (same bytes every call).
// InvalidArgument when vocab_size is below 256 + specials, a special token is empty or repeated,
// or the text has too few distinct pairs to reach vocab_size (the message says how many are
// reachable).
absl::StatusOr<std::string> MakeByteLevelBpeTokenizerJson(
    int vocab_size, std::string_view training_text,
    const std::vector<std::string>& special_tokens);

// A few KB of English prose (plus a little non-ASCII text) to train demo tokenizers on.
// Trained on it, MakeByteLevelBpeTokenizerJson reaches at most 1232 tokens + the special tokens.
extern const std::string_view kEnglishTrainingText;

}  // namespace tandem

#endif  // TANDEM_TOKENIZER_MAKE_TOKENIZER_H_
