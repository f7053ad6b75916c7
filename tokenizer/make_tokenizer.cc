#include "tokenizer/make_tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace tandem {

using tokenizer_internal::ByteToUnicode;

const std::string_view kEnglishTrainingText = R"TEXT(
The river town woke slowly on the first cold morning of the year. Fishermen carried their nets
down to the water, bakers opened their shutters, and the smell of fresh bread drifted along the
narrow streets. Children ran past the old stone bridge, shouting to each other about the frost
on the windows and the thin ice at the edge of the pond.

In the middle of the town stood a library that nobody remembered building. Its doors were made of
dark oak, its windows were tall and bright, and its shelves held more books than anyone could
read in a lifetime. The librarian, a patient woman named Ada, said that every book was a door to
another place. Some people believed her; others only came in to get warm.

One afternoon a young engineer arrived with a heavy bag and a question. She wanted to know how
machines could learn to read. Ada smiled and handed her three books: one about language, one about
numbers, and one about the stars. "Start with the words," she said, "then count them, then look up."

The engineer read for many days. She learned that a sentence is a sequence of words, that a word
is a sequence of letters, and that a letter is only a small shape that people agreed to share. She
learned that machines do not see letters at all; they see numbers, and every number is a choice
that someone made. A tokenizer is the list of those choices: it breaks text into pieces, gives
each piece a number, and remembers how to put the pieces back together again.

She wrote a simple program. It counted every pair of neighbouring pieces in a large pile of text,
found the pair that appeared most often, and joined it into a new piece. Then it counted again.
After a thousand rounds the program had learned that "th" and "e" belong together, that "ing" ends
many words, and that a space before a word is part of the word. The engineer laughed when she saw
it, because the machine had discovered the same patterns that children learn at school.

Weather, water, and time changed the town in small ways. The bridge grew moss, the bakery added a
second oven, and the library bought a new lamp for the reading room. The engineer stayed through
the winter. She measured how long her program needed to process one million characters, and she
made it faster: first ten seconds, then two seconds, then less than half a second. Speed mattered,
she explained, because a server that answers many questions at once cannot wait for slow code.

In spring she built a small server. It accepted a question, turned it into numbers, passed the
numbers to a model, and turned the answer back into text, one piece at a time. Each piece had to be
complete before it was shown, so that no broken letter ever appeared on the screen. Some letters
need several bytes, and an emoji may need four; the server held back the bytes until the letter was
whole, and only then sent it on.

Visitors came from other towns to see the machine. A teacher asked whether it could read other
languages. The engineer typed a few greetings: "Bonjour", "Hallo", "Hola", "Ciao", "Olá", "Merhaba",
"Привет", "Γειά σου", "こんにちは", "你好", "안녕하세요", and "नमस्ते". The machine split the unfamiliar
words into very small pieces, sometimes single bytes, but it never lost a single one. Decoding the
numbers gave back exactly the text that went in. The teacher clapped. 🙂

Numbers were harder. The program saw "2024" and "3.14159" and "1,000,000" as strings of digits and
punctuation. The engineer kept them as they were and let the merges decide. Prices like $19.99,
times like 10:30, and dates like 2024-06-30 all came back unchanged. Code was harder still:
brackets, braces, and operators such as ==, !=, <=, >=, ->, and :: appeared in strange places, yet
the pieces always fit back together.

By summer the library had a new room full of humming computers. The engineer gave talks about
careful testing: every component should be checked against a plain reference, every error should
say what went wrong and with which input, and every file should be small enough to read in one
sitting. People listened, took notes, and went home to write better programs.

When autumn came again, the fishermen still carried their nets to the river, the bakers still
opened their shutters, and the children still ran across the bridge. But now, in the quiet reading
room, a machine was reading too, one small piece at a time, and giving every piece back exactly as
it had found it.
)TEXT";

namespace {

using Json = nlohmann::ordered_json;

std::string Spell(std::string_view bytes) {
  const auto& table = ByteToUnicode();
  std::string spelled;
  for (char c : bytes) spelled.append(table[static_cast<uint8_t>(c)]);
  return spelled;
}

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

}  // namespace

absl::StatusOr<std::string> MakeByteLevelBpeTokenizerJson(
    int vocab_size, std::string_view training_text,
    const std::vector<std::string>& special_tokens) {
  const int num_special = static_cast<int>(special_tokens.size());
  if (vocab_size < 256 + num_special) {
    return absl::InvalidArgumentError(absl::StrCat("vocab_size ", vocab_size,
                                                   " is below 256 bytes + ", num_special,
                                                   " special tokens"));
  }
  std::set<std::string_view> seen_specials;
  for (const std::string& special : special_tokens) {
    if (special.empty() || tokenizer_internal::FindInvalidUtf8(special).has_value() ||
        !seen_specials.insert(special).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("special token '", special, "' is empty, repeated or not UTF-8"));
    }
  }
  if (tokenizer_internal::FindInvalidUtf8(training_text).has_value()) {
    return absl::InvalidArgumentError("training text is not valid UTF-8");
  }

  // 1. Words as the GPT-2 pre-tokenizer cuts them, counted. std::map keeps the order fixed.
  TANDEM_ASSIGN_OR_RETURN(auto regex,
                          tokenizer_internal::Regex::Compile(tokenizer_internal::kGpt2SplitPattern));
  TANDEM_ASSIGN_OR_RETURN(auto matches, regex->FindAll(training_text));
  std::map<std::string_view, int64_t> word_counts;
  for (const auto& match : matches) {
    if (match.end > match.begin) {
      ++word_counts[training_text.substr(match.begin, match.end - match.begin)];
    }
  }
  std::vector<Word> words;
  for (const auto& [text, count] : word_counts) {
    Word word{{}, count};
    for (char c : text) word.symbols.push_back(static_cast<uint8_t>(c));
    words.push_back(std::move(word));
  }

  // 2. Merge the most frequent pair until the vocab is full.
  std::vector<std::string> token_bytes(256);
  for (int b = 0; b < 256; ++b) token_bytes[b] = std::string(1, static_cast<char>(b));
  absl::flat_hash_map<std::string, int32_t> id_of_bytes;
  for (int b = 0; b < 256; ++b) id_of_bytes[token_bytes[b]] = b;
  std::vector<std::pair<int32_t, int32_t>> merges;
  const int target = vocab_size - num_special;
  while (static_cast<int>(token_bytes.size()) < target) {
    absl::flat_hash_map<uint64_t, int64_t> pair_counts;
    for (const Word& word : words) {
      for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
        pair_counts[PairKey(word.symbols[i], word.symbols[i + 1])] += word.count;
      }
    }
    if (pair_counts.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "training text supports at most ", token_bytes.size() + num_special,
          " tokens, vocab_size ", vocab_size, " was asked"));
    }
    uint64_t best_key = 0;
    int64_t best_count = -1;
    for (const auto& [key, count] : pair_counts) {
      const auto left = static_cast<int32_t>(key >> 32);
      const auto right = static_cast<int32_t>(key & 0xFFFFFFFF);
      if (count > best_count ||
          (count == best_count &&
           std::tie(token_bytes[left], token_bytes[right]) <
               std::tie(token_bytes[best_key >> 32], token_bytes[best_key & 0xFFFFFFFF]))) {
        best_key = key;
        best_count = count;
      }
    }
    const auto left = static_cast<int32_t>(best_key >> 32);
    const auto right = static_cast<int32_t>(best_key & 0xFFFFFFFF);
    const std::string merged = token_bytes[left] + token_bytes[right];
    // Two different pairs can spell the same bytes ("ab"+"c", "a"+"bc"): reuse the id then.
    auto [it, inserted] = id_of_bytes.try_emplace(merged, static_cast<int32_t>(token_bytes.size()));
    if (inserted) token_bytes.push_back(merged);
    const int32_t merged_id = it->second;
    merges.emplace_back(left, right);
    for (Word& word : words) {
      std::vector<int32_t> out;
      out.reserve(word.symbols.size());
      for (size_t i = 0; i < word.symbols.size(); ++i) {
        if (i + 1 < word.symbols.size() && word.symbols[i] == left && word.symbols[i + 1] == right) {
          out.push_back(merged_id);
          ++i;
        } else {
          out.push_back(word.symbols[i]);
        }
      }
      word.symbols = std::move(out);
    }
  }

  // 3. Serialize.
  Json vocab = Json::object();
  for (size_t id = 0; id < token_bytes.size(); ++id) vocab[Spell(token_bytes[id])] = id;
  Json merge_list = Json::array();
  for (const auto& [left, right] : merges) {
    merge_list.push_back(Json::array({Spell(token_bytes[left]), Spell(token_bytes[right])}));
  }
  Json added = Json::array();
  for (int i = 0; i < num_special; ++i) {
    added.push_back(Json{{"id", static_cast<int>(token_bytes.size()) + i},
                         {"content", special_tokens[i]},
                         {"single_word", false},
                         {"lstrip", false},
                         {"rstrip", false},
                         {"normalized", false},
                         {"special", true}});
  }
  Json byte_level{{"type", "ByteLevel"},
                  {"add_prefix_space", false},
                  {"trim_offsets", true},
                  {"use_regex", true}};
  Json post_processor = nullptr;
  if (num_special > 0) {
    const int bos_id = static_cast<int>(token_bytes.size());
    post_processor = Json{
        {"type", "TemplateProcessing"},
        {"single", Json::array({Json{{"SpecialToken", {{"id", special_tokens[0]}, {"type_id", 0}}}},
                                Json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"pair", Json::array({Json{{"SpecialToken", {{"id", special_tokens[0]}, {"type_id", 0}}}},
                              Json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                              Json{{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
        {"special_tokens",
         {{special_tokens[0],
           {{"id", special_tokens[0]}, {"ids", {bos_id}}, {"tokens", {special_tokens[0]}}}}}}};
  }
  Json model{{"type", "BPE"},
             {"dropout", nullptr},
             {"unk_token", nullptr},
             {"continuing_subword_prefix", nullptr},
             {"end_of_word_suffix", nullptr},
             {"fuse_unk", false},
             {"byte_fallback", false},
             {"ignore_merges", false},
             {"vocab", std::move(vocab)},
             {"merges", std::move(merge_list)}};
  Json root{{"version", "1.0"},
            {"truncation", nullptr},
            {"padding", nullptr},
            {"added_tokens", std::move(added)},
            {"normalizer", nullptr},
            {"pre_tokenizer", byte_level},
            {"post_processor", std::move(post_processor)},
            {"decoder", byte_level},
            {"model", std::move(model)}};
  return root.dump(1);
}

}  // namespace tandem
