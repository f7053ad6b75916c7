#include "tokenizer/unicode.h"

#include <vector>

namespace tandem::tokenizer_internal {
namespace {

// The valid range of the second byte of a sequence led by `lead` (Unicode Table 3-7); later
// continuation bytes are always 0x80..0xBF.
struct SecondByteRange {
  unsigned char low;
  unsigned char high;
};

SecondByteRange SecondRange(unsigned char lead) {
  if (lead == 0xE0) return {0xA0, 0xBF};
  if (lead == 0xED) return {0x80, 0x9F};
  if (lead == 0xF0) return {0x90, 0xBF};
  if (lead == 0xF4) return {0x80, 0x8F};
  return {0x80, 0xBF};
}

// Expected sequence length for a lead byte, or 0 when the byte can never start a sequence.
size_t ExpectedLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Classifies the sequence at text[pos]: returns its length when complete and valid; otherwise
// sets *valid_prefix to the length of the longest valid prefix (the maximal subpart, >= 1 for an
// invalid lead) and *truncated when the text ended inside an otherwise valid prefix.
size_t ClassifySequence(std::string_view text, size_t pos, size_t* valid_prefix, bool* truncated) {
  *truncated = false;
  const auto lead = static_cast<unsigned char>(text[pos]);
  const size_t length = ExpectedLength(lead);
  if (length == 0) {
    *valid_prefix = 1;
    return 0;
  }
  for (size_t i = 1; i < length; ++i) {
    if (pos + i >= text.size()) {
      *valid_prefix = i;
      *truncated = true;
      return 0;
    }
    const auto byte = static_cast<unsigned char>(text[pos + i]);
    const SecondByteRange range = i == 1 ? SecondRange(lead) : SecondByteRange{0x80, 0xBF};
    if (byte < range.low || byte > range.high) {
      *valid_prefix = i;
      return 0;
    }
  }
  return length;
}

std::array<std::string, 256> BuildByteToUnicode() {
  std::array<std::string, 256> table;
  std::array<bool, 256> printable{};
  for (int b = '!'; b <= '~'; ++b) printable[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
  char32_t next_free = 256;
  for (int b = 0; b < 256; ++b) {
    const char32_t code_point = printable[b] ? static_cast<char32_t>(b) : next_free++;
    AppendUtf8(code_point, &table[b]);
  }
  return table;
}

std::vector<int16_t> BuildUnicodeToByte() {
  // Every code point in the table is below 512 (256 + the 68 remapped bytes).
  std::vector<int16_t> inverse(512, -1);
  const auto& forward = ByteToUnicode();
  for (int b = 0; b < 256; ++b) {
    size_t pos = 0;
    inverse[NextCodePoint(forward[b], &pos)] = static_cast<int16_t>(b);
  }
  return inverse;
}

}  // namespace

size_t Utf8SequenceLength(unsigned char lead) {
  const size_t length = ExpectedLength(lead);
  return length == 0 ? 1 : length;
}

std::optional<size_t> FindInvalidUtf8(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t valid_prefix = 0;
    bool truncated = false;
    const size_t length = ClassifySequence(text, pos, &valid_prefix, &truncated);
    if (length == 0) return pos;
    pos += length;
  }
  return std::nullopt;
}

void AppendUtf8(char32_t code_point, std::string* out) {
  if (code_point < 0x80) {
    out->push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

char32_t NextCodePoint(std::string_view text, size_t* pos) {
  const auto lead = static_cast<unsigned char>(text[*pos]);
  size_t length = Utf8SequenceLength(lead);
  if (*pos + length > text.size()) length = text.size() - *pos;
  char32_t code_point;
  switch (length) {
    case 2: code_point = lead & 0x1F; break;
    case 3: code_point = lead & 0x0F; break;
    case 4: code_point = lead & 0x07; break;
    default: code_point = lead; break;
  }
  for (size_t i = 1; i < length; ++i) {
    code_point = (code_point << 6) | (static_cast<unsigned char>(text[*pos + i]) & 0x3F);
  }
  *pos += length;
  return code_point;
}

const std::array<std::string, 256>& ByteToUnicode() {
  static const auto* table = new std::array<std::string, 256>(BuildByteToUnicode());
  return *table;
}

std::optional<uint8_t> UnicodeToByte(char32_t code_point) {
  static const auto* inverse = new std::vector<int16_t>(BuildUnicodeToByte());
  if (code_point >= inverse->size() || (*inverse)[code_point] < 0) return std::nullopt;
  return static_cast<uint8_t>((*inverse)[code_point]);
}

void Utf8LossyStream::Append(std::string_view bytes, std::string* out) {
  std::string buffer;
  std::string_view text = bytes;
  if (!pending_.empty()) {
    buffer = pending_ + std::string(bytes);
    pending_.clear();
    text = buffer;
  }
  size_t pos = 0;
  while (pos < text.size()) {
    size_t valid_prefix = 0;
    bool truncated = false;
    const size_t length = ClassifySequence(text, pos, &valid_prefix, &truncated);
    if (length > 0) {
      out->append(text.substr(pos, length));
      pos += length;
    } else if (truncated) {
      pending_ = std::string(text.substr(pos));
      return;
    } else {
      out->append(kReplacementCharacter);
      pos += valid_prefix;
    }
  }
}

void Utf8LossyStream::Finish(std::string* out) {
  if (!pending_.empty()) out->append(kReplacementCharacter);
  pending_.clear();
}

}  // namespace tandem::tokenizer_internal
