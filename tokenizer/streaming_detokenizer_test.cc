// StreamingDetokenizer: for every prefix of ids, the streamed text equals Decode, and no Push
// ever returns a partial UTF-8 character.
#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tokenizer/make_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tandem {
namespace {

const std::vector<std::string>& MultilingualTexts() {
  static const auto* texts = new std::vector<std::string>{
      "Hello world",
      "你好，世界！今天天气很好。",
      "こんにちは、世界。カタカナとひらがなと漢字。",
      "안녕하세요, 세계! 한국어 텍스트입니다.",
      "مرحبا بالعالم",
      "नमस्ते दुनिया",
      "Привет, мир! Ελληνικά ไทย",
      "Café naïve résumé coöperate Zürich façade",
      "I ❤\xEF\xB8\x8F tokenizers 😀🎉",
      "family: 👨\xE2\x80\x8D👩\xE2\x80\x8D👧\xE2\x80\x8D👦 and flag: 🏳\xEF\xB8\x8F\xE2\x80\x8D🌈",
      "👍🏽 👋🏿 🤝🏻",
      "😀",
      "private use: \xEE\x80\x80 \xF3\xB0\x80\x80 \xF4\x8F\xBF\xBD",
      "∑_{i=1}^{n} x² ≤ ∞ ≠ ≈ √2 → ∀∃",
      "  two leading spaces, tab\tand newline\n",
  };
  return *texts;
}

// Streams `ids` and checks each Push returns whole characters; returns the concatenation.
std::string StreamAll(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, bool skip,
                      int* held_back_pushes) {
  StreamingDetokenizer stream(tokenizer, skip);
  std::string text;
  for (int32_t id : ids) {
    auto piece = stream.Push(id);
    EXPECT_TRUE(piece.ok()) << piece.status();
    if (!piece.ok()) return text;
    EXPECT_EQ(tokenizer_internal::FindInvalidUtf8(*piece), std::nullopt) << "id " << id;
    if (piece->empty() && held_back_pushes != nullptr) ++*held_back_pushes;
    text += *piece;
  }
  const std::string rest = stream.Flush();
  EXPECT_EQ(tokenizer_internal::FindInvalidUtf8(rest), std::nullopt);
  return text + rest;
}

// For every prefix of the encoding of every text: streamed == Decode(prefix).
void ExpectStreamingMatchesDecodeOnEveryPrefix(const Tokenizer& tokenizer, bool expect_round_trip) {
  for (const std::string& text : MultilingualTexts()) {
    auto ids = tokenizer.Encode(text, /*add_special_tokens=*/true);
    ASSERT_TRUE(ids.ok()) << ids.status();
    auto decoded = tokenizer.Decode(*ids, true);
    ASSERT_TRUE(decoded.ok());
    if (expect_round_trip) EXPECT_EQ(*decoded, text);
    for (size_t length = 0; length <= ids->size(); ++length) {
      const std::vector<int32_t> prefix(ids->begin(), ids->begin() + length);
      for (bool skip : {true, false}) {
        auto full = tokenizer.Decode(prefix, skip);
        ASSERT_TRUE(full.ok());
        EXPECT_EQ(StreamAll(tokenizer, prefix, skip, nullptr), *full)
            << text << " prefix " << length;
      }
    }
  }
}

std::unique_ptr<Tokenizer> LoadShared(const std::string& name) {
  const std::string path =
      std::string(TANDEM_SHARED_DIR) + "/testdata/tokenizers/" + name + "/tokenizer.json";
  if (!std::filesystem::exists(path)) return nullptr;
  auto tokenizer = Tokenizer::FromFile(path);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
}

TEST(StreamingDetokenizerTest, ByteLevelEveryPrefixAndRoundTrip) {
  auto json = MakeByteLevelBpeTokenizerJson(600, kEnglishTrainingText, {"<s>", "</s>"});
  ASSERT_TRUE(json.ok()) << json.status();
  auto tokenizer = Tokenizer::FromJson(*json, "made");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  ExpectStreamingMatchesDecodeOnEveryPrefix(**tokenizer, /*expect_round_trip=*/true);

  // "😀" is four byte tokens here: the first three pushes must hold their bytes back.
  auto ids = (*tokenizer)->Encode("\xF0\x9F\x98\x80", false);
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->size(), 4u);
  int held = 0;
  EXPECT_EQ(StreamAll(**tokenizer, *ids, true, &held), "\xF0\x9F\x98\x80");
  EXPECT_EQ(held, 3);
}

TEST(StreamingDetokenizerTest, ByteLevelInvalidBytesBecomeReplacementCharacters) {
  auto json = MakeByteLevelBpeTokenizerJson(300, kEnglishTrainingText, {});
  ASSERT_TRUE(json.ok()) << json.status();
  auto tokenizer = Tokenizer::FromJson(*json, "made");
  ASSERT_TRUE(tokenizer.ok());
  // Byte tokens have id == byte: a lone continuation byte, a truncated 3-byte sequence, "A".
  const std::vector<int32_t> ids = {0x80, 0xE2, 0x82, 'A', 0xE2};
  auto decoded = (*tokenizer)->Decode(ids, true);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, "\xEF\xBF\xBD\xEF\xBF\xBD" "A\xEF\xBF\xBD");
  EXPECT_EQ(StreamAll(**tokenizer, ids, true, nullptr), *decoded);
}

TEST(StreamingDetokenizerTest, SentencePieceTinyLlamaEveryPrefix) {
  auto tokenizer = LoadShared("tinyllama-1.1b-chat-v1.0");
  if (tokenizer == nullptr) GTEST_SKIP() << "shared/testdata/tokenizers not found";
  // Prepend + Replace normalization and the decoder's Strip undo each other exactly.
  ExpectStreamingMatchesDecodeOnEveryPrefix(*tokenizer, /*expect_round_trip=*/true);

  // An emoji that is not in the vocab arrives as four <0xNN> tokens.
  auto ids = tokenizer->Encode("\xF0\x9F\xA4\x9D", false);  // 🤝
  ASSERT_TRUE(ids.ok());
  int byte_tokens = 0;
  for (int32_t id : *ids) byte_tokens += tokenizer->IdToToken(id)->starts_with("<0x");
  EXPECT_EQ(byte_tokens, 4);
  int held = 0;
  EXPECT_EQ(StreamAll(*tokenizer, *ids, true, &held), "\xF0\x9F\xA4\x9D");
  EXPECT_GE(held, 3);
}

TEST(StreamingDetokenizerTest, SentencePieceMistralEveryPrefix) {
  auto tokenizer = LoadShared("mistral-7b-v0.1");
  if (tokenizer == nullptr) GTEST_SKIP() << "shared/testdata/tokenizers not found";
  // Metaspace "first" does not add "▁" before a leading space, so " x" decodes to "x": no
  // round-trip check, but streaming must still equal Decode.
  ExpectStreamingMatchesDecodeOnEveryPrefix(*tokenizer, /*expect_round_trip=*/false);
}

TEST(StreamingDetokenizerTest, Gpt2EveryPrefixAndRoundTrip) {
  auto tokenizer = LoadShared("gpt2");
  if (tokenizer == nullptr) GTEST_SKIP() << "shared/testdata/tokenizers not found";
  ExpectStreamingMatchesDecodeOnEveryPrefix(*tokenizer, /*expect_round_trip=*/true);
}

TEST(StreamingDetokenizerTest, FlushResetsTheStream) {
  auto tokenizer = LoadShared("tinyllama-1.1b-chat-v1.0");
  if (tokenizer == nullptr) GTEST_SKIP() << "shared/testdata/tokenizers not found";
  auto ids = tokenizer->Encode("Hello world", true);
  ASSERT_TRUE(ids.ok());
  StreamingDetokenizer stream(*tokenizer);
  for (int round = 0; round < 2; ++round) {
    std::string text;
    for (int32_t id : *ids) text += *stream.Push(id);
    text += stream.Flush();
    EXPECT_EQ(text, "Hello world") << "round " << round;
  }
}

}  // namespace
}  // namespace tandem
