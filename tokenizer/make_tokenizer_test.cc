#include "tokenizer/make_tokenizer.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tokenizer/tokenizer.h"

namespace tandem {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::vector<std::string> kSpecials = {"<s>", "</s>", "<pad>"};

TEST(MakeTokenizerTest, LoadsWithTheRequestedVocabSize) {
  for (int vocab_size : {259, 512, 1024, 1235}) {
    auto json = MakeByteLevelBpeTokenizerJson(vocab_size, kEnglishTrainingText, kSpecials);
    ASSERT_TRUE(json.ok()) << json.status();
    auto tokenizer = Tokenizer::FromJson(*json, "made");
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    EXPECT_EQ((*tokenizer)->vocab_size(), vocab_size);
    EXPECT_EQ((*tokenizer)->TokenToId("<s>"), vocab_size - 3);
    EXPECT_EQ((*tokenizer)->TokenToId("<pad>"), vocab_size - 1);
    EXPECT_EQ((*tokenizer)->bos_id(), vocab_size - 3);
    EXPECT_EQ((*tokenizer)->eos_id(), vocab_size - 2);
    EXPECT_TRUE((*tokenizer)->IsSpecial(vocab_size - 1));
    EXPECT_FALSE((*tokenizer)->IsSpecial(vocab_size - 4));
    // Every id decodes (no holes).
    for (int32_t id = 0; id < vocab_size; ++id) {
      EXPECT_TRUE((*tokenizer)->Decode({id}, false).ok()) << id;
    }
  }
}

TEST(MakeTokenizerTest, IsDeterministic) {
  auto first = MakeByteLevelBpeTokenizerJson(1024, kEnglishTrainingText, kSpecials);
  auto second = MakeByteLevelBpeTokenizerJson(1024, kEnglishTrainingText, kSpecials);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, *second);
  auto other = MakeByteLevelBpeTokenizerJson(1000, kEnglishTrainingText, kSpecials);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*first, *other);
}

TEST(MakeTokenizerTest, RoundTripsAndLearnsCommonWords) {
  auto json = MakeByteLevelBpeTokenizerJson(1024, kEnglishTrainingText, kSpecials);
  ASSERT_TRUE(json.ok());
  auto tokenizer = Tokenizer::FromJson(*json, "made");
  ASSERT_TRUE(tokenizer.ok());
  const Tokenizer& t = **tokenizer;
  EXPECT_TRUE(t.TokenToId("\xC4\xA0the").has_value());  // "Ġthe"
  auto ids = t.Encode(" the", false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->size(), 1u);
  for (std::string text : {"The engineer read the books.", "Привет 你好 😀🎉 naïve",
                           "x = f(1, 2) -> y; // done\n\n", ""}) {
    auto encoded = t.Encode(text, true);
    ASSERT_TRUE(encoded.ok());
    ASSERT_FALSE(encoded->empty());
    EXPECT_EQ(encoded->front(), 1021);  // BOS from the template
    EXPECT_EQ(*t.Decode(*encoded, true), text);
  }
  // Special tokens in text become their ids and are dropped by skip_special_tokens.
  EXPECT_THAT(*t.Encode("<s></s>", false), ElementsAre(1021, 1022));
  EXPECT_EQ(*t.Decode(*t.Encode("a</s>b", false), true), "ab");
  EXPECT_EQ(*t.Decode(*t.Encode("a</s>b", false), false), "a</s>b");
}

TEST(MakeTokenizerTest, WithoutSpecialTokensAddsNothing) {
  auto json = MakeByteLevelBpeTokenizerJson(300, kEnglishTrainingText, {});
  ASSERT_TRUE(json.ok());
  auto tokenizer = Tokenizer::FromJson(*json, "made");
  ASSERT_TRUE(tokenizer.ok());
  EXPECT_EQ((*tokenizer)->vocab_size(), 300);
  EXPECT_EQ(*(*tokenizer)->Encode("the", true), *(*tokenizer)->Encode("the", false));
  EXPECT_EQ((*tokenizer)->bos_id(), std::nullopt);
}

TEST(MakeTokenizerTest, RefusesImpossibleRequests) {
  EXPECT_THAT(MakeByteLevelBpeTokenizerJson(200, "abc", {}).status().message(),
              HasSubstr("below 256"));
  EXPECT_THAT(MakeByteLevelBpeTokenizerJson(1000, "abc abc", {}).status().message(),
              HasSubstr("supports at most 259 tokens"));  // ab, abc, " abc"
  EXPECT_THAT(MakeByteLevelBpeTokenizerJson(1233, kEnglishTrainingText, {}).status().message(),
              HasSubstr("supports at most 1232 tokens"));
  EXPECT_EQ(MakeByteLevelBpeTokenizerJson(300, "abc", {"<s>", "<s>"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeByteLevelBpeTokenizerJson(300, "abc", {""}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tandem
