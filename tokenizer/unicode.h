// UTF-8 helpers and the GPT-2 byte <-> unicode table shared by the tokenizer pieces.
//
// Everything here is pure and thread-safe. Internal to tandem_tokenizer.
#ifndef TANDEM_TOKENIZER_UNICODE_H_
#define TANDEM_TOKENIZER_UNICODE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tandem::tokenizer_internal {

// Length in bytes of the UTF-8 sequence that starts with `lead`, or 1 for a byte that cannot start
// one (so that loops over malformed text still advance).
size_t Utf8SequenceLength(unsigned char lead);

// Returns the byte offset of the first malformed sequence, or nullopt when `text` is valid UTF-8.
std::optional<size_t> FindInvalidUtf8(std::string_view text);

// Appends the UTF-8 encoding of `code_point` (must be <= 0x10FFFF).
void AppendUtf8(char32_t code_point, std::string* out);

// Decodes the code point that starts at `text[*pos]` of valid UTF-8 and advances *pos.
char32_t NextCodePoint(std::string_view text, size_t* pos);

// GPT-2 "bytes_to_unicode": every byte maps to one printable code point, given as UTF-8.
const std::array<std::string, 256>& ByteToUnicode();

// Inverse of ByteToUnicode for one code point; nullopt for code points outside the table.
std::optional<uint8_t> UnicodeToByte(char32_t code_point);

// Incremental UTF-8 decoder with the "maximal subpart" replacement rule (one U+FFFD per maximal
// invalid subsequence, the rule of Rust's String::from_utf8_lossy and of the WHATWG encoding
// standard). Bytes of a sequence that may still complete are held back until more input arrives,
// so the output never contains a partial character.
class Utf8LossyStream {
 public:
  // Decodes `bytes` after what was held back and appends the final text to `out`.
  void Append(std::string_view bytes, std::string* out);
  // Ends the stream: a held incomplete sequence becomes one U+FFFD.
  void Finish(std::string* out);

 private:
  std::string pending_;  // an incomplete but so far valid sequence, at most 3 bytes
};

inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

}  // namespace tandem::tokenizer_internal

#endif  // TANDEM_TOKENIZER_UNICODE_H_
