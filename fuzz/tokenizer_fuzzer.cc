// Fuzzes Tokenizer::Encode, Decode and StreamingDetokenizer on two fixed tokenizers (fuzz_support.h):
// a byte-level BPE and a SentencePiece-style BPE with byte fallback.
//
// Input: one flags byte, then text (or, with kIdsMode, little-endian 16-bit token ids).
// Invariants:
//   - Encode accepts exactly the valid UTF-8 texts; every id it returns is in [0, vocab_size) and has
//     a token; with add_special_tokens the ids without them appear inside, in order.
//   - Decode of those ids succeeds and is valid UTF-8; Decode(Encode(text)) == text for the byte-level
//     tokenizer, and for the SentencePiece one when the text holds no U+2581 and no added token (both
//     change on the way, as in the reference implementation).
//   - Decode of any ids is valid UTF-8 when it succeeds, and the streaming detokenizer agrees with it:
//     it refuses an id exactly when Decode fails, and its pieces concatenate to Decode's text.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fuzz/fuzz_support.h"
#include "tokenizer/tokenizer.h"

namespace tandem::fuzz {
namespace {

constexpr uint8_t kSentencePiece = 1;
constexpr uint8_t kAddSpecialTokens = 2;
constexpr uint8_t kSkipSpecialTokens = 4;
constexpr uint8_t kIdsMode = 8;

std::string Ids(const std::vector<int32_t>& ids) { return absl::StrCat("[", absl::StrJoin(ids, ","), "]"); }

std::string Quoted(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += absl::StrCat("\\x", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out + "\"";
}

// Decode, checked against the streaming detokenizer. Returns Decode's result.
absl::StatusOr<std::string> CheckedDecode(const Tokenizer& tokenizer, const std::vector<int32_t>& ids,
                                          bool skip_special_tokens) {
  absl::StatusOr<std::string> decoded = tokenizer.Decode(ids, skip_special_tokens);
  StreamingDetokenizer stream(tokenizer, skip_special_tokens);
  std::string streamed;
  bool refused = false;
  for (int32_t id : ids) {
    absl::StatusOr<std::string> piece = stream.Push(id);
    if (!piece.ok()) {
      refused = true;
      continue;
    }
    TANDEM_FUZZ_CHECK(IsValidUtf8(*piece), absl::StrCat("streamed piece ", Quoted(*piece), " of ", Ids(ids)));
    streamed += *piece;
  }
  const std::string tail = stream.Flush();
  TANDEM_FUZZ_CHECK(IsValidUtf8(tail), absl::StrCat("flushed ", Quoted(tail), " of ", Ids(ids)));
  streamed += tail;
  TANDEM_FUZZ_CHECK(decoded.ok() != refused,
                    absl::StrCat("Decode ", decoded.ok() ? "accepted" : "refused", " ", Ids(ids),
                                 " but the streaming detokenizer ", refused ? "refused" : "accepted", " it"));
  if (decoded.ok()) {
    TANDEM_FUZZ_CHECK(IsValidUtf8(*decoded), absl::StrCat("Decode(", Ids(ids), ") = ", Quoted(*decoded)));
    TANDEM_FUZZ_CHECK(streamed == *decoded, absl::StrCat("streamed ", Quoted(streamed), " != decoded ",
                                                         Quoted(*decoded), " for ", Ids(ids)));
  }
  return decoded;
}

bool HoldsAddedToken(std::string_view text) {
  for (std::string_view token : {"<unk>", "<s>", "</s>"}) {
    if (text.find(token) != std::string_view::npos) return true;
  }
  return false;
}

void FuzzText(const Tokenizer& tokenizer, bool sentencepiece, uint8_t flags, std::string_view text) {
  const bool add_special = (flags & kAddSpecialTokens) != 0;
  const bool skip_special = (flags & kSkipSpecialTokens) != 0;
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(text, add_special);
  if (!IsValidUtf8(text)) {
    TANDEM_FUZZ_CHECK(!ids.ok() && absl::IsInvalidArgument(ids.status()),
                      absl::StrCat("Encode accepted invalid UTF-8 ", Quoted(text)));
    return;
  }
  TANDEM_FUZZ_CHECK(ids.ok(), absl::StrCat("Encode(", Quoted(text), "): ", ids.status().ToString()));
  for (int32_t id : *ids) {
    TANDEM_FUZZ_CHECK(id >= 0 && id < tokenizer.vocab_size() && tokenizer.IdToToken(id).has_value(),
                      absl::StrCat("Encode(", Quoted(text), ") = ", Ids(*ids), " holds id ", id));
  }
  absl::StatusOr<std::vector<int32_t>> plain = *ids;
  if (add_special) {
    plain = tokenizer.Encode(text, false);
    TANDEM_FUZZ_CHECK(plain.ok(), plain.status().ToString());
    TANDEM_FUZZ_CHECK(std::search(ids->begin(), ids->end(), plain->begin(), plain->end()) != ids->end(),
                      absl::StrCat("with special tokens ", Ids(*ids), ", without ", Ids(*plain)));
  }
  absl::StatusOr<std::string> decoded = CheckedDecode(tokenizer, *ids, skip_special);
  TANDEM_FUZZ_CHECK(decoded.ok(),
                    absl::StrCat("Decode(Encode(", Quoted(text), ")): ", decoded.status().ToString()));

  absl::StatusOr<std::string> round_trip = tokenizer.Decode(*plain, /*skip_special_tokens=*/false);
  TANDEM_FUZZ_CHECK(round_trip.ok(), round_trip.status().ToString());
  const bool exact =
      !sentencepiece || (text.find("\xE2\x96\x81") == std::string_view::npos && !HoldsAddedToken(text));
  if (exact) {
    TANDEM_FUZZ_CHECK(*round_trip == text, absl::StrCat("Decode(Encode(", Quoted(text),
                                                        ")) = ", Quoted(*round_trip), " via ", Ids(*plain)));
  }
}

void FuzzIds(const Tokenizer& tokenizer, uint8_t flags, std::string_view bytes) {
  // Ids around [0, vocab_size), a few past each end.
  const int64_t span = tokenizer.vocab_size() + 8;
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    const int value = static_cast<unsigned char>(bytes[i]) | static_cast<unsigned char>(bytes[i + 1]) << 8;
    ids.push_back(static_cast<int32_t>(value % span) - 4);
  }
  // Any ids: CheckedDecode checks whatever Decode answers.
  static_cast<void>(CheckedDecode(tokenizer, ids, (flags & kSkipSpecialTokens) != 0));
}

}  // namespace
}  // namespace tandem::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tandem::fuzz;
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const bool sentencepiece = (flags & kSentencePiece) != 0;
  const tandem::Tokenizer& tokenizer = sentencepiece ? SentencePieceTokenizer() : ByteLevelTokenizer();
  const std::string_view rest = AsText(data + 1, size - 1);
  if (flags & kIdsMode) {
    FuzzIds(tokenizer, flags, rest);
  } else {
    FuzzText(tokenizer, sentencepiece, flags, rest);
  }
  return 0;
}
