// Checks Encode/Decode/StreamingDetokenizer against the ids and text the Hugging Face `tokenizers`
// library produced for real tokenizer.json files (shared/testdata/tokenizers, see SOURCES.md).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tokenizer/tokenizer.h"

namespace tandem {
namespace {

using ::testing::ElementsAreArray;

struct Case {
  std::string text;
  std::vector<int32_t> ids;
  std::vector<int32_t> ids_with_special;
  std::string decoded;
  std::string decoded_keep_special;
  std::vector<std::string> tokens;
};

std::string DataDir(const std::string& name) {
  return std::string(TANDEM_SHARED_DIR) + "/testdata/tokenizers/" + name;
}

std::vector<Case> ReadCases(const std::string& path) {
  std::vector<Case> cases;
  std::ifstream file(path);
  std::string line;
  while (std::getline(file, line)) {
    if (line.empty()) continue;
    const nlohmann::json j = nlohmann::json::parse(line);
    cases.push_back(Case{j.at("text").get<std::string>(), j.at("ids").get<std::vector<int32_t>>(),
                         j.at("ids_with_special").get<std::vector<int32_t>>(),
                         j.at("decoded").get<std::string>(),
                         j.at("decoded_keep_special").get<std::string>(),
                         j.at("tokens").get<std::vector<std::string>>()});
  }
  return cases;
}

class ConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string dir = DataDir(GetParam());
    if (!std::filesystem::exists(dir + "/tokenizer.json") ||
        !std::filesystem::exists(dir + "/expected.jsonl")) {
      GTEST_SKIP() << "test data not found in " << dir;
    }
    auto tokenizer = Tokenizer::FromFile(dir + "/tokenizer.json");
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = *std::move(tokenizer);
    cases_ = ReadCases(dir + "/expected.jsonl");
    ASSERT_EQ(cases_.size(), 49u);
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<Case> cases_;
};

TEST_P(ConformanceTest, EncodeMatchesReference) {
  int failures = 0;
  for (size_t i = 0; i < cases_.size(); ++i) {
    const Case& c = cases_[i];
    auto ids = tokenizer_->Encode(c.text, false);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_THAT(*ids, ElementsAreArray(c.ids)) << "case " << i << ": " << c.text;
    auto with_special = tokenizer_->Encode(c.text, true);
    ASSERT_TRUE(with_special.ok()) << with_special.status();
    EXPECT_THAT(*with_special, ElementsAreArray(c.ids_with_special))
        << "case " << i << ": " << c.text;
    failures += (*ids != c.ids) + (*with_special != c.ids_with_special);
  }
  EXPECT_EQ(failures, 0);
}

TEST_P(ConformanceTest, TokensMatchReference) {
  for (size_t i = 0; i < cases_.size(); ++i) {
    const Case& c = cases_[i];
    ASSERT_EQ(c.tokens.size(), c.ids.size());
    for (size_t t = 0; t < c.ids.size(); ++t) {
      EXPECT_EQ(tokenizer_->IdToToken(c.ids[t]), c.tokens[t]) << "case " << i << " token " << t;
      EXPECT_EQ(tokenizer_->TokenToId(c.tokens[t]), c.ids[t]) << "case " << i << " token " << t;
    }
  }
}

TEST_P(ConformanceTest, DecodeMatchesReference) {
  for (size_t i = 0; i < cases_.size(); ++i) {
    const Case& c = cases_[i];
    auto decoded = tokenizer_->Decode(c.ids, true);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, c.decoded) << "case " << i;
    auto kept = tokenizer_->Decode(c.ids, false);
    ASSERT_TRUE(kept.ok()) << kept.status();
    EXPECT_EQ(*kept, c.decoded_keep_special) << "case " << i;
  }
}

TEST_P(ConformanceTest, StreamingMatchesDecode) {
  for (bool skip : {true, false}) {
    for (size_t i = 0; i < cases_.size(); ++i) {
      const Case& c = cases_[i];
      for (const auto* ids : {&c.ids, &c.ids_with_special}) {
        StreamingDetokenizer stream(*tokenizer_, skip);
        std::string text;
        for (int32_t id : *ids) {
          auto piece = stream.Push(id);
          ASSERT_TRUE(piece.ok()) << piece.status();
          text += *piece;
        }
        text += stream.Flush();
        auto decoded = tokenizer_->Decode(*ids, skip);
        ASSERT_TRUE(decoded.ok());
        EXPECT_EQ(text, *decoded) << "case " << i << " skip " << skip;
      }
    }
  }
}

TEST_P(ConformanceTest, SpecialTokenIds) {
  const std::string name = GetParam();
  if (name.starts_with("gpt2")) {
    EXPECT_EQ(tokenizer_->vocab_size(), 50257);
    EXPECT_EQ(tokenizer_->eos_id(), 50256);
    EXPECT_EQ(tokenizer_->TokenToId("\xC4\xA0the"), 262);  // "Ġthe"
    EXPECT_TRUE(tokenizer_->IsSpecial(50256));
    EXPECT_FALSE(tokenizer_->IsSpecial(262));
  } else {
    EXPECT_EQ(tokenizer_->vocab_size(), 32000);
    EXPECT_EQ(tokenizer_->bos_id(), 1);
    EXPECT_EQ(tokenizer_->eos_id(), 2);
    EXPECT_TRUE(tokenizer_->IsSpecial(1));
    EXPECT_FALSE(tokenizer_->IsSpecial(3));
  }
}

// About 1 MB of mixed text: must encode in well under a second (unsanitized build).
TEST_P(ConformanceTest, EncodesOneMegabyteQuickly) {
  std::string text;
  for (int i = 0; text.size() < (1 << 20); ++i) {
    text += cases_[i % cases_.size()].text;
    text += " The quick brown fox number " + std::to_string(i) + " jumps.\n";
  }
  const auto start = std::chrono::steady_clock::now();
  auto ids = tokenizer_->Encode(text, false);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_GT(ids->size(), 100000u);
  std::cout << GetParam() << ": encoded " << text.size() << " bytes into " << ids->size()
            << " ids in " << seconds << " s\n";
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  std::cout << "sanitizer build: timing not checked\n";
#else
  EXPECT_LT(seconds, 1.0);
#endif
}

INSTANTIATE_TEST_SUITE_P(RealFiles, ConformanceTest,
                         ::testing::Values("gpt2", "gpt2-hf-legacy", "mistral-7b-v0.1",
                                           "tinyllama-1.1b-chat-v1.0"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace tandem
