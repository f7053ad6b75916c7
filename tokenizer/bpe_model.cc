#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <queue>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "tokenizer/unicode.h"

namespace tandem::tokenizer_internal {
namespace {

// Words longer than this are not cached (a whole paragraph is one "word" without a
// pre-tokenizer), and the cache stops growing at kMaxCacheEntries.
constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kMaxCacheEntries = 1 << 16;

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// One symbol of a word being merged: a doubly linked list over a vector.
struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  bool alive;
};

// A candidate merge of symbols[position] with its successor. Ordered so that the lowest rank,
// then the leftmost position, is popped first.
struct Candidate {
  int32_t rank;
  int32_t position;
  int32_t new_id;
  bool operator>(const Candidate& other) const {
    return rank != other.rank ? rank > other.rank : position > other.position;
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::FromJson(const Json& model) {
  auto bpe = std::unique_ptr<BpeModel>(new BpeModel());
  const Json* vocab = FindField(model, "vocab");
  if (vocab == nullptr) return absl::InvalidArgumentError("model.vocab is missing");
  TANDEM_RETURN_IF_ERROR(bpe->ParseVocab(*vocab));

  TANDEM_ASSIGN_OR_RETURN(auto unk, GetOptionalString(model, "unk_token", "model"));
  if (unk.has_value()) {
    auto it = bpe->token_to_id_.find(*unk);
    if (it == bpe->token_to_id_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.unk_token '", *unk, "' is not in model.vocab"));
    }
    bpe->unk_id_ = it->second;
  }
  TANDEM_ASSIGN_OR_RETURN(auto prefix,
                          GetOptionalString(model, "continuing_subword_prefix", "model"));
  bpe->continuing_subword_prefix_ = prefix.value_or("");
  TANDEM_ASSIGN_OR_RETURN(auto suffix, GetOptionalString(model, "end_of_word_suffix", "model"));
  bpe->end_of_word_suffix_ = suffix.value_or("");
  TANDEM_ASSIGN_OR_RETURN(bpe->fuse_unk_, GetBool(model, "fuse_unk", "model", false));
  TANDEM_ASSIGN_OR_RETURN(bpe->byte_fallback_, GetBool(model, "byte_fallback", "model", false));
  TANDEM_ASSIGN_OR_RETURN(bpe->ignore_merges_, GetBool(model, "ignore_merges", "model", false));

  bpe->byte_ids_.assign(256, -1);
  for (int b = 0; b < 256; ++b) {
    if (auto id = bpe->TokenToId(absl::StrFormat("<0x%02X>", b))) bpe->byte_ids_[b] = *id;
  }

  const Json* merges = FindField(model, "merges");
  if (merges == nullptr) return absl::InvalidArgumentError("model.merges is missing");
  TANDEM_RETURN_IF_ERROR(bpe->ParseMerges(*merges));
  return bpe;
}

absl::Status BpeModel::ParseVocab(const Json& vocab) {
  if (!vocab.is_object()) {
    return absl::InvalidArgumentError("model.vocab must be an object {token: id}");
  }
  int64_t max_id = -1;
  token_to_id_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.vocab['", it.key(), "'] must be an integer id"));
    }
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id > INT32_MAX - 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.vocab['", it.key(), "'] has id ", id, ", outside [0, 2^31-1)"));
    }
    token_to_id_[it.key()] = static_cast<int32_t>(id);
    max_id = std::max(max_id, id);
  }
  if (max_id >= static_cast<int64_t>(4 * vocab.size() + 1024)) {
    return absl::InvalidArgumentError(absl::StrCat("model.vocab has id ", max_id, " but only ",
                                                   vocab.size(), " entries"));
  }
  id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  has_token_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [token, id] : token_to_id_) {
    if (has_token_[id]) {
      return absl::InvalidArgumentError(absl::StrCat("model.vocab: id ", id, " is used by both '",
                                                     id_to_token_[id], "' and '", token, "'"));
    }
    id_to_token_[id] = token;
    has_token_[id] = true;
  }
  return absl::OkStatus();
}

absl::Status BpeModel::ParseMerges(const Json& merges) {
  if (!merges.is_array()) return absl::InvalidArgumentError("model.merges must be an array");
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const Json& merge = merges[rank];
    std::string left, right;
    if (merge.is_string()) {
      const std::string& text = merge.get_ref<const std::string&>();
      const size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "model.merges[", rank, "] '", text, "' must be two tokens separated by one space"));
      }
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "model.merges[", rank, "] must be a string \"a b\" or a pair [\"a\", \"b\"]"));
    }
    const auto left_id = TokenToId(left);
    const auto right_id = TokenToId(right);
    if (!left_id.has_value() || !right_id.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.merges[", rank, "] ('", left, "', '", right, "') refers to '",
                       left_id.has_value() ? right : left, "', which is not in model.vocab"));
    }
    std::string merged = left;
    std::string_view right_part = right;
    if (!continuing_subword_prefix_.empty() && right_part.starts_with(continuing_subword_prefix_)) {
      right_part.remove_prefix(continuing_subword_prefix_.size());
    }
    merged.append(right_part);
    const auto merged_id = TokenToId(merged);
    if (!merged_id.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("model.merges[", rank, "] ('", left, "', '",
                                                     right, "') makes '", merged,
                                                     "', which is not in model.vocab"));
    }
    // The first (lowest-rank) occurrence of a pair wins, as in the reference implementation.
    merges_.try_emplace(PairKey(*left_id, *right_id),
                        Merge{static_cast<int32_t>(rank), *merged_id});
  }
  return absl::OkStatus();
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  auto it = token_to_id_.find(absl::string_view(token.data(), token.size()));
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !has_token_[id]) return nullptr;
  return &id_to_token_[id];
}

const BpeModel::Merge* BpeModel::FindMerge(int32_t left, int32_t right) const {
  auto it = merges_.find(PairKey(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::EncodeWord(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto id = TokenToId(word)) {
      ids->push_back(*id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    absl::MutexLock lock(&cache_mutex_);
    auto it = cache_.find(absl::string_view(word.data(), word.size()));
    if (it != cache_.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> word_ids;
  MergeWord(word, &word_ids);
  ids->insert(ids->end(), word_ids.begin(), word_ids.end());
  if (cacheable) {
    absl::MutexLock lock(&cache_mutex_);
    if (cache_.size() < kMaxCacheEntries) cache_.emplace(std::string(word), std::move(word_ids));
  }
}

void BpeModel::MergeWord(std::string_view word, std::vector<int32_t>* ids) const {
  // 1. One symbol per character (or per byte via <0xNN> tokens, or <unk>).
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  bool previous_was_unk = false;
  auto push = [&symbols](int32_t id) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back(Symbol{id, index - 1, index + 1, true});
  };
  size_t pos = 0;
  std::string piece;
  while (pos < word.size()) {
    const size_t begin = pos;
    pos += std::min(Utf8SequenceLength(static_cast<unsigned char>(word[pos])), word.size() - pos);
    const std::string_view character = word.substr(begin, pos - begin);
    piece.clear();
    if (begin > 0) piece.append(continuing_subword_prefix_);
    piece.append(character);
    if (pos == word.size()) piece.append(end_of_word_suffix_);
    if (auto id = TokenToId(piece)) {
      push(*id);
      previous_was_unk = false;
      continue;
    }
    if (byte_fallback_) {
      bool all_bytes = true;
      for (char c : character) all_bytes = all_bytes && byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all_bytes) {
        for (char c : character) push(byte_ids_[static_cast<uint8_t>(c)]);
        previous_was_unk = false;
        continue;
      }
    }
    if (unk_id_.has_value()) {
      if (!(fuse_unk_ && previous_was_unk)) push(*unk_id_);
      previous_was_unk = true;
    }
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  // 2. Apply merges, lowest rank first (leftmost first among equal ranks).
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto consider = [&](int32_t position) {
    if (position < 0) return;
    const int32_t next = symbols[position].next;
    if (next < 0) return;
    if (const Merge* merge = FindMerge(symbols[position].id, symbols[next].id)) {
      queue.push(Candidate{merge->rank, position, merge->new_id});
    }
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.position];
    if (!left.alive || left.next < 0) continue;
    const Merge* current = FindMerge(left.id, symbols[left.next].id);
    if (current == nullptr || current->new_id != top.new_id || current->rank != top.rank) continue;
    Symbol& right = symbols[left.next];
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.position;
    consider(left.prev);
    consider(top.position);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids->push_back(symbols[i].id);
}

}  // namespace tandem::tokenizer_internal
