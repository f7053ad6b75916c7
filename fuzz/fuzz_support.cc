#include "fuzz/fuzz_support.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "nlohmann/json.hpp"
#include "tokenizer/make_tokenizer.h"

namespace tandem::fuzz {
namespace {

using Json = nlohmann::ordered_json;

std::unique_ptr<Tokenizer> LoadOrDie(const std::string& json, const char* name) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromJson(json, name);
  if (!tokenizer.ok()) Fail(__FILE__, __LINE__, "tokenizer.ok()", std::string(tokenizer.status().message()));
  return *std::move(tokenizer);
}

Json AddedToken(int id, const char* content, bool special) {
  return Json{{"id", id},        {"content", content},     {"single_word", false}, {"lstrip", false},
              {"rstrip", false}, {"normalized", !special}, {"special", special}};
}

}  // namespace

void Fail(const char* file, int line, const char* condition, const std::string& message) {
  std::fprintf(stderr, "%s:%d: invariant failed: %s: %s\n", file, line, condition, message.c_str());
  std::fflush(stderr);
  std::abort();
}

bool IsValidUtf8(std::string_view text) {
  // RFC 3629 section 4: each lead byte range with the range its first continuation byte must be in.
  size_t i = 0;
  const size_t n = text.size();
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  while (i < n) {
    const unsigned char lead = byte(i);
    size_t length = 0;
    unsigned char first_low = 0x80, first_high = 0xBF;
    if (lead <= 0x7F) {
      length = 1;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead == 0xE0) {
      length = 3, first_low = 0xA0;
    } else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) {
      length = 3;
    } else if (lead == 0xED) {
      length = 3, first_high = 0x9F;
    } else if (lead == 0xF0) {
      length = 4, first_low = 0x90;
    } else if (lead >= 0xF1 && lead <= 0xF3) {
      length = 4;
    } else if (lead == 0xF4) {
      length = 4, first_high = 0x8F;
    } else {
      return false;
    }
    if (n - i < length) return false;
    if (length > 1 && (byte(i + 1) < first_low || byte(i + 1) > first_high)) return false;
    for (size_t k = 2; k < length; ++k) {
      if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return false;
    }
    i += length;
  }
  return true;
}

std::string ByteLevelTokenizerJson() {
  absl::StatusOr<std::string> json =
      MakeByteLevelBpeTokenizerJson(512, kEnglishTrainingText, {"<s>", "</s>", "<|im_end|>"});
  if (!json.ok()) Fail(__FILE__, __LINE__, "json.ok()", std::string(json.status().message()));
  return *json;
}

std::string SentencePieceTokenizerJson() {
  Json vocab = Json::object();
  auto add = [&vocab](const std::string& token) {
    if (!vocab.contains(token)) vocab[token] = static_cast<int>(vocab.size());
  };
  add("<unk>");
  add("<s>");
  add("</s>");
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    add(name);
  }
  for (const char* piece : {"\xE2\x96\x81",
                            "a",
                            "b",
                            "c",
                            "d",
                            "e",
                            "f",
                            "g",
                            "h",
                            "i",
                            "j",
                            "k",
                            "l",
                            "m",
                            "n",
                            "o",
                            "p",
                            "q",
                            "r",
                            "s",
                            "t",
                            "u",
                            "v",
                            "w",
                            "x",
                            "y",
                            "z",
                            "T",
                            "I",
                            ".",
                            ",",
                            "'",
                            "\xC3\xA9",
                            "\xE4\xB8\xAD"}) {  // ▁ ... é 中
    add(piece);
  }
  // Merges in rank order; each adds its result to the vocab. "▁" is U+2581, as in Llama 2.
  const std::string sp = "\xE2\x96\x81";
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {sp, "t"},  {"h", "e"},       {sp + "t", "he"}, {"i", "n"}, {"e", "r"},      {"a", "n"},
      {sp, "a"},  {"o", "n"},       {"r", "e"},       {sp, "s"},  {"e", "n"},      {"o", "u"},
      {sp, "w"},  {"i", "s"},       {"a", "t"},       {"e", "d"}, {sp, "o"},       {sp + "o", "f"},
      {"n", "d"}, {sp + "a", "nd"}, {"in", "g"},      {sp, "i"},  {sp + "i", "n"}, {sp + "t", "o"},
      {sp, "T"},  {sp + "T", "he"}, {sp, sp},
  };
  Json merges = Json::array();
  for (const auto& [left, right] : pairs) {
    add(left + right);
    merges.push_back(left + " " + right);
  }
  const Json prefix = Json{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}};
  const Json space = Json{{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}};
  Json root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens",
       Json::array({AddedToken(0, "<unk>", true), AddedToken(1, "<s>", true), AddedToken(2, "</s>", true)})},
      {"normalizer", {{"type", "Sequence"}, {"normalizers", Json::array({prefix, space})}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", Json::array({Json{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                Json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"pair", Json::array({Json{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                              Json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                              Json{{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         Json::array({Json{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                      Json{{"type", "ByteFallback"}}, Json{{"type", "Fuse"}},
                      Json{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", "<unk>"},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", true},
        {"byte_fallback", true},
        {"vocab", vocab},
        {"merges", merges}}},
  };
  return root.dump(1);
}

const Tokenizer& ByteLevelTokenizer() {
  static const Tokenizer* const tokenizer = LoadOrDie(ByteLevelTokenizerJson(), "byte-level").release();
  return *tokenizer;
}

const Tokenizer& SentencePieceTokenizer() {
  static const Tokenizer* const tokenizer =
      LoadOrDie(SentencePieceTokenizerJson(), "sentencepiece").release();
  return *tokenizer;
}

}  // namespace tandem::fuzz
