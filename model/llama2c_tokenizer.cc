// The llama2.c tokenizer half of model/llama2c.h: parsing tok*.bin, run.c's encoder, and the
// tokenizer.json that reproduces it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/llama2c.h"
#include "nlohmann/json.hpp"

namespace tandem {
namespace {

using OrderedJson = nlohmann::ordered_json;

// run.c hard-codes these ids.
constexpr int32_t kUnkId = 0;
constexpr int32_t kBosId = 1;
constexpr int32_t kEosId = 2;
constexpr int32_t kFirstByteId = 3;
constexpr int32_t kNumSpecial = 3;
constexpr int32_t kMinVocab = kFirstByteId + 256;
// The Hugging Face spelling of ids 0, 1, 2 (llama2.c's export wrote BOS/EOS as "\n<s>\n", "\n</s>\n").
constexpr const char* kSpecialNames[kNumSpecial] = {"<unk>", "<s>", "</s>"};

std::string Quoted(std::string_view piece) {
  return absl::StrCat("'", absl::CEscape(absl::string_view(piece.data(), piece.size())), "'");
}

// Byte offset of the first malformed UTF-8 sequence (overlong forms, surrogates and code points past
// U+10FFFF included, as JSON writers refuse them), or nullopt.
std::optional<size_t> FindInvalidUtf8(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    const auto lead = static_cast<unsigned char>(text[pos]);
    size_t length = 0;
    uint32_t code_point = 0;
    uint32_t minimum = 0;
    if (lead < 0x80) {
      ++pos;
      continue;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2, code_point = lead & 0x1F, minimum = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, code_point = lead & 0x0F, minimum = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, code_point = lead & 0x07, minimum = 0x10000;
    } else {
      return pos;
    }
    if (pos + length > text.size()) return pos;
    for (size_t i = 1; i < length; ++i) {
      const auto next = static_cast<unsigned char>(text[pos + i]);
      if ((next & 0xC0) != 0x80) return pos;
      code_point = (code_point << 6) | (next & 0x3F);
    }
    if (code_point < minimum || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      return pos;
    }
    pos += length;
  }
  return std::nullopt;
}

// Little-endian fields of a byte string, front to back.
class FieldReader {
 public:
  explicit FieldReader(std::string_view bytes) : bytes_(bytes) {}
  size_t left() const { return bytes_.size() - pos_; }
  size_t pos() const { return pos_; }
  // The caller checked left() first.
  int32_t Int32() {
    int32_t value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof value);
    pos_ += sizeof value;
    return value;
  }
  float Float() {
    float value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof value);
    pos_ += sizeof value;
    return value;
  }
  std::string_view Bytes(size_t n) {
    std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

absl::Status CheckVocabLayout(const Llama2cVocab& vocab, const std::string& source) {
  if (vocab.pieces.size() < static_cast<size_t>(kMinVocab)) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", vocab.pieces.size(),
                                                   " entries; a llama2.c vocabulary has at least ", kMinVocab,
                                                   " (<unk>, BOS, EOS and the 256 byte tokens)"));
  }
  for (int b = 0; b < 256; ++b) {
    const std::string want = absl::StrFormat("<0x%02X>", b);
    if (vocab.pieces[kFirstByteId + b] != want) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": entry ", kFirstByteId + b, " is ",
                                                     Quoted(vocab.pieces[kFirstByteId + b]),
                                                     ", run.c's byte fallback needs '", want, "' there"));
    }
  }
  absl::flat_hash_map<std::string_view, int32_t> seen;
  for (size_t id = 0; id < vocab.pieces.size(); ++id) {
    auto [it, inserted] = seen.try_emplace(vocab.pieces[id], static_cast<int32_t>(id));
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": entries ", it->second, " and ", id,
                                                     " both spell ", Quoted(vocab.pieces[id])));
    }
  }
  return absl::OkStatus();
}

// One candidate merge: `left` + `right` spell `merged`.
struct MergeEntry {
  float score;  // of the merged piece
  int32_t merged;
  int32_t left;
  int32_t right;
};

// Every split of every piece (ids past the specials) into two pieces, in BPE rank order.
std::vector<MergeEntry> DeriveMerges(const Llama2cVocab& vocab) {
  absl::flat_hash_map<std::string_view, int32_t> lookup;
  for (size_t id = kNumSpecial; id < vocab.pieces.size(); ++id) {
    lookup.emplace(vocab.pieces[id], static_cast<int32_t>(id));
  }
  std::vector<MergeEntry> merges;
  for (size_t id = kNumSpecial; id < vocab.pieces.size(); ++id) {
    const std::string_view piece = vocab.pieces[id];
    for (size_t split = 1; split < piece.size(); ++split) {
      auto left = lookup.find(piece.substr(0, split));
      auto right = lookup.find(piece.substr(split));
      if (left == lookup.end() || right == lookup.end()) continue;
      merges.push_back({vocab.scores[id], static_cast<int32_t>(id), left->second, right->second});
    }
  }
  // Highest score first: BPE applies the lowest rank present, run.c the highest-scoring merged piece.
  // (-0.0 and 0.0 compare equal, as in run.c.)
  std::sort(merges.begin(), merges.end(), [](const MergeEntry& a, const MergeEntry& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.merged != b.merged) return a.merged < b.merged;
    if (a.left != b.left) return a.left < b.left;
    return a.right < b.right;
  });
  return merges;
}

// Merged pieces that share their score with another merged piece.
int64_t CountTiedScores(const std::vector<MergeEntry>& merges) {
  std::vector<std::pair<float, int32_t>> targets;  // (score, merged id), one per merged piece
  for (const MergeEntry& merge : merges) {
    if (targets.empty() || targets.back().second != merge.merged) {
      targets.push_back({merge.score, merge.merged});
    }
  }
  int64_t tied = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    const bool same_as_previous = i > 0 && targets[i - 1].first == targets[i].first;
    const bool same_as_next = i + 1 < targets.size() && targets[i + 1].first == targets[i].first;
    if (same_as_previous || same_as_next) ++tied;
  }
  return tied;
}

OrderedJson AddedToken(int32_t id) {
  return OrderedJson{
      {"id", id},        {"content", kSpecialNames[id]}, {"single_word", false}, {"lstrip", false},
      {"rstrip", false}, {"normalized", false},          {"special", true}};
}

OrderedJson BosTemplate() {
  auto bos = [](int type_id) { return OrderedJson{{"SpecialToken", {{"id", "<s>"}, {"type_id", type_id}}}}; };
  auto sequence = [](const char* id, int type_id) {
    return OrderedJson{{"Sequence", {{"id", id}, {"type_id", type_id}}}};
  };
  return OrderedJson{{"type", "TemplateProcessing"},
                     {"single", OrderedJson::array({bos(0), sequence("A", 0)})},
                     {"pair", OrderedJson::array({bos(0), sequence("A", 0), bos(1), sequence("B", 1)})},
                     {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {kBosId}}, {"tokens", {"<s>"}}}}}}};
}

}  // namespace

absl::StatusOr<Llama2cVocab> ParseLlama2cTokenizer(std::string_view bytes, std::string_view source_view) {
  const std::string source(source_view);
  FieldReader reader(bytes);
  if (reader.left() < 4) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": ", bytes.size(), " bytes, too short for max_token_length (4 bytes)"));
  }
  Llama2cVocab vocab;
  vocab.max_token_length = reader.Int32();
  if (vocab.max_token_length <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": max_token_length is ", vocab.max_token_length, ", must be positive"));
  }
  while (reader.left() > 0) {
    const size_t id = vocab.pieces.size();
    const size_t at = reader.pos();
    if (reader.left() < 8) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": entry ", id, " at byte ", at,
                                                     " is truncated (", reader.left(),
                                                     " bytes left, its score and length need 8)"));
    }
    const float score = reader.Float();
    const int32_t length = reader.Int32();
    if (length < 0 || length > vocab.max_token_length) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": entry ", id, " at byte ", at, " has length ",
                                                     length, ", outside [0, max_token_length ",
                                                     vocab.max_token_length, "]"));
    }
    if (reader.left() < static_cast<size_t>(length)) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": entry ", id, " at byte ", at,
                                                     " is truncated (its piece has ", length, " bytes, ",
                                                     reader.left(), " left)"));
    }
    const std::string_view piece = reader.Bytes(static_cast<size_t>(length));
    if (!std::isfinite(score)) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": entry ", id, " (", Quoted(piece),
                                                     ") has score ", score, ", must be finite"));
    }
    if (auto offset = FindInvalidUtf8(piece)) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": entry ", id, " (", Quoted(piece),
                                                     ") is not valid UTF-8 at byte ", *offset));
    }
    vocab.pieces.emplace_back(piece);
    vocab.scores.push_back(score);
  }
  if (absl::Status s = CheckVocabLayout(vocab, source); !s.ok()) return s;
  return vocab;
}

std::vector<int32_t> Llama2cEncode(const Llama2cVocab& vocab, std::string_view text, bool bos) {
  absl::flat_hash_map<std::string_view, int32_t> lookup;
  for (size_t id = 0; id < vocab.pieces.size(); ++id) {
    lookup.emplace(vocab.pieces[id], static_cast<int32_t>(id));
  }
  auto find = [&lookup](std::string_view piece) -> int32_t {
    auto it = lookup.find(piece);
    return it == lookup.end() ? -1 : it->second;
  };
  auto push_piece = [&find](std::string_view piece, std::vector<int32_t>* ids) {
    if (const int32_t id = find(piece); id >= 0) {
      ids->push_back(id);
      return;
    }
    for (char c : piece) ids->push_back(static_cast<unsigned char>(c) + kFirstByteId);
  };

  std::vector<int32_t> ids;
  if (bos) ids.push_back(kBosId);
  // The dummy prefix. (run.c would push -1 for a vocabulary without " "; the byte token is what the
  // tokenizer.json does there.)
  if (!text.empty()) push_piece(" ", &ids);
  // One piece per code point: a lead byte and up to 3 continuation bytes, as run.c groups them.
  size_t begin = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) begin = i;
    const bool continues = i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80;
    if (continues && i + 1 - begin < 4) continue;
    push_piece(text.substr(begin, i + 1 - begin), &ids);
    begin = i + 1;
  }
  // Merge the best-scoring pair (leftmost on ties) until none is in the vocabulary.
  while (true) {
    float best_score = -1e10f;
    int32_t best_id = -1;
    size_t best_index = 0;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      const int32_t id = find(vocab.pieces[ids[i]] + vocab.pieces[ids[i + 1]]);
      if (id >= 0 && vocab.scores[id] > best_score) {
        best_score = vocab.scores[id];
        best_id = id;
        best_index = i;
      }
    }
    if (best_id < 0) break;
    ids[best_index] = best_id;
    ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best_index) + 1);
  }
  return ids;
}

absl::StatusOr<Llama2cTokenizerJson> MakeLlama2cTokenizerJson(const Llama2cVocab& vocab) {
  if (absl::Status s = CheckVocabLayout(vocab, "tokenizer"); !s.ok()) return s;
  for (size_t id = kNumSpecial; id < vocab.pieces.size(); ++id) {
    for (const char* name : kSpecialNames) {
      if (vocab.pieces[id] == name) {
        return absl::InvalidArgumentError(absl::StrCat("tokenizer: entry ", id, " is spelled ", Quoted(name),
                                                       ", the name tokenizer.json gives ids 0..2"));
      }
    }
  }
  // Keys in id order; appended to the object's storage directly (ordered_json's operator[] searches
  // linearly, quadratic over a 32000-token vocabulary). Pieces are unique (CheckVocabLayout).
  OrderedJson vocab_json = OrderedJson::object();
  auto& entries = vocab_json.get_ref<OrderedJson::object_t&>();
  for (size_t id = 0; id < vocab.pieces.size(); ++id) {
    entries.emplace_back(id < kNumSpecial ? std::string(kSpecialNames[id]) : vocab.pieces[id],
                         static_cast<int32_t>(id));
  }
  const std::vector<MergeEntry> merges = DeriveMerges(vocab);
  OrderedJson merges_json = OrderedJson::array();
  for (const MergeEntry& merge : merges) {
    merges_json.push_back(OrderedJson::array({vocab.pieces[merge.left], vocab.pieces[merge.right]}));
  }

  OrderedJson model = {{"type", "BPE"},
                       {"dropout", nullptr},
                       {"unk_token", kSpecialNames[kUnkId]},
                       {"continuing_subword_prefix", nullptr},
                       {"end_of_word_suffix", nullptr},
                       {"fuse_unk", true},
                       {"byte_fallback", true},
                       {"vocab", std::move(vocab_json)},
                       {"merges", std::move(merges_json)}};
  OrderedJson decoder = {
      {"type", "Sequence"},
      {"decoders", OrderedJson::array({{{"type", "ByteFallback"}},
                                       {{"type", "Fuse"}},
                                       {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
  OrderedJson root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", OrderedJson::array({AddedToken(kUnkId), AddedToken(kBosId), AddedToken(kEosId)})},
      {"normalizer", {{"type", "Prepend"}, {"prepend", " "}}},
      {"pre_tokenizer", nullptr},
      {"post_processor", BosTemplate()},
      {"decoder", std::move(decoder)},
      {"model", std::move(model)}};
  Llama2cTokenizerJson result;
  // Every string was checked to be valid UTF-8, so dump() cannot throw.
  result.json = root.dump(1) + "\n";
  result.num_merges = static_cast<int64_t>(merges.size());
  result.tied_scores = CountTiedScores(merges);
  return result;
}

}  // namespace tandem
