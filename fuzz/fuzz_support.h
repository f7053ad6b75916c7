// What the fuzz targets in this folder share: a check that aborts (so that libFuzzer, and the replay
// test, report the input), an independent UTF-8 validator to check the libraries against, and two small
// tokenizers built in code so that every target is self-contained.
//
// Thread safety: the tokenizers are built once, on first use, and are immutable after.
#ifndef TANDEM_FUZZ_FUZZ_SUPPORT_H_
#define TANDEM_FUZZ_FUZZ_SUPPORT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"

namespace tandem::fuzz {

// Prints "file:line: invariant failed: condition: message" and aborts.
[[noreturn]] void Fail(const char* file, int line, const char* condition, const std::string& message);

// An invariant of the code under test. `message` is only built on failure.
#define TANDEM_FUZZ_CHECK(condition, message)                                          \
  do {                                                                                 \
    if (!(condition)) ::tandem::fuzz::Fail(__FILE__, __LINE__, #condition, (message)); \
  } while (0)

// Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF), written
// here from the RFC's table rather than shared with the code it checks.
bool IsValidUtf8(std::string_view text);

// A byte-level BPE (GPT-2 style: ids 0..255 the bytes, learned merges, then the special added
// tokens <s>, </s>, <|im_end|>), trained by MakeByteLevelBpeTokenizerJson. Round-trips every valid
// UTF-8 text exactly.
std::string ByteLevelTokenizerJson();
// A SentencePiece-style BPE shaped like Llama 2's: Prepend/Replace normalizer, byte_fallback
// (<0x00>..<0xFF>), <unk>/<s>/</s> special tokens, TemplateProcessing with <s>, and the
// Replace/ByteFallback/Fuse/Strip decoder.
std::string SentencePieceTokenizerJson();

const Tokenizer& ByteLevelTokenizer();
const Tokenizer& SentencePieceTokenizer();

// The input as text.
inline std::string_view AsText(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace tandem::fuzz

#endif  // TANDEM_FUZZ_FUZZ_SUPPORT_H_
