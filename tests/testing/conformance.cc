#include "tests/testing/conformance.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/registry.h"
#include "common/random.h"
#include "gtest/gtest.h"
#include "types/sampling.h"

namespace tandem::conformance {
namespace {

// --- the table of worst errors, printed at the end ---

struct Worst {
  double error = 0;
  double tolerance = 0;
  int comparisons = 0;
};

std::map<std::pair<std::string, std::string>, Worst>& Table() {
  static auto* table = new std::map<std::pair<std::string, std::string>, Worst>;
  return *table;
}

void Record(const std::string& op, const std::string& dtype, double error, double tolerance) {
  Worst& w = Table()[{op, dtype}];
  w.error = std::max(w.error, error);
  w.tolerance = tolerance;
  ++w.comparisons;
}

class TableEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    if (Table().empty()) return;
    std::printf("\n%-24s %-26s %12s %12s %6s\n", "op", "backend/dtype", "worst error", "tolerance", "runs");
    for (const auto& [key, w] : Table()) {
      std::printf("%-24s %-26s %12.3g %12.3g %6d%s\n", key.first.c_str(), key.second.c_str(), w.error, w.tolerance,
                  w.comparisons, w.error <= w.tolerance ? "" : "  FAIL");
    }
  }
};

const ::testing::Environment* const kTable = ::testing::AddGlobalTestEnvironment(new TableEnvironment);

// --- host data ---

std::vector<float> Random(int64_t n, Xoshiro256& rng, double scale = 1.0) {
  std::vector<float> out(n);
  for (float& x : out) x = static_cast<float>((2 * rng.NextDouble() - 1) * scale);
  return out;
}

// The values as the dtype holds them.
std::vector<float> Round(std::vector<float> values, DType dtype) {
  if (dtype == DType::kF32) return values;
  std::vector<uint16_t> bits(values.size());
  ConvertFromF32(dtype, values.data(), static_cast<int64_t>(values.size()), bits.data());
  ConvertToF32(dtype, bits.data(), static_cast<int64_t>(values.size()), values.data());
  return values;
}

// max |a - b| / max |b|: one number per comparison; infinite on a NaN mismatch or a size mismatch.
double RelativeError(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return INFINITY;
  double worst = 0, scale = 1e-6;
  for (size_t k = 0; k < want.size(); ++k) {
    if (std::isnan(got[k]) != std::isnan(want[k])) return INFINITY;
    if (std::isnan(want[k])) continue;
    if (std::isinf(want[k]) || std::isinf(got[k])) {  // infinities must match exactly
      if (got[k] != want[k]) return INFINITY;
      continue;
    }
    worst = std::max(worst, static_cast<double>(std::fabs(got[k] - want[k])));
    scale = std::max(scale, static_cast<double>(std::fabs(want[k])));
  }
  return worst / scale;
}

// Owns device copies of host data on one backend.
class Device {
 public:
  explicit Device(Backend& backend) : backend_(backend) {}

  Tensor Floats(const std::vector<float>& values, Shape shape, DType dtype) {
    EXPECT_EQ(shape.num_elements(), static_cast<int64_t>(values.size()));
    Tensor t = Empty(shape, dtype);
    std::vector<uint8_t> bytes(t.num_bytes());
    ConvertFromF32(dtype, values.data(), static_cast<int64_t>(values.size()), bytes.data());
    EXPECT_TRUE(backend_.CopyHostToDevice(t.data, bytes.data(), t.num_bytes()).ok());
    return t;
  }
  Tensor Ints(const std::vector<int32_t>& values, Shape shape) {
    EXPECT_EQ(shape.num_elements(), static_cast<int64_t>(values.size()));
    Tensor t = Empty(shape, DType::kI32);
    EXPECT_TRUE(backend_.CopyHostToDevice(t.data, values.data(), t.num_bytes()).ok());
    return t;
  }
  Tensor Empty(Shape shape, DType dtype) {
    Tensor t{nullptr, dtype, shape};
    auto buffer = backend_.Allocate(t.num_bytes());
    EXPECT_TRUE(buffer.ok()) << buffer.status();
    t.data = (*buffer)->data();
    buffers_.push_back(std::move(*buffer));
    return t;
  }
  std::vector<float> Read(const Tensor& t) {
    std::vector<uint8_t> bytes(t.num_bytes());
    EXPECT_TRUE(backend_.CopyDeviceToHost(bytes.data(), t.data, t.num_bytes()).ok());
    std::vector<float> out(t.num_elements());
    ConvertToF32(t.dtype, bytes.data(), t.num_elements(), out.data());
    return out;
  }

 private:
  Backend& backend_;
  std::vector<std::unique_ptr<DeviceBuffer>> buffers_;
};

std::string ParamName(const ::testing::TestParamInfo<ConformanceParam>& info) {
  std::string name = info.param.backend + "_" + (info.param.dtype.empty() ? "default" : info.param.dtype) +
                     (info.param.linear.empty() ? "" : "_" + info.param.linear);
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

class OpConformanceTest : public ::testing::TestWithParam<ConformanceParam> {
 protected:
  void SetUp() override {
    const ConformanceParam& p = GetParam();
    if (!p.linear.empty()) setenv("TANDEM_CUDA_LINEAR", p.linear.c_str(), 1);
    BackendOptions test_options;
    test_options.name = p.backend;
    test_options.num_threads = 2;
    test_options.dtype = p.dtype;
    auto test = MakeBackend(test_options);
    unsetenv("TANDEM_CUDA_LINEAR");
    if (!test.ok()) {
      // tests/gpu/run.sh sets TANDEM_REQUIRE_GPU: on the GPU machine a missing device is a failure.
      if (std::getenv("TANDEM_REQUIRE_GPU") != nullptr) FAIL() << p.backend << ": " << test.status();
      GTEST_SKIP() << p.backend << ": " << test.status();
    }
    BackendOptions ref_options;
    ref_options.name = "cpu-reference";
    ref_options.num_threads = 1;
    auto ref = MakeBackend(ref_options);
    ASSERT_TRUE(ref.ok()) << ref.status();
    ref_ = std::move(*ref);
    test_ = std::move(*test);
    dtype_ = test_->activation_dtype();
    // Linear weights and the embedding table: the CPU backend holds them in 16 bits where asked (its
    // activations stay float32); elsewhere the activation dtype.
    matrix_dtype_ = test_->matrix_dtype(dtype_);
    label_ = ParamName(::testing::TestParamInfo<ConformanceParam>(p, 0));
    WorkspaceLimits limits;
    limits.max_tokens = 8192;
    limits.max_seqs = 64;
    limits.max_context = 8192 + 64;
    limits.num_heads = 32;
    limits.num_kv_heads = 32;
    limits.head_dim = 256;
    limits.vocab_size = 32000;
    limits.max_linear_out = 32000;
    ASSERT_TRUE(test_->Reserve(limits).ok());
    ASSERT_TRUE(ref_->Reserve(limits).ok());
  }

  void Expect(const std::string& op, const std::vector<float>& got, const std::vector<float>& want,
              const std::string& where) {
    const double error = RelativeError(got, want);
    Record(op, label_, error, GetParam().tolerance);
    EXPECT_LE(error, GetParam().tolerance) << op << " " << where;
  }
  void ExpectExact(const std::string& op, const std::vector<float>& got, const std::vector<float>& want,
                   const std::string& where) {
    Record(op, label_, got == want ? 0.0 : RelativeError(got, want), 0.0);
    EXPECT_EQ(got, want) << op << " " << where;
  }

  std::unique_ptr<Backend> ref_, test_;
  DType dtype_ = DType::kF32;
  DType matrix_dtype_ = DType::kF32;
  std::string label_;
};

TEST_P(OpConformanceTest, Linear) {
  Xoshiro256 rng(1);
  // Rows 1..8 take the CUDA matrix-vector kernel (vectorized when `in` is a multiple of 8, scalar
  // otherwise) where it wins; more rows take cuBLASLt. On the CPU, 1..8 rows stream the weights (the
  // 16-bit kernels in blocks of 64 and 16 weights, then a scalar tail: `in` 33, 70, 72, 1000 cover
  // each); more rows take sgemm, on 16-bit weights in widened blocks of rows (12x2048->1100: three).
  const std::vector<std::tuple<int, int, int>> shapes = {
      {1, 64, 96}, {3, 33, 17}, {8, 128, 257}, {9, 70, 31}, {40, 256, 130}, {1, 2048, 512},
      {5, 256, 1000}, {2, 72, 8}, {64, 512, 384}, {7, 1000, 3}, {12, 2048, 1100}, {11, 40, 9}, {14, 33, 6}};
  for (auto [n, in, out] : shapes) {
    for (bool with_bias : {false, true}) {
      for (DType out_dtype : {dtype_, DType::kF32}) {
        const std::vector<float> x = Round(Random(n * in, rng), dtype_);
        const std::vector<float> w = Round(Random(out * in, rng, 1.0 / std::sqrt(in)), matrix_dtype_);
        const std::vector<float> b = Random(out, rng);
        const int above = GetParam().bf16_activations_above_rows;
        const bool bf16_x = matrix_dtype_ == DType::kBF16 && above >= 0 && n > above;
        const std::vector<float> ref_x = bf16_x ? Round(x, DType::kBF16) : x;
        Device r(*ref_), t(*test_);
        const Tensor rb = r.Floats(b, {out}, DType::kF32), tb = t.Floats(b, {out}, DType::kF32);
        const Tensor ry = r.Empty({n, out}, DType::kF32), ty = t.Empty({n, out}, out_dtype);
        ASSERT_TRUE(ref_->Linear(r.Floats(ref_x, {n, in}, DType::kF32), r.Floats(w, {out, in}, DType::kF32),
                                 with_bias ? &rb : nullptr, ry).ok());
        absl::Status s = test_->Linear(t.Floats(x, {n, in}, dtype_), t.Floats(w, {out, in}, matrix_dtype_),
                                       with_bias ? &tb : nullptr, ty);
        ASSERT_TRUE(s.ok()) << s;
        Expect(out_dtype == DType::kF32 ? "Linear (f32 out)" : "Linear", t.Read(ty), r.Read(ry),
               absl::StrCat(n, "x", in, "->", out, with_bias ? " +bias" : ""));
      }
    }
  }
}

TEST_P(OpConformanceTest, NormsSiluGatherAndEmbedding) {
  Xoshiro256 rng(2);
  for (int n : {1, 5, 17, 300}) {
    for (int hidden : {67, 2048}) {
      const int inter = hidden == 67 ? 45 : 5632;
      const std::vector<float> x = Round(Random(n * hidden, rng, 3.0), dtype_);
      const std::vector<float> w = Round(Random(hidden, rng), dtype_);
      const std::vector<float> d = Round(Random(n * hidden, rng), dtype_);
      const std::string where = absl::StrCat(n, "x", hidden);
      Device r(*ref_), t(*test_);
      Tensor ro = r.Empty({n, hidden}, DType::kF32), to = t.Empty({n, hidden}, dtype_);
      ASSERT_TRUE(ref_->RmsNorm(r.Floats(x, {n, hidden}, DType::kF32), r.Floats(w, {hidden}, DType::kF32), 1e-5f, ro).ok());
      ASSERT_TRUE(test_->RmsNorm(t.Floats(x, {n, hidden}, dtype_), t.Floats(w, {hidden}, dtype_), 1e-5f, to).ok());
      Expect("RmsNorm", t.Read(to), r.Read(ro), where);

      Tensor rr = r.Floats(x, {n, hidden}, DType::kF32), tr = t.Floats(x, {n, hidden}, dtype_);
      ASSERT_TRUE(ref_->AddRmsNorm(rr, r.Floats(d, {n, hidden}, DType::kF32), r.Floats(w, {hidden}, DType::kF32), 1e-5f,
                                   ro).ok());
      ASSERT_TRUE(test_->AddRmsNorm(tr, t.Floats(d, {n, hidden}, dtype_), t.Floats(w, {hidden}, dtype_), 1e-5f, to).ok());
      Expect("AddRmsNorm (residual)", t.Read(tr), r.Read(rr), where);
      Expect("AddRmsNorm", t.Read(to), r.Read(ro), where);

      const std::vector<float> gu = Round(Random(n * 2 * inter, rng, 4.0), dtype_);
      Tensor rs = r.Empty({n, inter}, DType::kF32), ts = t.Empty({n, inter}, dtype_);
      ASSERT_TRUE(ref_->SiluMul(r.Floats(gu, {n, 2 * inter}, DType::kF32), rs).ok());
      ASSERT_TRUE(test_->SiluMul(t.Floats(gu, {n, 2 * inter}, dtype_), ts).ok());
      Expect("SiluMul", t.Read(ts), r.Read(rs), where);

      const std::vector<int32_t> rows = {n - 1, 0, n / 2};
      Tensor rg = r.Empty({3, hidden}, DType::kF32), tg = t.Empty({3, hidden}, dtype_);
      ASSERT_TRUE(ref_->GatherRows(r.Floats(x, {n, hidden}, DType::kF32), r.Ints(rows, {3}), rg).ok());
      ASSERT_TRUE(test_->GatherRows(t.Floats(x, {n, hidden}, dtype_), t.Ints(rows, {3}), tg).ok());
      ExpectExact("GatherRows", t.Read(tg), r.Read(rg), where);
    }
  }
  const std::vector<float> table = Round(Random(50 * 24, rng), matrix_dtype_);
  const std::vector<int32_t> tokens = {49, 0, 7, 7};
  Device r(*ref_), t(*test_);
  Tensor ro = r.Empty({4, 24}, DType::kF32), to = t.Empty({4, 24}, dtype_);
  ASSERT_TRUE(ref_->Embedding(r.Ints(tokens, {4}), r.Floats(table, {50, 24}, DType::kF32), ro).ok());
  ASSERT_TRUE(test_->Embedding(t.Ints(tokens, {4}), t.Floats(table, {50, 24}, matrix_dtype_), to).ok());
  ExpectExact("Embedding", t.Read(to), r.Read(ro), "50x24");
  const std::vector<float> got = t.Read(to);
  EXPECT_TRUE(std::equal(got.begin(), got.begin() + 24, table.begin() + 49 * 24));
}

// A batch of sequences with cached context and new tokens, stored in shuffled blocks with gaps. With
// `padding`, the batch is laid out as a decode graph replays it: extra one-token sequences with no
// context and no KV slot, a block table wider than needed, and max_context_len an upper bound.
struct AttentionCase {
  int num_heads, num_kv_heads, head_dim, block_size;
  std::vector<std::pair<int, int>> seqs;  // (cached tokens, new tokens)
  int padding = 0;
};

std::string CaseName(const AttentionCase& c) {
  std::string name = absl::StrCat("h", c.num_heads, "/kv", c.num_kv_heads, " d", c.head_dim, " bs", c.block_size, " [");
  for (auto [cached, fresh] : c.seqs) absl::StrAppend(&name, cached, "+", fresh, " ");
  absl::StrAppend(&name, "]", c.padding ? absl::StrCat(" pad ", c.padding) : "");
  return name;
}

using CheckFn = std::function<void(const std::string& op, const std::vector<float>& got,
                                   const std::vector<float>& want, bool exact)>;

void RunAttentionCase(Backend& ref, Backend& test, DType dtype, const AttentionCase& c, uint64_t seed,
                      const CheckFn& check) {
  Xoshiro256 rng(seed);
  const int real_seqs = static_cast<int>(c.seqs.size());
  const int num_seqs = real_seqs + c.padding;
  int num_blocks = 0, max_blocks = 1, num_tokens = 0, max_ctx = 0, max_q = 0;
  for (auto [cached, fresh] : c.seqs) {
    const int blocks = (cached + fresh + c.block_size - 1) / c.block_size;
    num_blocks += blocks + 1;  // one unused block per sequence: gaps in the pool
    max_blocks = std::max(max_blocks, blocks);
    num_tokens += fresh;
    max_ctx = std::max(max_ctx, cached + fresh);
    max_q = std::max(max_q, fresh);
  }
  num_tokens += c.padding;
  if (c.padding > 0) {
    max_blocks += 3;  // wider than needed
    max_ctx += 100;   // an upper bound, as a graph records it
  }
  std::vector<int32_t> perm(num_blocks);
  std::iota(perm.begin(), perm.end(), 0);
  for (int k = num_blocks - 1; k > 0; --k) std::swap(perm[k], perm[rng.Next() % (k + 1)]);
  std::vector<int32_t> tables(num_seqs * max_blocks, 0), positions, slots, query_start, context_lens, last;
  int next = 0, row = 0;
  for (int s = 0; s < real_seqs; ++s) {
    auto [cached, fresh] = c.seqs[s];
    const int blocks = (cached + fresh + c.block_size - 1) / c.block_size;
    for (int b = 0; b < blocks; ++b) tables[s * max_blocks + b] = perm[next++];
    ++next;
    query_start.push_back(row);
    for (int j = 0; j < fresh; ++j, ++row) {
      const int pos = cached + j;
      positions.push_back(pos);
      slots.push_back(tables[s * max_blocks + pos / c.block_size] * c.block_size + pos % c.block_size);
    }
    context_lens.push_back(cached + fresh);
    last.push_back(row - 1);
  }
  for (int s = real_seqs; s < num_seqs; ++s, ++row) {
    query_start.push_back(row);
    positions.push_back(0);
    slots.push_back(-1);
    context_lens.push_back(0);
    last.push_back(row);
  }
  query_start.push_back(row);
  const int hd = c.head_dim, width = (c.num_heads + 2 * c.num_kv_heads) * hd;
  const std::vector<float> qkv = Round(Random(static_cast<int64_t>(num_tokens) * width, rng, 2.0), dtype);
  const int64_t cache_elements = static_cast<int64_t>(num_blocks) * c.block_size * c.num_kv_heads * hd;
  const std::vector<float> k_cache = Round(Random(cache_elements, rng), dtype);
  const std::vector<float> v_cache = Round(Random(cache_elements, rng), dtype);
  // A real RoPE table: cos | sin of position * frequency.
  std::vector<float> rope(static_cast<int64_t>(max_ctx + 1) * hd);
  for (int pos = 0; pos <= max_ctx; ++pos) {
    for (int d = 0; d < hd / 2; ++d) {
      const double angle = pos * std::pow(10000.0, -2.0 * d / hd);
      rope[pos * hd + d] = static_cast<float>(std::cos(angle));
      rope[pos * hd + hd / 2 + d] = static_cast<float>(std::sin(angle));
    }
  }
  const Shape cache_shape{num_blocks, c.block_size, c.num_kv_heads, hd};
  AttentionShape shape{c.num_heads, c.num_kv_heads, hd, c.block_size, static_cast<float>(1 / std::sqrt(hd))};
  std::vector<float> results[2][4];
  Backend* backends[2] = {&ref, &test};
  for (int which = 0; which < 2; ++which) {
    const DType d = which == 0 ? DType::kF32 : dtype;
    Device p(*backends[which]);
    BatchLayout layout{num_seqs, num_tokens, max_blocks, max_q, max_ctx,
                       p.Ints(positions, {num_tokens}), p.Ints(slots, {num_tokens}),
                       p.Ints(query_start, {num_seqs + 1}), p.Ints(context_lens, {num_seqs}),
                       p.Ints(tables, {num_seqs, max_blocks}), p.Ints(last, {num_seqs})};
    LayerKv kv{p.Floats(k_cache, cache_shape, d), p.Floats(v_cache, cache_shape, d)};
    Tensor q = p.Floats(qkv, {num_tokens, width}, d);
    Tensor out = p.Floats(std::vector<float>(static_cast<int64_t>(num_tokens) * c.num_heads * hd, 7.0f),
                          {num_tokens, c.num_heads * hd}, d);
    absl::Status s = backends[which]->RopeAndStoreKv(q, p.Floats(rope, {max_ctx + 1, hd}, DType::kF32), layout, shape, kv);
    ASSERT_TRUE(s.ok()) << s;
    s = backends[which]->Attention(q, layout, shape, kv, out);
    ASSERT_TRUE(s.ok()) << s;
    results[which][0] = p.Read(q);
    results[which][1] = p.Read(kv.k);
    results[which][2] = p.Read(kv.v);
    results[which][3] = p.Read(out);
  }
  // RoPE rounds like the reference in float32 and then once to the dtype: the cache is exact.
  check("RopeAndStoreKv (q, k)", results[1][0], Round(results[0][0], dtype), false);
  check("RopeAndStoreKv (k cache)", results[1][1], Round(results[0][1], dtype), true);
  check("RopeAndStoreKv (v cache)", results[1][2], results[0][2], true);
  check(c.seqs.size() == 1 && c.seqs[0].first == 0 ? "Attention (prompt)"
        : max_q == 1                             ? "Attention (decode)"
                                                 : "Attention (mixed)",
        results[1][3], results[0][3], false);
  // Padding rows are zero.
  for (int64_t i = static_cast<int64_t>(num_tokens - c.padding) * c.num_heads * hd;
       i < static_cast<int64_t>(results[1][3].size()); ++i) {
    ASSERT_EQ(results[1][3][i], 0.0f) << "padding row element " << i;
  }
}

TEST_P(OpConformanceTest, AttentionPrefillDecodeMixedAndPadded) {
  std::vector<AttentionCase> cases = {
      {4, 4, 64, 16, {{0, 7}}},                          // MHA prefill, one sequence
      {8, 2, 64, 16, {{0, 33}, {20, 1}, {5, 12}}},       // GQA 4, mixed prefill + decode
      {8, 1, 128, 8, {{100, 1}, {0, 1}, {63, 1}}},       // GQA 8, decode batch
      {6, 3, 128, 16, {{17, 5}}},                        // chunk on top of cached context
      {2, 2, 64, 16, {{1500, 1}}},                       // long context decode
      {8, 4, 8, 16, {{0, 40}, {30, 1}}},                 // stories260K's heads (head_dim 8)
      {32, 4, 64, 16, {{511, 1}, {200, 1}, {7, 1}}, 5},  // TinyLlama decode, padded as a graph
      {16, 2, 128, 1, {{0, 3}, {9, 2}}},                 // block size 1
      {32, 8, 128, 16, {{0, 200}}},                      // a longer prompt, many row tiles
  };
  if (GetParam().long_contexts) {
    cases.push_back({32, 8, 128, 16, {{8191, 1}, {4000, 1}}});          // 8K decode: many splits
    cases.push_back({32, 32, 64, 16, {{8100, 1}, {1, 1}}, 2});          // MHA, padded
    cases.push_back({16, 2, 64, 16, {{7000, 60}}});                     // chunk over a long context
    cases.push_back({32, 8, 128, 16, {{0, 1024}}});                     // 1K prompt
  }
  uint64_t seed = 10;
  for (const AttentionCase& c : cases) {
    const std::string name = CaseName(c);
    auto check = [&](const std::string& op, const std::vector<float>& got, const std::vector<float>& want,
                     bool exact) {
      if (exact) {
        ExpectExact(op, got, want, name);
      } else {
        Expect(op, got, want, name);
      }
    };
    RunAttentionCase(*ref_, *test_, dtype_, c, ++seed, check);
  }
}

TEST_P(OpConformanceTest, SampleGreedyAndRandomRows) {
  Xoshiro256 rng(5);
  for (int64_t vocab : {50, 1000, 32000}) {
    std::vector<SampleRow> rows;
    rows.push_back({});                                                    // greedy
    rows.push_back({.temperature = 1.0f, .uniform = rng.NextDouble()});    // plain sampling
    rows.push_back({.temperature = 0.7f, .top_k = 5, .uniform = rng.NextDouble()});
    rows.push_back({.temperature = 1.3f, .top_p = 0.9f, .uniform = rng.NextDouble()});
    rows.push_back({.temperature = 0.5f, .top_k = 40, .top_p = 0.5f, .uniform = rng.NextDouble()});
    rows.push_back({});                                                    // greedy with ties
    rows.push_back({.temperature = 2.0f, .uniform = 0.999999});            // the tail
    rows.push_back({.temperature = 1.0f, .top_k = 1, .uniform = rng.NextDouble()});
    for (int extra = 0; extra < 20; ++extra) {  // more than one group of sorted rows
      rows.push_back({.temperature = 0.9f, .top_p = 0.95f, .uniform = rng.NextDouble()});
    }
    const int n = static_cast<int>(rows.size());
    std::vector<float> logits = Random(n * vocab, rng, 6.0);
    // Ties (row 5), NaN and -inf entries (rows 1 and 3).
    logits[5 * vocab + 3] = logits[5 * vocab + 9] = 50.0f;
    logits[1 * vocab + 2] = NAN;
    logits[1 * vocab + 5] = -INFINITY;
    logits[3 * vocab + 4] = -INFINITY;
    // Row 6: every logit -inf but one NaN. The probabilities are all NaN, so the reference falls back
    // to its last candidate: the highest -inf id; the NaN is never a candidate.
    for (int64_t i = 0; i < vocab; ++i) logits[6 * vocab + i] = -INFINITY;
    logits[6 * vocab + 0] = NAN;
    Device t(*test_);
    const Tensor device_logits = t.Floats(logits, {n, vocab}, DType::kF32);
    std::vector<int32_t> tokens(n, -1);
    std::vector<float> logprobs(n, 1.0f);
    absl::Status s = test_->Sample(device_logits, rows, tokens.data(), logprobs.data());
    ASSERT_TRUE(s.ok()) << s;
    std::vector<float> want_logprobs, got_logprobs;
    int mismatches = 0;
    for (int r = 0; r < n; ++r) {
      const float* row = logits.data() + r * vocab;
      const int32_t want = SampleRowReference(row, vocab, rows[r]);
      EXPECT_EQ(tokens[r], want) << "vocab " << vocab << " row " << r;
      mismatches += tokens[r] == want ? 0 : 1;
      want_logprobs.push_back(static_cast<float>(TokenLogprob(row, vocab, want)));
      got_logprobs.push_back(logprobs[r]);
    }
    Record("Sample (token mismatches)", label_, mismatches, 0.0);
    const double error = RelativeError(got_logprobs, want_logprobs);
    Record("Sample (logprob)", label_, error, 1e-4);
    EXPECT_LE(error, 1e-4) << "vocab " << vocab;
    EXPECT_EQ(tokens[5], 3) << "a tie goes to the lowest id";
    // Without logprobs asked for, the same tokens.
    std::vector<int32_t> again(n, -1);
    ASSERT_TRUE(test_->Sample(device_logits, rows, again.data(), nullptr).ok());
    EXPECT_EQ(again, tokens);
  }
}

TEST_P(OpConformanceTest, FillUniformStaysInRangeAndIsDeterministic) {
  Device t(*test_);
  const Tensor a = t.Empty({1000, 37}, matrix_dtype_);
  const Tensor b = t.Empty({1000, 37}, matrix_dtype_);
  ASSERT_TRUE(test_->FillUniform(a, 7, 1.0f, 0.5f).ok());
  ASSERT_TRUE(test_->FillUniform(b, 7, 1.0f, 0.5f).ok());
  const std::vector<float> va = t.Read(a), vb = t.Read(b);
  EXPECT_EQ(va, vb);
  double sum = 0;
  for (float v : va) {
    ASSERT_GE(v, 0.5f - 1e-2f);
    ASSERT_LE(v, 1.5f + 1e-2f);
    sum += v;
  }
  EXPECT_NEAR(sum / va.size(), 1.0, 0.02);
  ASSERT_TRUE(test_->FillUniform(b, 8, 1.0f, 0.5f).ok());
  EXPECT_NE(t.Read(b), va);
}

INSTANTIATE_TEST_SUITE_P(Backends, OpConformanceTest, ::testing::ValuesIn(ConformanceParams()), ParamName);

}  // namespace
}  // namespace tandem::conformance
