// Hugging Face tokenizer.json support for the router and the CLI (workers only see token ids).
//
// Supported: model.type "BPE" (or no type with vocab + merges, as in old GPT-2 files), in its
// byte-level form (GPT-2, Llama 3, Qwen2 without NFC) and its SentencePiece form (Llama 2,
// TinyLlama, Mistral: Prepend/Replace normalizer or Metaspace pre-tokenizer, byte_fallback);
// added tokens; TemplateProcessing/ByteLevel post-processors; the decoders those files use. See
// normalizer.h, pre_tokenizer.h, post_processor.h and decoder.h for the exact lists. Anything
// else is refused at load time with InvalidArgument naming the field, e.g.
// "tokenizer.json: model.type 'Unigram' is not supported".
//
// Encode/Decode agree with the reference `tokenizers` library on the files in
// shared/testdata/tokenizers (see tokenizer_conformance_test.cc).
//
// Thread safety: a Tokenizer is immutable after loading (an internal word cache is guarded) and
// may be used from many threads at once. A StreamingDetokenizer is used by one thread at a time
// and must not outlive its Tokenizer.
#ifndef TANDEM_TOKENIZER_TOKENIZER_H_
#define TANDEM_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tandem {

namespace tokenizer_internal {
class AddedVocabulary;
class BpeModel;
class Decoder;
class DecodeStream;
class Normalizer;
class PostProcessor;
class PreTokenizer;
}  // namespace tokenizer_internal

class Tokenizer {
 public:
  // Reads and parses a tokenizer.json file; errors start with `path`.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::string& path);
  // Parses tokenizer.json text; `source` names it in error messages.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(std::string_view json,
                                                            std::string_view source);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of `text` (InvalidArgument unless valid UTF-8). Added tokens in the text (special or
  // not) become their ids. add_special_tokens applies the post_processor (e.g. prepends <s> for
  // Llama 2's TemplateProcessing).
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text,
                                              bool add_special_tokens) const;

  // Text of `ids`. InvalidArgument naming the id for one outside [0, vocab_size()) or with no
  // token. skip_special_tokens drops added tokens marked special. Invalid byte sequences become
  // U+FFFD, so the result is always valid UTF-8.
  absl::StatusOr<std::string> Decode(const std::vector<int32_t>& ids,
                                     bool skip_special_tokens) const;

  // Largest id + 1, counting added tokens.
  int64_t vocab_size() const { return vocab_size_; }
  // Id of a vocab or added token, by its exact (byte-mapped) spelling.
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // Spelling of `id` (added token content or vocab entry), nullopt when there is none.
  std::optional<std::string_view> IdToToken(int32_t id) const;
  // Best effort: from the post_processor's template, else well-known added token names.
  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  // Whether `id` is an added token marked special.
  bool IsSpecial(int32_t id) const;

 private:
  friend class StreamingDetokenizer;

  Tokenizer();
  absl::Status Load(std::string_view json);
  absl::Status EncodeSegment(std::string_view text, bool at_start,
                             std::vector<int32_t>* ids) const;
  // Checks `id` and returns its token; nullptr (with OK) when skipped as special.
  absl::StatusOr<const std::string*> TokenForDecode(int32_t id, bool skip_special_tokens) const;
  void FindBosEos();

  std::unique_ptr<tokenizer_internal::Normalizer> normalizer_;      // null: none
  std::unique_ptr<tokenizer_internal::PreTokenizer> pre_tokenizer_;  // null: whole segment
  std::unique_ptr<tokenizer_internal::BpeModel> model_;
  std::unique_ptr<tokenizer_internal::AddedVocabulary> added_;
  std::unique_ptr<tokenizer_internal::PostProcessor> post_processor_;
  std::unique_ptr<tokenizer_internal::Decoder> decoder_;
  int64_t vocab_size_ = 0;
  std::optional<int32_t> bos_id_;
  std::optional<int32_t> eos_id_;
};

// Incremental detokenizer: feed ids one at a time, get the text that is now final.
//
// Concatenating every Push() result and Flush() equals Tokenizer::Decode of all the ids with the
// same skip_special_tokens. Output never holds a partial UTF-8 character: bytes of an incomplete
// character (byte-level tokens or <0xNN> byte-fallback tokens) are held until complete. The
// SentencePiece leading space is stripped exactly as Decode strips it.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens = true);
  ~StreamingDetokenizer();

  // InvalidArgument for an id Decode would refuse (the stream is unchanged then).
  absl::StatusOr<std::string> Push(int32_t id);
  // Returns what was held back and resets the stream for a new sequence.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::unique_ptr<tokenizer_internal::DecodeStream> stream_;
};

}  // namespace tandem

#endif  // TANDEM_TOKENIZER_TOKENIZER_H_
