// llama2.c conversion on small synthetic files written here: bad inputs are refused naming the field,
// the converted model computes the logits of run.c's forward pass (transcribed below), and the
// converted tokenizer.json encodes like run.c's encode() on every short string over a small alphabet.
#include "model/llama2c.h"

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "backend/cpu/cpu_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "tokenizer/tokenizer.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

std::string MakeTempDir() {
  std::string dir = ::testing::TempDir() + "/llama2c_test_XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
  return dir;
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <typename T>
void Append(std::string* out, T value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof value);
}

// ---------------------------------------------------------------------------------------------------
// Synthetic tokenizer files.

struct Entry {
  std::string piece;
  float score;
};

// <unk>, BOS, EOS, the 256 byte tokens, then `extra`.
std::vector<Entry> VocabEntries(const std::vector<Entry>& extra) {
  std::vector<Entry> entries = {{"<unk>", 0}, {"\n<s>\n", 0}, {"\n</s>\n", 0}};
  for (int b = 0; b < 256; ++b) entries.push_back({absl::StrFormat("<0x%02X>", b), 0});
  entries.insert(entries.end(), extra.begin(), extra.end());
  return entries;
}

std::string TokenizerBytes(const std::vector<Entry>& entries, int32_t max_token_length = 8) {
  std::string out;
  Append(&out, max_token_length);
  for (const Entry& entry : entries) {
    Append(&out, entry.score);
    Append(&out, static_cast<int32_t>(entry.piece.size()));
    out.append(entry.piece);
  }
  return out;
}

// Single characters score lowest (they are never merge results); the merged pieces are ordered so
// that "bc" beats "ab": "abc" must become a + bc, then abc.
const std::vector<Entry>& ExtraPieces() {
  static const auto* extra = new std::vector<Entry>{
      {" ", -20},   {"a", -21}, {"b", -22},        {"c", -23},  {"\xC3\xA9", -24},  // é
      {"bc", -1},   {"ab", -2}, {" a", -3},        {"abc", -4}, {" ab", -5},
      {" abc", -6}, {"  ", -7}, {"c\xC3\xA9", -8},
  };
  return *extra;
}

Llama2cVocab TestVocab() {
  auto vocab = ParseLlama2cTokenizer(TokenizerBytes(VocabEntries(ExtraPieces())), "test");
  EXPECT_TRUE(vocab.ok()) << vocab.status();
  return *vocab;
}

// ---------------------------------------------------------------------------------------------------
// Synthetic checkpoints and run.c's forward pass over them.

struct TinyModel {
  int32_t dim = 8, hidden_dim = 12, n_layers = 2, n_heads = 2, n_kv_heads = 1, seq_len = 16;
  int32_t vocab_size = 259 + 13;  // TestVocab()'s size
  bool shared_classifier = true;
  // run.c's arrays, [out, in] row-major.
  std::vector<float> embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq_cis, wcls;

  int32_t head_dim() const { return dim / n_heads; }
  int32_t kv_dim() const { return n_kv_heads * head_dim(); }
};

// Deterministic values of the size asked for, in +-scale around `center`.
std::vector<float> Values(size_t count, uint32_t* state, float scale, float center = 0.0f) {
  std::vector<float> out(count);
  for (float& v : out) {
    *state = *state * 1664525u + 1013904223u;
    v = center + scale * (static_cast<float>(*state >> 8) / static_cast<float>(1u << 24) * 2.0f - 1.0f);
  }
  return out;
}

TinyModel MakeTinyModel(bool shared_classifier) {
  TinyModel m;
  m.shared_classifier = shared_classifier;
  uint32_t state = 12345;
  const size_t layers = m.n_layers, dim = m.dim, kv = m.kv_dim(), hidden = m.hidden_dim;
  m.embedding = Values(m.vocab_size * dim, &state, 1.0f);
  m.rms_att = Values(layers * dim, &state, 0.2f, 1.0f);
  m.wq = Values(layers * dim * dim, &state, 0.5f);
  m.wk = Values(layers * kv * dim, &state, 0.5f);
  m.wv = Values(layers * kv * dim, &state, 0.5f);
  m.wo = Values(layers * dim * dim, &state, 0.5f);
  m.rms_ffn = Values(layers * dim, &state, 0.2f, 1.0f);
  m.w1 = Values(layers * hidden * dim, &state, 0.5f);
  m.w2 = Values(layers * dim * hidden, &state, 0.3f);
  m.w3 = Values(layers * hidden * dim, &state, 0.5f);
  m.rms_final = Values(dim, &state, 0.2f, 1.0f);
  m.freq_cis = Values(static_cast<size_t>(m.seq_len) * m.head_dim(), &state, 1.0f);  // unused by readers
  if (!shared_classifier) m.wcls = Values(m.vocab_size * dim, &state, 0.5f);
  return m;
}

std::string HeaderBytes(const std::vector<int32_t>& fields) {
  std::string out;
  for (int32_t field : fields) Append(&out, field);
  return out;
}

std::string CheckpointBytes(const TinyModel& m) {
  std::string out = HeaderBytes({m.dim, m.hidden_dim, m.n_layers, m.n_heads, m.n_kv_heads,
                                 m.shared_classifier ? m.vocab_size : -m.vocab_size, m.seq_len});
  for (const std::vector<float>* array : {&m.embedding, &m.rms_att, &m.wq, &m.wk, &m.wv, &m.wo, &m.rms_ffn,
                                          &m.w1, &m.w2, &m.w3, &m.rms_final, &m.freq_cis, &m.wcls}) {
    out.append(reinterpret_cast<const char*>(array->data()), array->size() * sizeof(float));
  }
  return out;
}

// run.c's forward(), transcribed loop for loop (float32, adjacent-pair RoPE).
class RunCReference {
 public:
  explicit RunCReference(const TinyModel& m)
      : m_(m),
        key_cache_(static_cast<size_t>(m.n_layers) * m.seq_len * m.kv_dim()),
        value_cache_(key_cache_.size()) {}

  std::vector<float> Forward(int32_t token, int32_t pos) {
    const int dim = m_.dim, kv_dim = m_.kv_dim(), hidden = m_.hidden_dim, head_size = m_.head_dim();
    const int kv_mul = m_.n_heads / m_.n_kv_heads;
    std::vector<float> x(m_.embedding.begin() + token * dim, m_.embedding.begin() + (token + 1) * dim);
    std::vector<float> xb(dim), xb2(dim), q(dim), hb(hidden), hb2(hidden), att(pos + 1);
    for (int l = 0; l < m_.n_layers; ++l) {
      RmsNorm(xb.data(), x.data(), &m_.rms_att[l * dim], dim);
      float* k = &key_cache_[(static_cast<size_t>(l) * m_.seq_len + pos) * kv_dim];
      float* v = &value_cache_[(static_cast<size_t>(l) * m_.seq_len + pos) * kv_dim];
      MatMul(q.data(), xb.data(), &m_.wq[static_cast<size_t>(l) * dim * dim], dim, dim);
      MatMul(k, xb.data(), &m_.wk[static_cast<size_t>(l) * dim * kv_dim], dim, kv_dim);
      MatMul(v, xb.data(), &m_.wv[static_cast<size_t>(l) * dim * kv_dim], dim, kv_dim);
      for (int i = 0; i < dim; i += 2) {
        const int head_dim = i % head_size;
        const float freq = 1.0f / std::pow(10000.0f, head_dim / static_cast<float>(head_size));
        const float val = pos * freq, fcr = std::cos(val), fci = std::sin(val);
        const int rotn = i < kv_dim ? 2 : 1;
        for (int r = 0; r < rotn; ++r) {
          float* vec = r == 0 ? q.data() : k;
          const float v0 = vec[i], v1 = vec[i + 1];
          vec[i] = v0 * fcr - v1 * fci;
          vec[i + 1] = v0 * fci + v1 * fcr;
        }
      }
      std::fill(xb.begin(), xb.end(), 0.0f);
      for (int h = 0; h < m_.n_heads; ++h) {
        const float* qh = q.data() + h * head_size;
        for (int t = 0; t <= pos; ++t) {
          const float* kt =
              &key_cache_[(static_cast<size_t>(l) * m_.seq_len + t) * kv_dim + (h / kv_mul) * head_size];
          float score = 0.0f;
          for (int i = 0; i < head_size; ++i) score += qh[i] * kt[i];
          att[t] = score / std::sqrt(static_cast<float>(head_size));
        }
        Softmax(att.data(), pos + 1);
        float* out = xb.data() + h * head_size;
        for (int t = 0; t <= pos; ++t) {
          const float* vt =
              &value_cache_[(static_cast<size_t>(l) * m_.seq_len + t) * kv_dim + (h / kv_mul) * head_size];
          for (int i = 0; i < head_size; ++i) out[i] += att[t] * vt[i];
        }
      }
      MatMul(xb2.data(), xb.data(), &m_.wo[static_cast<size_t>(l) * dim * dim], dim, dim);
      for (int i = 0; i < dim; ++i) x[i] += xb2[i];
      RmsNorm(xb.data(), x.data(), &m_.rms_ffn[l * dim], dim);
      MatMul(hb.data(), xb.data(), &m_.w1[static_cast<size_t>(l) * dim * hidden], dim, hidden);
      MatMul(hb2.data(), xb.data(), &m_.w3[static_cast<size_t>(l) * dim * hidden], dim, hidden);
      for (int i = 0; i < hidden; ++i) hb[i] = hb[i] * (1.0f / (1.0f + std::exp(-hb[i]))) * hb2[i];
      MatMul(xb.data(), hb.data(), &m_.w2[static_cast<size_t>(l) * dim * hidden], hidden, dim);
      for (int i = 0; i < dim; ++i) x[i] += xb[i];
    }
    RmsNorm(x.data(), x.data(), m_.rms_final.data(), dim);
    std::vector<float> logits(m_.vocab_size);
    MatMul(logits.data(), x.data(), m_.shared_classifier ? m_.embedding.data() : m_.wcls.data(), dim,
           m_.vocab_size);
    return logits;
  }

 private:
  static void RmsNorm(float* o, const float* x, const float* weight, int size) {
    float ss = 0.0f;
    for (int j = 0; j < size; ++j) ss += x[j] * x[j];
    ss = 1.0f / std::sqrt(ss / size + 1e-5f);
    for (int j = 0; j < size; ++j) o[j] = weight[j] * (ss * x[j]);
  }
  static void Softmax(float* x, int size) {
    float max = x[0], sum = 0.0f;
    for (int i = 1; i < size; ++i) max = std::max(max, x[i]);
    for (int i = 0; i < size; ++i) sum += (x[i] = std::exp(x[i] - max));
    for (int i = 0; i < size; ++i) x[i] /= sum;
  }
  // xout [d] = w [d, n] @ x [n]
  static void MatMul(float* xout, const float* x, const float* w, int n, int d) {
    for (int i = 0; i < d; ++i) {
      float val = 0.0f;
      for (int j = 0; j < n; ++j) val += w[static_cast<size_t>(i) * n + j] * x[j];
      xout[i] = val;
    }
  }

  const TinyModel& m_;
  std::vector<float> key_cache_;    // [layers, seq_len, kv_dim]
  std::vector<float> value_cache_;  // [layers, seq_len, kv_dim]
};

// Writes the tiny model's checkpoint and TestVocab()'s tokenizer under a fresh directory.
struct TinyFiles {
  std::string dir, checkpoint, tokenizer, out;
};
TinyFiles WriteTinyFiles(const TinyModel& m) {
  TinyFiles files;
  files.dir = MakeTempDir();
  files.checkpoint = files.dir + "/tiny.bin";
  files.tokenizer = files.dir + "/tok.bin";
  files.out = files.dir + "/hf";
  WriteBytes(files.checkpoint, CheckpointBytes(m));
  WriteBytes(files.tokenizer, TokenizerBytes(VocabEntries(ExtraPieces())));
  return files;
}

// ---------------------------------------------------------------------------------------------------
// Header validation.

std::string ParseError(const std::vector<int32_t>& fields, int64_t size_delta = 0) {
  const std::string bytes = HeaderBytes(fields);
  // The size the header implies when it is consistent, so that only the asked defect shows.
  Llama2cHeader h;
  if (fields.size() == 7 && fields[0] > 0 && fields[3] > 0 && fields[4] > 0) {
    h = {fields[0], fields[1],           fields[2], fields[3],
         fields[4], std::abs(fields[5]), fields[6], fields[5] > 0};
  }
  const int64_t size = (h.dim > 0 ? Llama2cCheckpointBytes(h) : 28) + size_delta;
  auto header = ParseLlama2cHeader(bytes, size, "m.bin");
  EXPECT_FALSE(header.ok());
  EXPECT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(header.status().message());
}

TEST(Llama2cHeaderTest, ReadsTheStories260kShape) {
  const std::string bytes = HeaderBytes({64, 172, 5, 8, 4, 512, 512});
  auto header = ParseLlama2cHeader(bytes, 1056540, "stories260K.bin");
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->dim, 64);
  EXPECT_EQ(header->head_dim(), 8);
  EXPECT_EQ(header->kv_dim(), 32);
  EXPECT_TRUE(header->shared_classifier);
  EXPECT_EQ(Llama2cCheckpointBytes(*header), 1056540);
}

TEST(Llama2cHeaderTest, NegativeVocabSizeMeansASeparateClassifier) {
  const std::string bytes = HeaderBytes({64, 172, 5, 8, 4, -512, 512});
  auto header = ParseLlama2cHeader(bytes, 1056540 + 512 * 64 * 4, "m.bin");
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_FALSE(header->shared_classifier);
  EXPECT_EQ(header->vocab_size, 512);
}

TEST(Llama2cHeaderTest, SizeOtherThanTheHeaderImpliesIsRefusedWithBoth) {
  const std::string bytes = HeaderBytes({64, 172, 5, 8, 4, 512, 512});
  auto header = ParseLlama2cHeader(bytes, 1056536, "stories.bin");
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(
      header.status().message(),
      "stories.bin: 1056536 bytes, the header (dim 64, hidden_dim 172, n_layers 5, n_heads 8, n_kv_heads 4, "
      "vocab_size 512, seq_len 512) needs 1056540");
  // A shared-classifier header on an unshared file: the classifier is extra.
  EXPECT_THAT(ParseError({64, 172, 5, 8, 4, 512, 512}, 512 * 64 * 4), HasSubstr("needs 1056540"));
}

TEST(Llama2cHeaderTest, TruncatedHeaderIsRefused) {
  auto header = ParseLlama2cHeader(std::string(10, '\0'), 10, "m.bin");
  ASSERT_FALSE(header.ok());
  EXPECT_THAT(header.status().message(),
              HasSubstr("m.bin: 10 bytes, too short for the 28-byte llama2.c header"));
}

TEST(Llama2cHeaderTest, NonPositiveFieldsAreNamed) {
  EXPECT_THAT(ParseError({0, 172, 5, 8, 4, 512, 512}),
              HasSubstr("m.bin: header field dim is 0, must be positive"));
  EXPECT_THAT(ParseError({64, -1, 5, 8, 4, 512, 512}), HasSubstr("header field hidden_dim is -1"));
  EXPECT_THAT(ParseError({64, 172, 0, 8, 4, 512, 512}), HasSubstr("header field n_layers is 0"));
  EXPECT_THAT(ParseError({64, 172, 5, 0, 4, 512, 512}), HasSubstr("header field n_heads is 0"));
  EXPECT_THAT(ParseError({64, 172, 5, 8, -4, 512, 512}), HasSubstr("header field n_kv_heads is -4"));
  EXPECT_THAT(ParseError({64, 172, 5, 8, 4, 0, 512}), HasSubstr("header field vocab_size is 0"));
  EXPECT_THAT(ParseError({64, 172, 5, 8, 4, 512, 0}), HasSubstr("header field seq_len is 0"));
}

TEST(Llama2cHeaderTest, InconsistentHeadsAreNamed) {
  EXPECT_THAT(ParseError({64, 172, 5, 6, 2, 512, 512}),
              HasSubstr("m.bin: dim 64 is not divisible by n_heads 6"));
  EXPECT_THAT(ParseError({48, 172, 5, 16, 4, 512, 512}),
              HasSubstr("head_dim 3 (dim 48 / n_heads 16) is odd"));
  EXPECT_THAT(ParseError({64, 172, 5, 8, 3, 512, 512}),
              HasSubstr("n_heads 8 is not divisible by n_kv_heads 3"));
}

TEST(Llama2cHeaderTest, VersionedExportIsRefusedWithTheVersion) {
  const std::string bytes = HeaderBytes({0x616b3432, 2, 64, 172, 5, 8, 4});
  auto header = ParseLlama2cHeader(bytes, 4096, "q80.bin");
  ASSERT_FALSE(header.ok());
  EXPECT_THAT(header.status().message(), HasSubstr("q80.bin: a llama2.c version 2 export"));
}

TEST(Llama2cHeaderTest, HugeHeaderDoesNotOverflow) {
  const std::string bytes = HeaderBytes({1 << 30, 1 << 30, 1 << 30, 2, 1, (1 << 30) + 1, 1 << 30});
  auto header = ParseLlama2cHeader(bytes, int64_t{1} << 40, "m.bin");
  ASSERT_FALSE(header.ok());
  // About 2^94 bytes: computed without overflow and printed exactly.
  EXPECT_THAT(header.status().message(), HasSubstr("1099511627776 bytes, the header (dim 1073741824"));
  EXPECT_THAT(header.status().message(), HasSubstr("needs 29710560958990027670664773660"));
}

// ---------------------------------------------------------------------------------------------------
// Tokenizer parsing.

std::string TokenizerError(const std::string& bytes) {
  auto vocab = ParseLlama2cTokenizer(bytes, "tok.bin");
  EXPECT_FALSE(vocab.ok());
  EXPECT_EQ(vocab.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(vocab.status().message());
}

TEST(Llama2cTokenizerTest, ParsesEntries) {
  const Llama2cVocab vocab = TestVocab();
  ASSERT_EQ(vocab.pieces.size(), 259u + ExtraPieces().size());
  EXPECT_EQ(vocab.max_token_length, 8);
  EXPECT_EQ(vocab.pieces[1], "\n<s>\n");
  EXPECT_EQ(vocab.pieces[3 + 0x41], "<0x41>");
  EXPECT_EQ(vocab.pieces[259], " ");
  EXPECT_EQ(vocab.scores[264], -1.0f);
}

TEST(Llama2cTokenizerTest, MalformedEntriesAreNamed) {
  const std::string good = TokenizerBytes(VocabEntries(ExtraPieces()));
  EXPECT_THAT(TokenizerError(good.substr(0, 2)),
              HasSubstr("tok.bin: 2 bytes, too short for max_token_length"));
  EXPECT_THAT(TokenizerError(good.substr(0, good.size() - 1)), HasSubstr("entry 271 at byte"));
  EXPECT_THAT(TokenizerError(good.substr(0, good.size() - 1)),
              HasSubstr("is truncated (its piece has 3 bytes, 2 left)"));
  EXPECT_THAT(TokenizerError(good.substr(0, good.size() - 6)), HasSubstr("its score and length need 8"));
  EXPECT_THAT(TokenizerError(TokenizerBytes(VocabEntries(ExtraPieces()), 0)),
              HasSubstr("max_token_length is 0"));
  EXPECT_THAT(TokenizerError(TokenizerBytes(VocabEntries({{"toolongpiece", -1}}))),
              HasSubstr("entry 259 at byte"));
  EXPECT_THAT(TokenizerError(TokenizerBytes(VocabEntries({{"toolongpiece", -1}}))),
              HasSubstr("has length 12, outside [0, max_token_length 8]"));
  EXPECT_THAT(TokenizerError(TokenizerBytes(VocabEntries({{"a", NAN}}))),
              HasSubstr("entry 259 ('a') has score nan"));
  EXPECT_THAT(TokenizerError(TokenizerBytes(VocabEntries({{"\xC3", -1}}))),
              HasSubstr("entry 259 ('\\303') is not valid UTF-8 at byte 0"));
  EXPECT_THAT(TokenizerError(TokenizerBytes(VocabEntries({{"a", -1}, {"b", -2}, {"a", -3}}))),
              HasSubstr("entries 259 and 261 both spell 'a'"));
  std::string negative_length;
  Append(&negative_length, int32_t{8});
  Append(&negative_length, 0.0f);
  Append(&negative_length, int32_t{-2});
  EXPECT_THAT(TokenizerError(negative_length), HasSubstr("entry 0 at byte 4 has length -2"));
}

TEST(Llama2cTokenizerTest, ByteTokensMustBeWhereRunCLooksForThem) {
  std::vector<Entry> entries = VocabEntries(ExtraPieces());
  entries[3 + 0x41].piece = "A";
  EXPECT_THAT(TokenizerError(TokenizerBytes(entries)),
              HasSubstr("entry 68 is 'A', run.c's byte fallback needs '<0x41>' there"));
  entries.resize(100);
  EXPECT_THAT(TokenizerError(TokenizerBytes(entries)),
              HasSubstr("tok.bin: 100 entries; a llama2.c vocabulary has at least 259"));
}

TEST(Llama2cTokenizerTest, ReferenceEncoderFollowsRunC) {
  const Llama2cVocab vocab = TestVocab();
  auto id = [&vocab](std::string_view piece) {
    return static_cast<int32_t>(std::find(vocab.pieces.begin(), vocab.pieces.end(), piece) -
                                vocab.pieces.begin());
  };
  EXPECT_EQ(Llama2cEncode(vocab, "", true), std::vector<int32_t>{1});
  EXPECT_EQ(Llama2cEncode(vocab, "", false), std::vector<int32_t>{});
  // " abc": bc (score -1) first, then " a" (-3) beats abc (-4), then " a" + bc = " abc".
  EXPECT_EQ(Llama2cEncode(vocab, "abc", true), (std::vector<int32_t>{1, id(" abc")}));
  // "x" is not in the vocabulary: its byte token; "é" is.
  EXPECT_EQ(Llama2cEncode(vocab, "ax\xC3\xA9", false),
            (std::vector<int32_t>{id(" a"), 3 + 'x', id("\xC3\xA9")}));
  // A code point not in the vocabulary: one byte token per byte.
  EXPECT_EQ(Llama2cEncode(vocab, "\xE2\x82\xAC", false),
            (std::vector<int32_t>{id(" "), 3 + 0xE2, 3 + 0x82, 3 + 0xAC}));
}

// ---------------------------------------------------------------------------------------------------
// tokenizer.json.

std::unique_ptr<Tokenizer> LoadConverted(const Llama2cVocab& vocab) {
  auto json = MakeLlama2cTokenizerJson(vocab);
  EXPECT_TRUE(json.ok()) << json.status();
  auto tokenizer = Tokenizer::FromJson(json->json, "converted");
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return std::move(*tokenizer);
}

TEST(Llama2cTokenizerJsonTest, EncodesEveryShortStringLikeRunC) {
  const Llama2cVocab vocab = TestVocab();
  std::unique_ptr<Tokenizer> tokenizer = LoadConverted(vocab);
  ASSERT_NE(tokenizer, nullptr);
  const std::vector<std::string> alphabet = {" ", "a", "b", "c", "x", "\xC3\xA9", "\n"};
  std::vector<std::string> texts = {""};
  for (size_t begin = 0, length = 0; length < 5; ++length) {
    const size_t end = texts.size();
    for (size_t i = begin; i < end; ++i) {
      for (const std::string& character : alphabet) texts.push_back(texts[i] + character);
    }
    begin = end;
  }
  ASSERT_EQ(texts.size(), 1u + 7 + 49 + 343 + 2401 + 16807);
  int mismatches = 0;
  for (const std::string& text : texts) {
    auto ids = tokenizer->Encode(text, /*add_special_tokens=*/true);
    ASSERT_TRUE(ids.ok()) << ids.status();
    const std::vector<int32_t> want = Llama2cEncode(vocab, text, /*bos=*/true);
    if (*ids != want && ++mismatches <= 5) ADD_FAILURE() << "encoding '" << text << "'";
    // run.c prints the pieces after BOS with the dummy space dropped: the text comes back.
    auto decoded = tokenizer->Decode(want, /*skip_special_tokens=*/true);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, text);
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(Llama2cTokenizerJsonTest, SpecialTokensAndLayout) {
  const Llama2cVocab vocab = TestVocab();
  auto json = MakeLlama2cTokenizerJson(vocab);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->tied_scores, 0);
  // bc, ab, " a", abc (a+bc, ab+c), " ab" (" "+ab, " a"+b), " abc" (" "+abc, " a"+bc, " ab"+c), "  ", "cé".
  EXPECT_EQ(json->num_merges, 12);
  std::unique_ptr<Tokenizer> tokenizer = LoadConverted(vocab);
  EXPECT_EQ(tokenizer->vocab_size(), static_cast<int64_t>(vocab.pieces.size()));
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->eos_id(), 2);
  EXPECT_EQ(tokenizer->IdToToken(0), "<unk>");
  EXPECT_EQ(tokenizer->IdToToken(1), "<s>");
  EXPECT_EQ(tokenizer->IdToToken(2), "</s>");
  EXPECT_TRUE(tokenizer->IsSpecial(1));
  auto ids = tokenizer->Encode("abc", /*add_special_tokens=*/false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->size(), 1u);
  // Only the first space is dropped, as run.c drops one after BOS: "  " (270) + "a" (260).
  auto text = tokenizer->Decode({1, 270, 260}, true);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, " a");
}

TEST(Llama2cTokenizerJsonTest, TiedScoresAreCounted) {
  auto vocab = ParseLlama2cTokenizer(
      TokenizerBytes(VocabEntries({{"a", -10}, {"b", -11}, {"ab", -1}, {"ba", -1}, {"aba", -2}})), "tied");
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  auto json = MakeLlama2cTokenizerJson(*vocab);
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->tied_scores, 2);
}

TEST(Llama2cTokenizerJsonTest, PieceSpelledLikeASpecialNameIsRefused) {
  auto vocab = ParseLlama2cTokenizer(TokenizerBytes(VocabEntries({{"<s>", -1}})), "odd");
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  auto json = MakeLlama2cTokenizerJson(*vocab);
  ASSERT_FALSE(json.ok());
  EXPECT_THAT(json.status().message(), HasSubstr("entry 259 is spelled '<s>'"));
}

// ---------------------------------------------------------------------------------------------------
// The whole conversion.

class Llama2cConvertTest : public ::testing::TestWithParam<bool> {};

TEST_P(Llama2cConvertTest, ConvertedModelComputesRunCsLogits) {
  const TinyModel m = MakeTinyModel(/*shared_classifier=*/GetParam());
  const TinyFiles files = WriteTinyFiles(m);
  auto result = ConvertLlama2c({files.checkpoint, files.tokenizer, files.out});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->num_tensors, 2 + 9 * m.n_layers + (GetParam() ? 0 : 1));
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
    EXPECT_TRUE(std::filesystem::exists(files.out + "/" + file)) << file;
  }

  auto config = LoadModelConfig(files.out);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->architecture, "LlamaForCausalLM");
  EXPECT_EQ(config->hidden_size, m.dim);
  EXPECT_EQ(config->intermediate_size, m.hidden_dim);
  EXPECT_EQ(config->num_key_value_heads, m.n_kv_heads);
  EXPECT_EQ(config->head_dim, m.head_dim());
  EXPECT_EQ(config->max_position_embeddings, m.seq_len);
  EXPECT_EQ(config->tie_word_embeddings, GetParam());
  EXPECT_DOUBLE_EQ(config->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(config->rope_theta, 10000.0);
  EXPECT_EQ(config->bos_token_ids, std::vector<int64_t>{1});
  EXPECT_EQ(config->eos_token_ids, (std::vector<int64_t>{2, 1}));
  auto checkpoint = Checkpoint::Open(files.out);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ((*checkpoint)->Has("lm_head.weight"), !GetParam());

  CpuBackend backend(CpuBackendOptions{.fast = false, .num_threads = 1});
  auto model = Model::Load(files.out, backend);
  ASSERT_TRUE(model.ok()) << model.status();
  auto cache = KvCache::Create(backend, (*model)->MakeKvSpec(4, 4));
  ASSERT_TRUE(cache.ok()) << cache.status();
  auto blocks = (*cache)->allocator().Allocate(4);
  ASSERT_TRUE(blocks.ok());
  RunCReference reference(m);
  const std::vector<int32_t> tokens = {1, 265, 7, 260, 271, 100, 3, 264, 259, 270, 2, 50, 261, 262, 263, 268};
  ASSERT_EQ(static_cast<int32_t>(tokens.size()), m.seq_len);
  double worst = 0.0;
  for (int32_t pos = 0; pos < m.seq_len; ++pos) {
    const std::vector<float> want = reference.Forward(tokens[pos], pos);
    auto got = (*model)->Forward({{std::span<const int32_t>(tokens).subspan(pos, 1), pos, *blocks}}, **cache);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), want.size());
    for (size_t k = 0; k < want.size(); ++k) worst = std::max(worst, std::fabs(double{(*got)[k]} - want[k]));
  }
  EXPECT_LT(worst, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(SharedAndSeparateClassifier, Llama2cConvertTest, ::testing::Bool());

TEST(Llama2cConvertTest, QueryRowsArePermutedWithinEachHead) {
  const TinyModel m = MakeTinyModel(true);
  const TinyFiles files = WriteTinyFiles(m);
  ASSERT_TRUE(ConvertLlama2c({files.checkpoint, files.tokenizer, files.out}).ok());
  auto checkpoint = Checkpoint::Open(files.out);
  ASSERT_TRUE(checkpoint.ok());
  auto q = (*checkpoint)->FindWithShape("model.layers.1.self_attn.q_proj.weight", {m.dim, m.dim});
  auto k = (*checkpoint)->FindWithShape("model.layers.1.self_attn.k_proj.weight", {m.kv_dim(), m.dim});
  auto v = (*checkpoint)->FindWithShape("model.layers.1.self_attn.v_proj.weight", {m.kv_dim(), m.dim});
  ASSERT_TRUE(q.ok() && k.ok() && v.ok());
  const int hd = m.head_dim(), half = hd / 2;
  auto row = [&](const TensorView& view, int r) { return static_cast<const float*>(view.data) + r * m.dim; };
  for (int head = 0; head < m.n_heads; ++head) {
    for (int i = 0; i < half; ++i) {
      for (int p = 0; p < 2; ++p) {
        const float* llama2c_row = &m.wq[(static_cast<size_t>(m.dim) + head * hd + 2 * i + p) * m.dim];
        EXPECT_EQ(std::memcmp(row(*q, head * hd + p * half + i), llama2c_row, m.dim * sizeof(float)), 0);
      }
    }
  }
  const float* llama2c_k = &m.wk[static_cast<size_t>(m.kv_dim()) * m.dim];
  EXPECT_EQ(std::memcmp(row(*k, 1), llama2c_k + 2 * m.dim, m.dim * sizeof(float)),
            0);  // HF row 1 = pair 1, x
  const float* llama2c_v = &m.wv[static_cast<size_t>(m.kv_dim()) * m.dim];
  EXPECT_EQ(std::memcmp(v->data, llama2c_v, v->num_bytes), 0);  // v is not rotated
}

TEST(Llama2cConvertTest, TokenizerOfAnotherSizeIsRefusedAndNothingIsWritten) {
  TinyModel m = MakeTinyModel(true);
  m.vocab_size += 1;
  m.embedding.resize(static_cast<size_t>(m.vocab_size) * m.dim, 0.5f);
  const TinyFiles files = WriteTinyFiles(m);
  auto result = ConvertLlama2c({files.checkpoint, files.tokenizer, files.out});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), absl::StrCat(files.tokenizer, ": 272 tokens, the checkpoint ",
                                                    files.checkpoint, " has vocab_size 273"));
  EXPECT_FALSE(std::filesystem::exists(files.out));
}

TEST(Llama2cConvertTest, BadFilesAreRefusedWithTheirPath) {
  const TinyModel m = MakeTinyModel(true);
  const TinyFiles files = WriteTinyFiles(m);
  const std::string bytes = CheckpointBytes(m);
  WriteBytes(files.checkpoint, bytes.substr(0, bytes.size() - 4));
  auto truncated = ConvertLlama2c({files.checkpoint, files.tokenizer, files.out});
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(truncated.status().message(), HasSubstr(absl::StrCat(files.checkpoint, ": ", bytes.size() - 4,
                                                                   " bytes, the header (dim 8, ")));
  EXPECT_THAT(truncated.status().message(), HasSubstr(absl::StrCat("needs ", bytes.size())));

  auto missing = ConvertLlama2c({files.dir + "/absent.bin", files.tokenizer, files.out});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("absent.bin"));

  WriteBytes(files.checkpoint, bytes);
  WriteBytes(files.tokenizer, "\x08");
  auto bad_tokenizer = ConvertLlama2c({files.checkpoint, files.tokenizer, files.out});
  ASSERT_FALSE(bad_tokenizer.ok());
  EXPECT_THAT(bad_tokenizer.status().message(), HasSubstr(files.tokenizer + ": 1 bytes, too short"));
  EXPECT_FALSE(std::filesystem::exists(files.out));
}

}  // namespace
}  // namespace tandem
