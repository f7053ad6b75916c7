// Fuzzes tokenizer.json parsing (Tokenizer::FromJson), then uses what loaded.
//
// Invariants:
//   - A malformed file is a Status, never a crash, and never InternalError (the loader checks every
//     JSON type before reading it; InternalError marks that a check is missing).
//   - A tokenizer that loads encodes a few fixed texts (and the input's own bytes, when they are valid
//     UTF-8) to ids in [0, vocab_size) that have a token, or refuses with a Status; those ids decode to
//     valid UTF-8, and the streaming detokenizer produces the same text.
//   - Every id in [0, min(vocab_size, 512)) decodes alone to valid UTF-8 when Decode accepts it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_support.h"
#include "tokenizer/tokenizer.h"

namespace tandem::fuzz {
namespace {

constexpr std::string_view kTexts[] = {
    "Hello, world!",
    " The quick brown fox  jumps\n\tover 12 lazy dogs.",
    "naïve café 中文 😀",
    "<s>[INST] hi [/INST]</s>",
    "<|im_end|><unk>",
    "   ",
    "a",
    "",
};

void CheckDecode(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, bool skip_special_tokens) {
  absl::StatusOr<std::string> decoded = tokenizer.Decode(ids, skip_special_tokens);
  StreamingDetokenizer stream(tokenizer, skip_special_tokens);
  std::string streamed;
  bool refused = false;
  for (int32_t id : ids) {
    absl::StatusOr<std::string> piece = stream.Push(id);
    if (piece.ok()) {
      streamed += *piece;
    } else {
      refused = true;
    }
  }
  streamed += stream.Flush();
  TANDEM_FUZZ_CHECK(decoded.ok() != refused, "Decode and the streaming detokenizer disagree on refusing");
  if (!decoded.ok()) return;
  TANDEM_FUZZ_CHECK(IsValidUtf8(*decoded), "Decode produced invalid UTF-8");
  TANDEM_FUZZ_CHECK(streamed == *decoded, absl::StrCat("streamed text (", streamed.size(),
                                                       " bytes) != decoded (", decoded->size(), ")"));
}

void Exercise(const Tokenizer& tokenizer, std::string_view text) {
  for (bool add_special : {false, true}) {
    absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(text, add_special);
    if (!IsValidUtf8(text)) {
      TANDEM_FUZZ_CHECK(!ids.ok(), "Encode accepted invalid UTF-8");
      return;
    }
    if (!ids.ok()) {
      TANDEM_FUZZ_CHECK(!absl::IsInternal(ids.status()) || absl::StrContains(ids.status().message(), "regex"),
                        ids.status().ToString());
      continue;
    }
    for (int32_t id : *ids) {
      TANDEM_FUZZ_CHECK(
          id >= 0 && id < tokenizer.vocab_size() && tokenizer.IdToToken(id).has_value(),
          absl::StrCat("Encode produced id ", id, " (vocab_size ", tokenizer.vocab_size(), ")"));
    }
    CheckDecode(tokenizer, *ids, false);
    CheckDecode(tokenizer, *ids, true);
  }
}

}  // namespace
}  // namespace tandem::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tandem::fuzz;
  const std::string_view json = AsText(data, size);
  absl::StatusOr<std::unique_ptr<tandem::Tokenizer>> loaded = tandem::Tokenizer::FromJson(json, "fuzz");
  if (!loaded.ok()) {
    TANDEM_FUZZ_CHECK(!absl::IsInternal(loaded.status()), loaded.status().ToString());
    TANDEM_FUZZ_CHECK(absl::StartsWith(loaded.status().message(), "fuzz: "), loaded.status().ToString());
    return 0;
  }
  const tandem::Tokenizer& tokenizer = **loaded;
  TANDEM_FUZZ_CHECK(tokenizer.vocab_size() >= 0, "negative vocab_size");
  for (std::string_view text : kTexts) Exercise(tokenizer, text);
  Exercise(tokenizer, json.substr(0, 256));
  const int32_t limit = static_cast<int32_t>(std::min<int64_t>(tokenizer.vocab_size(), 512));
  for (int32_t id = 0; id < limit; ++id) {
    absl::StatusOr<std::string> decoded = tokenizer.Decode({id}, false);
    if (decoded.ok())
      TANDEM_FUZZ_CHECK(IsValidUtf8(*decoded), absl::StrCat("Decode({", id, "}) is invalid UTF-8"));
  }
  return 0;
}
