// Converting llama2.c checkpoints (github.com/karpathy/llama2.c, run.c's format) into the Hugging Face
// layout that Model::Load and Tokenizer::FromFile read: config.json, model.safetensors, tokenizer.json
// and tokenizer_config.json. `tandem convert --from llama2c` is the command-line face of it.
//
// Checkpoint, version 0 ("legacy" export): 7 little-endian int32 {dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size, seq_len}, then float32 arrays in run.c's order: token_embedding [vocab, dim],
// rms_att [layers, dim], wq [layers, dim, dim], wk [layers, kv_dim, dim], wv [layers, kv_dim, dim],
// wo [layers, dim, dim], rms_ffn [layers, dim], w1 [layers, hidden, dim], w2 [layers, dim, hidden],
// w3 [layers, hidden, dim], rms_final [dim], two unused RoPE tables [seq_len, head_dim / 2] each, and,
// when vocab_size is negative, a separate classifier [vocab, dim]. A positive vocab_size means the
// classifier is the token embedding (tie_word_embeddings). Matrices are [out, in], row-major.
// llama2.c rotates adjacent pairs (x[2i], x[2i+1]) of each head, Hugging Face LLaMA the two halves
// (x[i], x[i + head_dim/2]), so the rows of wq and wk are permuted within each head; q.k is unchanged.
//
// Tokenizer: int32 max_token_length, then vocab_size entries {float32 score, int32 length, bytes}.
// Id 0 is <unk>, 1 BOS ("\n<s>\n"), 2 EOS ("\n</s>\n"), 3..258 the byte-fallback tokens <0x00>..<0xFF>;
// pieces spell spaces as ordinary spaces. run.c encodes by prepending a space to non-empty text, one
// token per code point (byte tokens for a code point not in the vocabulary), then repeatedly merging
// the adjacent pair whose concatenation is in the vocabulary with the highest score (leftmost on
// ties). The tokenizer.json written here does the same with the standard pieces of tokenizer.json
// (see Llama2cTokenizerJson).
//
// Every malformed input is an error naming the file and what is wrong, never a crash.
//
// Thread safety: pure functions.
#ifndef TANDEM_MODEL_LLAMA2C_H_
#define TANDEM_MODEL_LLAMA2C_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.h"

namespace tandem {

// The header of a version-0 llama2.c checkpoint.
struct Llama2cHeader {
  int32_t dim = 0;         // hidden size
  int32_t hidden_dim = 0;  // feed-forward size
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t vocab_size = 0;  // its absolute value; the sign on disk is shared_classifier
  int32_t seq_len = 0;
  bool shared_classifier = true;  // vocab_size was positive: the classifier is the token embedding

  int32_t head_dim() const { return dim / n_heads; }
  int32_t kv_dim() const { return n_kv_heads * head_dim(); }
};

// "dim 64, hidden_dim 172, n_layers 5, n_heads 8, n_kv_heads 4, vocab_size 512, seq_len 512".
std::string Llama2cHeaderText(const Llama2cHeader& header);

// Parses the first 28 bytes of a checkpoint (`prefix` may be longer) and checks them against the
// file's size. InvalidArgument starting with `source`: a file too short for the header, a version 1/2
// export (magic "ak42"), a zero or negative dimension, dim not divisible by n_heads, an odd head_dim,
// n_heads not divisible by n_kv_heads, or a size other than the one the header implies
// ("stories.bin: 1056540 bytes, the header (dim 64, ...) needs 1056544").
absl::StatusOr<Llama2cHeader> ParseLlama2cHeader(std::string_view prefix, int64_t file_size,
                                                 std::string_view source);

// Bytes of a version-0 checkpoint with this header (header included).
int64_t Llama2cCheckpointBytes(const Llama2cHeader& header);

// The config.json of the converted model: LlamaForCausalLM, float32, RMSNorm eps 1e-5, RoPE theta
// 10000, max_position_embeddings = seq_len, BOS 1, EOS [2, 1] (2 is the tokenizer's </s>; 1 because
// llama2.c models end a story with BOS and run.c stops there).
ModelConfig Llama2cModelConfig(const Llama2cHeader& header);

// A llama2.c tokenizer file.
struct Llama2cVocab {
  int32_t max_token_length = 0;
  std::vector<std::string> pieces;  // [vocab_size] as spelled in the file (valid UTF-8, unique)
  std::vector<float> scores;        // [vocab_size]
};

// Parses a tokenizer file. InvalidArgument starting with `source` and naming the entry: truncated
// file, negative or too long piece, non-finite score, piece that is not valid UTF-8, two entries with
// the same piece, fewer than 259 entries, or ids 3..258 not being <0x00>..<0xFF> (run.c's byte
// fallback adds 3 to the byte).
absl::StatusOr<Llama2cVocab> ParseLlama2cTokenizer(std::string_view bytes, std::string_view source);

// run.c's encode(), transcribed: the reference the converted tokenizer.json is tested against. Text is
// taken as bytes, as run.c does (run.c stops at a NUL byte; this does not). `bos` prepends id 1.
std::vector<int32_t> Llama2cEncode(const Llama2cVocab& vocab, std::string_view text, bool bos);

// What converting a vocabulary into tokenizer.json produced.
struct Llama2cTokenizerJson {
  std::string json;        // tokenizer.json text
  int64_t num_merges = 0;  // entries of model.merges
  // Merged pieces whose score equals another merged piece's: run.c breaks such ties by position, the
  // merges list by id, so text where two of them compete may encode differently. 0 for llama2.c's
  // exported SentencePiece tokenizers (scores are minus the merge rank).
  int64_t tied_scores = 0;
};

// tokenizer.json for `vocab`, Hugging Face's SentencePiece-BPE form with llama2.c's spelling:
// normalizer Prepend " " (the dummy prefix, non-empty text only), no pre-tokenizer (all text is one
// word, as in run.c), model BPE with byte_fallback over the pieces as spelled in the file (ids 0, 1, 2
// renamed <unk>, <s>, </s>, special added tokens), TemplateProcessing prepending <s>, and the decoder
// chain ByteFallback, Fuse, Strip(" ", 1, 0) (a leading space of the text is dropped, as run.c drops it
// after BOS). Merges are derived from the scores as Hugging Face's SentencePiece converter does: every
// split of a piece into two pieces, ordered by the merged piece's score, highest first (ties by id),
// then by the ids of the two halves. Since BPE applies the lowest-ranked merge present, this is run.c's
// "highest-scoring merged piece" rule. Merges are written as ["a", "b"] pairs: pieces contain spaces.
// InvalidArgument when a piece other than ids 0..2 is spelled <unk>, <s> or </s>.
absl::StatusOr<Llama2cTokenizerJson> MakeLlama2cTokenizerJson(const Llama2cVocab& vocab);

struct Llama2cConvertOptions {
  std::string checkpoint_path;  // llama2.c checkpoint (.bin)
  std::string tokenizer_path;   // llama2.c tokenizer (.bin)
  std::string out_dir;          // created if absent; the four files in it are overwritten
};

struct Llama2cConvertResult {
  Llama2cHeader header;
  int64_t num_tensors = 0;
  int64_t num_merges = 0;
  int64_t tied_scores = 0;  // see Llama2cTokenizerJson
};

// Reads and validates both files (including that the tokenizer has the checkpoint's vocab_size), then
// writes out_dir/config.json, model.safetensors (float32, Hugging Face tensor names),
// tokenizer.json and tokenizer_config.json. Nothing is written when an input is refused. The weights
// are held in memory while model.safetensors is written (about the checkpoint's size).
absl::StatusOr<Llama2cConvertResult> ConvertLlama2c(const Llama2cConvertOptions& options);

}  // namespace tandem

#endif  // TANDEM_MODEL_LLAMA2C_H_
