#include "tokenizer/unicode.h"

#include <string>

#include "gtest/gtest.h"

namespace tandem::tokenizer_internal {
namespace {

const std::string kFffd(kReplacementCharacter);

std::string Lossy(const std::vector<std::string>& chunks) {
  Utf8LossyStream stream;
  std::string out;
  for (const std::string& chunk : chunks) stream.Append(chunk, &out);
  stream.Finish(&out);
  return out;
}

TEST(Utf8LossyStreamTest, HoldsIncompleteCharacters) {
  Utf8LossyStream stream;
  std::string out;
  stream.Append("a\xF0\x9F", &out);
  EXPECT_EQ(out, "a");
  stream.Append("\x98", &out);
  EXPECT_EQ(out, "a");
  stream.Append("\x80" "b", &out);
  EXPECT_EQ(out, "a\xF0\x9F\x98\x80" "b");
}

TEST(Utf8LossyStreamTest, ReplacesMaximalSubparts) {
  EXPECT_EQ(Lossy({"\xE2\x82", "A"}), kFffd + "A");               // truncated sequence
  EXPECT_EQ(Lossy({"\xC0\xAF"}), kFffd + kFffd);                  // overlong lead
  EXPECT_EQ(Lossy({"\xED\xA0\x80"}), kFffd + kFffd + kFffd);      // surrogate
  EXPECT_EQ(Lossy({"\x80\x80"}), kFffd + kFffd);                  // lone continuations
  EXPECT_EQ(Lossy({"\xF0\x9F\x98"}), kFffd);                      // ends incomplete
  EXPECT_EQ(Lossy({"\xF4\x90\x80\x80"}), kFffd + kFffd + kFffd + kFffd);  // > U+10FFFF
}

TEST(Utf8Test, FindInvalid) {
  EXPECT_EQ(FindInvalidUtf8("h\xC3\xA9llo \xF0\x9F\x98\x80"), std::nullopt);
  EXPECT_EQ(FindInvalidUtf8("ab\xC3"), 2u);
  EXPECT_EQ(FindInvalidUtf8("\xFF"), 0u);
}

TEST(ByteToUnicodeTest, MatchesGpt2Table) {
  const auto& table = ByteToUnicode();
  EXPECT_EQ(table[' '], "\xC4\xA0");   // Ġ
  EXPECT_EQ(table['\n'], "\xC4\x8A");  // Ċ
  EXPECT_EQ(table['A'], "A");
  EXPECT_EQ(table[0xAD], "\xC5\x83");  // Ń: the one remapped byte above 0xA0
  for (int b = 0; b < 256; ++b) {
    size_t pos = 0;
    EXPECT_EQ(UnicodeToByte(NextCodePoint(table[b], &pos)), b);
  }
  EXPECT_EQ(UnicodeToByte(U'\u2581'), std::nullopt);
}

}  // namespace
}  // namespace tandem::tokenizer_internal
