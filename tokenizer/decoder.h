// The "decoder" of a tokenizer.json, run as a stream so that full decoding and incremental
// detokenization share one implementation (and so always agree).
//
// Supported: ByteLevel, Replace (String pattern), ByteFallback, Fuse, Strip, Metaspace and
// Sequence of these; null joins tokens with " " as the reference does. The stream's output is the
// concatenation of the chain's output tokens. After a stage that fuses the tokens into one string
// (Fuse, ByteLevel) only Strip, Fuse and single-character Replace may follow; other chains are
// refused at load time.
//
// Output is always valid UTF-8 and never ends inside a character: ByteLevel holds back bytes of an
// incomplete character, ByteFallback holds back a run of <0xNN> tokens until it ends (a run that
// is not valid UTF-8 becomes one U+FFFD per byte, as in the reference).
//
// Thread safety: a Decoder is immutable; each DecodeStream is used by one thread at a time.
#ifndef TANDEM_TOKENIZER_DECODER_H_
#define TANDEM_TOKENIZER_DECODER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tokenizer/json_fields.h"

namespace tandem::tokenizer_internal {

class DecodeStage;  // defined in decoder.cc

class DecodeStream {
 public:
  explicit DecodeStream(std::vector<std::unique_ptr<DecodeStage>> stages);
  ~DecodeStream();
  DecodeStream(const DecodeStream&) = delete;
  DecodeStream& operator=(const DecodeStream&) = delete;

  // Feeds one token string; appends the text that is now final to `out`.
  void Push(std::string_view token, std::string* out);
  // Ends the stream; appends whatever was held back.
  void Finish(std::string* out);

 private:
  void Emit(size_t stage, std::string token, std::string* out);

  std::vector<std::unique_ptr<DecodeStage>> stages_;
};

class Decoder {
 public:
  // `decoder` may be nullptr (JSON null): tokens are joined with " ".
  static absl::StatusOr<std::unique_ptr<Decoder>> FromJson(const Json* decoder,
                                                           const std::string& path);
  ~Decoder();

  std::unique_ptr<DecodeStream> NewStream() const;

 private:
  struct StageSpec;

  Decoder();
  absl::Status AddStages(const Json& decoder, const std::string& path, bool* fused);

  std::vector<std::unique_ptr<StageSpec>> specs_;
};

}  // namespace tandem::tokenizer_internal

#endif  // TANDEM_TOKENIZER_DECODER_H_
