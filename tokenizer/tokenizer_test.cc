// Loading rules and component behaviour on small hand-written tokenizer.json files.
#include "tokenizer/tokenizer.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tokenizer/make_tokenizer.h"
#include "tokenizer/regex.h"

namespace tandem {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// A SentencePiece-style BPE: Metaspace, byte fallback, <unk>/<s>/</s>, Llama decoder chain.
Json SentencePieceJson() {
  Json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  int next = 259;
  for (const char* token : {"\xE2\x96\x81", "a", "b", "c", "\xE2\x96\x81" "a", "ab",
                            "\xE2\x96\x81" "ab", "\xC3\xA9"}) {
    vocab[token] = next++;
  }
  return Json{
      {"added_tokens",
       {{{"id", 0}, {"content", "<unk>"}, {"special", true}, {"normalized", false}},
        {{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
        {{"id", 2}, {"content", "</s>"}, {"special", true}, {"normalized", false}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"},
        {"split", false}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                    {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"model",
       {{"type", "BPE"},
        {"unk_token", "<unk>"},
        {"fuse_unk", true},
        {"byte_fallback", true},
        {"vocab", vocab},
        {"merges", {"\xE2\x96\x81 a", "a b", "\xE2\x96\x81" "a b"}}}}};
}

std::unique_ptr<Tokenizer> Load(const Json& json) {
  auto tokenizer = Tokenizer::FromJson(json.dump(), "test.json");
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
}

absl::Status LoadError(const std::string& text) {
  return Tokenizer::FromJson(text, "bad.json").status();
}

// \C matches one code unit and can split a UTF-8 character; matching then skips UTF checks (undefined
// behaviour in PCRE2). A pre-tokenizer pattern using it is refused (found while fuzzing).
TEST(TokenizerLoadTest, RefusesBackslashCInPatterns) {
  using tokenizer_internal::Regex;
  absl::StatusOr<std::unique_ptr<Regex>> regex = Regex::Compile("a\\C+");
  ASSERT_FALSE(regex.ok());
  EXPECT_EQ(regex.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Regex::Compile("a\\w+").ok());
}

TEST(TokenizerLoadTest, RefusesMalformedJson) {
  const absl::Status status = LoadError("{\"model\": {");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("bad.json: malformed JSON"));
  EXPECT_EQ(LoadError("[1, 2]").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadError("").code(), absl::StatusCode::kInvalidArgument);
}

TEST(TokenizerLoadTest, RefusesMissingModel) {
  EXPECT_THAT(LoadError("{\"decoder\": null}").message(), HasSubstr("model is missing"));
}

TEST(TokenizerLoadTest, RefusesUnsupportedModelType) {
  for (const char* type : {"Unigram", "WordPiece", "WordLevel"}) {
    Json json = SentencePieceJson();
    json["model"]["type"] = type;
    const absl::Status status = LoadError(json.dump());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(),
                HasSubstr(std::string("bad.json: model.type '") + type + "' is not supported"));
  }
}

TEST(TokenizerLoadTest, RefusesMissingVocabAndBadMerges) {
  Json json = SentencePieceJson();
  json["model"].erase("vocab");
  EXPECT_THAT(LoadError(json.dump()).message(), HasSubstr("model.vocab is missing"));

  json = SentencePieceJson();
  json["model"]["merges"].push_back("a zzz");
  EXPECT_THAT(LoadError(json.dump()).message(),
              HasSubstr("model.merges[3] ('a', 'zzz') refers to 'zzz', which is not in"));

  json = SentencePieceJson();
  json["model"]["merges"].push_back("b c");  // "bc" is not a token
  EXPECT_THAT(LoadError(json.dump()).message(), HasSubstr("makes 'bc', which is not in"));

  json = SentencePieceJson();
  json["model"]["merges"].push_back("abc");
  EXPECT_THAT(LoadError(json.dump()).message(), HasSubstr("model.merges[3]"));

  json = SentencePieceJson();
  json["model"]["vocab"]["a"] = "five";
  EXPECT_THAT(LoadError(json.dump()).message(), HasSubstr("model.vocab['a'] must be an integer"));

  json = SentencePieceJson();
  json["model"]["byte_fallback"] = "yes";
  EXPECT_THAT(LoadError(json.dump()).message(), HasSubstr("model.byte_fallback must be a boolean"));
}

TEST(TokenizerLoadTest, RefusesUnsupportedComponents) {
  Json json = SentencePieceJson();
  json["normalizer"] = {{"type", "NFKC"}};
  EXPECT_THAT(LoadError(json.dump()).message(),
              HasSubstr("normalizer.type 'NFKC' is not supported"));

  json = SentencePieceJson();
  json["pre_tokenizer"] = {{"type", "Sequence"},
                           {"pretokenizers", {{{"type", "Punctuation"}}}}};
  EXPECT_THAT(LoadError(json.dump()).message(),
              HasSubstr("pre_tokenizer.pretokenizers[0].type 'Punctuation' is not supported"));

  json = SentencePieceJson();
  json["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}},
                           {"behavior", "Isolated"}};
  EXPECT_THAT(LoadError(json.dump()).message(), HasSubstr("pre_tokenizer.pattern"));

  json = SentencePieceJson();
  json["decoder"] = {{"type", "WordPiece"}};
  EXPECT_THAT(LoadError(json.dump()).message(),
              HasSubstr("decoder.type 'WordPiece' is not supported"));

  json = SentencePieceJson();
  json["post_processor"]["single"][0]["SpecialToken"]["id"] = "<bos>";
  EXPECT_THAT(LoadError(json.dump()).message(), HasSubstr("special_tokens['<bos>']"));
}

TEST(TokenizerLoadTest, FromFileReportsMissingFile) {
  const auto tokenizer = Tokenizer::FromFile("/nonexistent/tokenizer.json");
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(tokenizer.status().message(), HasSubstr("/nonexistent/tokenizer.json"));
}

TEST(SentencePieceTest, EncodesWithMergesByteFallbackAndTemplate) {
  auto tokenizer = Load(SentencePieceJson());
  ASSERT_NE(tokenizer, nullptr);
  // "ab ab" -> "▁ab▁ab" -> one word (split false) -> ▁ab ▁ab.
  EXPECT_THAT(*tokenizer->Encode("ab ab", false), ElementsAre(265, 265));
  EXPECT_THAT(*tokenizer->Encode("ab ab", true), ElementsAre(1, 265, 265));
  // "é" is a token; "😀" falls back to its four bytes; "z" too (0x7A -> id 3 + 0x7A).
  EXPECT_THAT(*tokenizer->Encode("\xC3\xA9", false), ElementsAre(259, 266));
  EXPECT_THAT(*tokenizer->Encode("\xF0\x9F\x98\x80", false),
              ElementsAre(259, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80));
  EXPECT_THAT(*tokenizer->Encode("z", false), ElementsAre(259, 3 + 'z'));
  // Added special tokens split the text; only the first segment gets the "▁" prefix.
  EXPECT_THAT(*tokenizer->Encode("a</s>a", false), ElementsAre(263, 2, 260));
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->eos_id(), 2);
  EXPECT_EQ(tokenizer->vocab_size(), 267);
}

TEST(SentencePieceTest, DecodeStripsLeadingSpaceAndSkipsSpecials) {
  auto tokenizer = Load(SentencePieceJson());
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(*tokenizer->Decode({1, 265, 265, 2}, true), "ab ab");
  EXPECT_EQ(*tokenizer->Decode({1, 265, 265, 2}, false), "<s> ab ab</s>");
  // An invalid byte run becomes one U+FFFD per byte, as in the reference.
  EXPECT_EQ(*tokenizer->Decode({260, 3 + 0xF0, 3 + 0x9F, 260}, true),
            "a\xEF\xBF\xBD\xEF\xBF\xBD" "a");
}

TEST(SentencePieceTest, DecodeRefusesBadIds) {
  auto tokenizer = Load(SentencePieceJson());
  ASSERT_NE(tokenizer, nullptr);
  auto out_of_range = tokenizer->Decode({260, 267}, true);
  EXPECT_EQ(out_of_range.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out_of_range.status().message(), HasSubstr("token id 267 is out of range [0, 267)"));
  EXPECT_THAT(tokenizer->Decode({-1}, true).status().message(), HasSubstr("token id -1"));
  StreamingDetokenizer stream(*tokenizer);
  EXPECT_EQ(stream.Push(100000).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SentencePieceTest, EncodeRefusesInvalidUtf8) {
  auto tokenizer = Load(SentencePieceJson());
  ASSERT_NE(tokenizer, nullptr);
  auto ids = tokenizer->Encode("ab\xC3", false);
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ids.status().message(), HasSubstr("byte offset 2"));
}

TEST(SentencePieceTest, LegacyNormalizerFormMatchesMetaspace) {
  // Llama 2 files before Metaspace: Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer.
  Json json = SentencePieceJson();
  json["pre_tokenizer"] = nullptr;
  json["normalizer"] = {
      {"type", "Sequence"},
      {"normalizers",
       {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
        {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}}}};
  auto tokenizer = Load(json);
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_THAT(*tokenizer->Encode("ab ab", false), ElementsAre(265, 265));
  // Unlike Metaspace "first", Prepend applies to every segment between added tokens.
  EXPECT_THAT(*tokenizer->Encode("a</s>a", false), ElementsAre(263, 2, 263));
}

TEST(SentencePieceTest, MetaspaceSplitAndMergesAsPairs) {
  Json json = SentencePieceJson();
  json["pre_tokenizer"]["split"] = true;
  json["pre_tokenizer"]["prepend_scheme"] = "always";
  json["model"]["merges"] = Json::array({Json::array({"\xE2\x96\x81", "a"}), Json::array({"a", "b"}),
                                         Json::array({"\xE2\x96\x81" "a", "b"})});
  auto tokenizer = Load(json);
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_THAT(*tokenizer->Encode("ab ab", false), ElementsAre(265, 265));
  EXPECT_THAT(*tokenizer->Encode("a</s>a", false), ElementsAre(263, 2, 263));
}

TEST(SentencePieceTest, UnknownCharactersFuseIntoOneUnk) {
  Json json = SentencePieceJson();
  json["model"]["byte_fallback"] = false;
  auto tokenizer = Load(json);
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_THAT(*tokenizer->Encode("zzz", false), ElementsAre(259, 0));
}

TEST(AddedTokensTest, LongestMatchAndStripping) {
  Json json = SentencePieceJson();
  json["added_tokens"].push_back(
      {{"id", 267}, {"content", "<|x|>"}, {"special", false}, {"normalized", false}});
  json["added_tokens"].push_back({{"id", 268},
                                  {"content", "<|x|>y"},
                                  {"special", true},
                                  {"normalized", false},
                                  {"lstrip", true},
                                  {"rstrip", true}});
  auto tokenizer = Load(json);
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_THAT(*tokenizer->Encode("<|x|>", false), ElementsAre(267));
  // Longest match wins, and lstrip/rstrip swallow the spaces around it.
  EXPECT_THAT(*tokenizer->Encode("a  <|x|>y  a", false), ElementsAre(263, 268, 260));
  EXPECT_EQ(tokenizer->vocab_size(), 269);
  EXPECT_TRUE(tokenizer->IsSpecial(268));
  EXPECT_FALSE(tokenizer->IsSpecial(267));
  // Non-special added tokens survive skip_special_tokens.
  EXPECT_EQ(*tokenizer->Decode({260, 267, 268}, true), "a<|x|>");
}

// Llama 3 / Qwen2 style: Split with the Llama 3 regex, then ByteLevel without its own regex.
TEST(ByteLevelTest, SplitRegexSequence) {
  auto base = MakeByteLevelBpeTokenizerJson(
      270, "12345 12345 12345 HE'S he's 1234567 abcabc abcabc", {"<|begin_of_text|>"});
  ASSERT_TRUE(base.ok()) << base.status();
  Json json = Json::parse(*base);
  json["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"},
         {"pattern",
          {{"Regex",
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
            "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
         {"behavior", "Isolated"},
         {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  auto tokenizer = Load(json);
  ASSERT_NE(tokenizer, nullptr);
  auto pieces = [&](const std::string& text) {
    std::vector<std::string> out;
    const auto ids = tokenizer->Encode(text, false);
    for (int32_t id : *ids) out.push_back(*tokenizer->Decode({id}, false));
    return out;
  };
  ASSERT_TRUE(tokenizer->TokenToId("12345").has_value());  // learned from the text
  // Byte offsets where one token ends and the next begins.
  auto boundaries = [&](const std::string& text) {
    std::vector<size_t> out;
    size_t offset = 0;
    for (const std::string& piece : pieces(text)) out.push_back(offset += piece.size());
    return out;
  };
  // \p{N}{1,3}: digits group by three even though "12345" is a single trained token.
  EXPECT_THAT(pieces("12345").front(), "123");
  EXPECT_THAT(boundaries("12345"), ::testing::Contains(3));
  EXPECT_THAT(boundaries("1234567"), ::testing::IsSupersetOf({3, 6}));
  // (?i:'s) splits the contraction off in either case.
  EXPECT_THAT(boundaries("HE'S"), ::testing::Contains(2));
  EXPECT_THAT(boundaries("he's"), ::testing::Contains(2));
  EXPECT_EQ(*tokenizer->Decode(*tokenizer->Encode("HE'S he's 12345", true), true),
            "HE'S he's 12345");
  EXPECT_EQ(tokenizer->bos_id(), 269);
}

}  // namespace
}  // namespace tandem
