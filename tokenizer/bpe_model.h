// The BPE model of a tokenizer.json: vocab, ranked merges, unknown-token and byte-fallback
// handling. Turns one pre-token into ids; knows nothing about normalizers or added tokens.
//
// Thread safety: immutable after FromJson except for the internal word cache, which is guarded;
// EncodeWord may be called concurrently.
#ifndef TANDEM_TOKENIZER_BPE_MODEL_H_
#define TANDEM_TOKENIZER_BPE_MODEL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "tokenizer/json_fields.h"

namespace tandem::tokenizer_internal {

class BpeModel {
 public:
  // Parses the "model" object (type "BPE", or no type with vocab + merges as in old files).
  // Merges may be "a b" strings or ["a", "b"] pairs; every merge must name known tokens whose
  // concatenation is in the vocab. `dropout` is ignored: encoding is deterministic.
  static absl::StatusOr<std::unique_ptr<BpeModel>> FromJson(const Json& model);

  // Appends the ids of one pre-token (UTF-8, already normalized and byte-mapped as configured).
  void EncodeWord(std::string_view word, std::vector<int32_t>* ids) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // The token of `id`, or nullptr when the vocab has no such id.
  const std::string* IdToToken(int32_t id) const;
  // Largest id + 1.
  int64_t vocab_size() const { return static_cast<int64_t>(id_to_token_.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };

  BpeModel() = default;
  absl::Status ParseVocab(const Json& vocab);
  absl::Status ParseMerges(const Json& merges);
  void MergeWord(std::string_view word, std::vector<int32_t>* ids) const;
  const Merge* FindMerge(int32_t left, int32_t right) const;

  absl::flat_hash_map<std::string, int32_t> token_to_id_;
  std::vector<std::string> id_to_token_;  // [vocab_size]; "" with has_token_ false for holes
  std::vector<bool> has_token_;           // [vocab_size]
  absl::flat_hash_map<uint64_t, Merge> merges_;  // key: left id << 32 | right id
  std::optional<int32_t> unk_id_;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::vector<int32_t> byte_ids_;  // [256] id of "<0xNN>", -1 when absent

  mutable absl::Mutex cache_mutex_;
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> cache_
      ABSL_GUARDED_BY(cache_mutex_);
};

}  // namespace tandem::tokenizer_internal

#endif  // TANDEM_TOKENIZER_BPE_MODEL_H_
