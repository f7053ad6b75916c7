// Every op of every faster backend against the plain-loop CPU reference, on random shapes (odd sizes,
// GQA ratios 1/4/8, head_dim 64 and 128, block tables with gaps, several sequences per batch).
// Backends that are not built here are skipped by name.
#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "backend/registry.h"
#include "gtest/gtest.h"
#include "model/sampler.h"

namespace tandem {
namespace {

// Host-side tensors that are copied onto each backend under test.
struct HostTensor {
  std::vector<float> f;
  std::vector<int32_t> i;
  std::vector<int64_t> shape;
  bool is_int = false;
};

HostTensor RandomF(std::vector<int64_t> shape, Rng& rng, double scale = 1.0) {
  HostTensor t;
  t.shape = shape;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  t.f.resize(n);
  for (float& x : t.f) x = static_cast<float>((2 * rng.NextDouble() - 1) * scale);
  return t;
}

HostTensor Ints(std::vector<int32_t> values) {
  HostTensor t;
  t.is_int = true;
  t.shape = {static_cast<int64_t>(values.size())};
  t.i = std::move(values);
  return t;
}

// Owns device copies of host tensors for one backend.
class Placer {
 public:
  explicit Placer(Backend& backend) : backend_(backend) {}
  Tensor Put(const HostTensor& h) {
    const int64_t bytes = h.is_int ? h.i.size() * 4 : h.f.size() * 4;
    auto buffer = backend_.Allocate(bytes);
    EXPECT_TRUE(buffer.ok());
    EXPECT_TRUE(backend_.CopyHostToDevice((*buffer)->data(), h.is_int ? static_cast<const void*>(h.i.data())
                                                                         : static_cast<const void*>(h.f.data()),
                                          bytes).ok());
    Tensor t{(*buffer)->data(), DType::kF32, h.shape};
    buffers_.push_back(std::move(*buffer));
    return t;
  }
  std::vector<float> Get(const Tensor& t) {
    std::vector<float> out(t.num_elements());
    EXPECT_TRUE(backend_.CopyDeviceToHost(out.data(), t.data, out.size() * 4).ok());
    return out;
  }

 private:
  Backend& backend_;
  std::vector<std::unique_ptr<DeviceBuffer>> buffers_;
};

// max |a - b| / (max |b| + tiny): one number per op comparison.
double RelativeError(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0, scale = 1e-6;
  for (size_t k = 0; k < b.size(); ++k) {
    worst = std::max(worst, static_cast<double>(std::fabs(a[k] - b[k])));
    scale = std::max(scale, static_cast<double>(std::fabs(b[k])));
    if (std::isnan(a[k]) != std::isnan(b[k])) return INFINITY;
  }
  return worst / scale;
}

class ConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    BackendOptions ref_options{.name = "cpu-reference", .num_threads = 1};
    BackendOptions test_options{.name = GetParam(), .num_threads = 3};
    auto ref = MakeBackend(ref_options);
    auto test = MakeBackend(test_options);
    ASSERT_TRUE(ref.ok());
    if (!test.ok()) GTEST_SKIP() << GetParam() << ": " << test.status();
    ref_ = std::move(*ref);
    test_ = std::move(*test);
  }
  std::unique_ptr<Backend> ref_, test_;
};

constexpr double kTolerance = 2e-5;  // float32 vs float64-accumulating reference

TEST_P(ConformanceTest, LinearOverShapesWithAndWithoutBias) {
  Rng rng(1);
  for (auto [n, in, out] : std::vector<std::tuple<int, int, int>>{
           {1, 64, 96}, {3, 33, 17}, {8, 128, 257}, {9, 70, 31}, {40, 256, 130}}) {
    for (bool with_bias : {false, true}) {
      HostTensor x = RandomF({n, in}, rng), w = RandomF({out, in}, rng), b = RandomF({out}, rng);
      Placer pr(*ref_), pt(*test_);
      Tensor yr = pr.Put(RandomF({n, out}, rng)), yt = pt.Put(RandomF({n, out}, rng));
      Tensor br = pr.Put(b), bt = pt.Put(b);
      ASSERT_TRUE(ref_->Linear(pr.Put(x), pr.Put(w), with_bias ? &br : nullptr, yr).ok());
      ASSERT_TRUE(test_->Linear(pt.Put(x), pt.Put(w), with_bias ? &bt : nullptr, yt).ok());
      EXPECT_LT(RelativeError(pt.Get(yt), pr.Get(yr)), kTolerance) << n << "x" << in << "->" << out;
    }
  }
}

// The CPU fast path streams weights for up to 8 rows and sums each output as its batch-1 kernel does,
// so a row's result is bit-identical whatever batch it is in (decode output independent of batching).
TEST(CpuFastPathTest, LinearRowDoesNotDependOnTheBatch) {
  auto cpu = MakeBackend({.name = "cpu", .num_threads = 2});
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  Rng rng(7);
  for (auto [n, in, out] : std::vector<std::tuple<int, int, int>>{{2, 256, 96}, {5, 70, 33}, {8, 688, 256}}) {
    HostTensor x = RandomF({n, in}, rng), w = RandomF({out, in}, rng), b = RandomF({out}, rng);
    Placer p(**cpu);
    Tensor wt = p.Put(w), bt = p.Put(b);
    Tensor batch_out = p.Put(RandomF({n, out}, rng));
    ASSERT_TRUE((*cpu)->Linear(p.Put(x), wt, &bt, batch_out).ok());
    const std::vector<float> batched = p.Get(batch_out);
    for (int r = 0; r < n; ++r) {
      HostTensor row;
      row.shape = {1, in};
      row.f.assign(x.f.begin() + r * in, x.f.begin() + (r + 1) * in);
      Tensor row_out = p.Put(RandomF({1, out}, rng));
      ASSERT_TRUE((*cpu)->Linear(p.Put(row), wt, &bt, row_out).ok());
      const std::vector<float> alone = p.Get(row_out);
      for (int o = 0; o < out; ++o) {
        ASSERT_EQ(alone[o], batched[r * out + o]) << n << "x" << in << "->" << out << " row " << r << " out " << o;
      }
    }
  }
}

TEST_P(ConformanceTest, NormsSiluAndGather) {
  Rng rng(2);
  for (int n : {1, 5, 17}) {
    const int hidden = 67, inter = 45;
    HostTensor x = RandomF({n, hidden}, rng, 3.0), w = RandomF({hidden}, rng), d = RandomF({n, hidden}, rng);
    Placer pr(*ref_), pt(*test_);
    Tensor or_ = pr.Put(x), ot = pt.Put(x);
    ASSERT_TRUE(ref_->RmsNorm(pr.Put(x), pr.Put(w), 1e-5f, or_).ok());
    ASSERT_TRUE(test_->RmsNorm(pt.Put(x), pt.Put(w), 1e-5f, ot).ok());
    EXPECT_LT(RelativeError(pt.Get(ot), pr.Get(or_)), kTolerance);

    Tensor rr = pr.Put(x), rt = pt.Put(x);
    ASSERT_TRUE(ref_->AddRmsNorm(rr, pr.Put(d), pr.Put(w), 1e-5f, or_).ok());
    ASSERT_TRUE(test_->AddRmsNorm(rt, pt.Put(d), pt.Put(w), 1e-5f, ot).ok());
    EXPECT_LT(RelativeError(pt.Get(rt), pr.Get(rr)), kTolerance);
    EXPECT_LT(RelativeError(pt.Get(ot), pr.Get(or_)), kTolerance);

    HostTensor gu = RandomF({n, 2 * inter}, rng, 4.0);
    Tensor sr = pr.Put(RandomF({n, inter}, rng)), st = pt.Put(RandomF({n, inter}, rng));
    ASSERT_TRUE(ref_->SiluMul(pr.Put(gu), sr).ok());
    ASSERT_TRUE(test_->SiluMul(pt.Put(gu), st).ok());
    EXPECT_LT(RelativeError(pt.Get(st), pr.Get(sr)), kTolerance);

    HostTensor rows = Ints({static_cast<int32_t>(n - 1), 0});
    rows.shape = {2};
    Tensor gr = pr.Put(RandomF({2, hidden}, rng)), gt = pt.Put(RandomF({2, hidden}, rng));
    ASSERT_TRUE(ref_->GatherRows(pr.Put(x), pr.Put(rows), gr).ok());
    ASSERT_TRUE(test_->GatherRows(pt.Put(x), pt.Put(rows), gt).ok());
    EXPECT_EQ(pt.Get(gt), pr.Get(gr));
  }
}

// A batch of sequences with cached context and new tokens, stored in shuffled blocks with gaps.
struct AttentionCase {
  int num_heads, num_kv_heads, head_dim, block_size;
  std::vector<std::pair<int, int>> seqs;  // (cached tokens, new tokens)
};

void RunAttentionCase(Backend& ref, Backend& test, const AttentionCase& c, uint64_t seed) {
  Rng rng(seed);
  const int num_seqs = static_cast<int>(c.seqs.size());
  int num_blocks = 0, max_blocks = 1, num_tokens = 0, max_ctx = 0, max_q = 0;
  for (auto [cached, fresh] : c.seqs) {
    const int blocks = (cached + fresh + c.block_size - 1) / c.block_size;
    num_blocks += blocks + 1;  // one unused block per sequence: gaps in the pool
    max_blocks = std::max(max_blocks, blocks);
    num_tokens += fresh;
    max_ctx = std::max(max_ctx, cached + fresh);
    max_q = std::max(max_q, fresh);
  }
  std::vector<int32_t> perm(num_blocks);
  std::iota(perm.begin(), perm.end(), 0);
  for (int k = num_blocks - 1; k > 0; --k) std::swap(perm[k], perm[rng.Next() % (k + 1)]);
  std::vector<int32_t> tables(num_seqs * max_blocks, -1), positions, slots, query_start, context_lens, last;
  int next = 0, row = 0;
  for (int s = 0; s < num_seqs; ++s) {
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
  query_start.push_back(row);
  const int hd = c.head_dim, width = (c.num_heads + 2 * c.num_kv_heads) * hd;
  HostTensor qkv = RandomF({num_tokens, width}, rng, 2.0);
  HostTensor k_cache = RandomF({num_blocks, c.block_size, c.num_kv_heads, hd}, rng);
  HostTensor v_cache = RandomF({num_blocks, c.block_size, c.num_kv_heads, hd}, rng);
  HostTensor rope = RandomF({max_ctx, hd}, rng);  // any table works for a conformance check
  HostTensor tables_t = Ints(tables);
  tables_t.shape = {num_seqs, max_blocks};

  AttentionShape shape{c.num_heads, c.num_kv_heads, hd, c.block_size, static_cast<float>(1 / std::sqrt(hd))};
  std::vector<float> results[2][3];
  Backend* backends[2] = {&ref, &test};
  for (int which = 0; which < 2; ++which) {
    Placer p(*backends[which]);
    BatchLayout layout{num_seqs, num_tokens, max_blocks, max_q, max_ctx,
                       p.Put(Ints(positions)), p.Put(Ints(slots)), p.Put(Ints(query_start)),
                       p.Put(Ints(context_lens)), p.Put(tables_t), p.Put(Ints(last))};
    LayerKv kv{p.Put(k_cache), p.Put(v_cache)};
    Tensor q = p.Put(qkv), out = p.Put(RandomF({num_tokens, c.num_heads * hd}, rng));
    ASSERT_TRUE(backends[which]->RopeAndStoreKv(q, p.Put(rope), layout, shape, kv).ok());
    ASSERT_TRUE(backends[which]->Attention(q, layout, shape, kv, out).ok());
    results[which][0] = p.Get(q);
    results[which][1] = p.Get(kv.k);
    results[which][2] = p.Get(out);
  }
  EXPECT_LT(RelativeError(results[1][0], results[0][0]), kTolerance) << "rope";
  EXPECT_EQ(results[1][1], results[0][1]) << "k cache";
  EXPECT_LT(RelativeError(results[1][2], results[0][2]), kTolerance) << "attention";
}

TEST_P(ConformanceTest, AttentionPrefillDecodeAndMixedBatches) {
  const std::vector<AttentionCase> cases = {
      {4, 4, 64, 16, {{0, 7}}},                          // MHA prefill, one sequence
      {8, 2, 64, 16, {{0, 33}, {20, 1}, {5, 12}}},       // GQA 4, mixed prefill + decode
      {8, 1, 128, 8, {{100, 1}, {0, 1}, {63, 1}}},       // GQA 8, decode batch
      {6, 3, 128, 16, {{17, 5}}},                        // chunk on top of cached context
      {2, 2, 64, 16, {{1500, 1}}},                       // long context decode
  };
  uint64_t seed = 10;
  for (const AttentionCase& c : cases) RunAttentionCase(*ref_, *test_, c, seed++);
}

TEST_P(ConformanceTest, EmbeddingGathersRows) {
  Rng rng(4);
  HostTensor table = RandomF({50, 24}, rng);
  HostTensor tokens = Ints({49, 0, 7, 7});
  Placer pr(*ref_), pt(*test_);
  Tensor or_ = pr.Put(RandomF({4, 24}, rng)), ot = pt.Put(RandomF({4, 24}, rng));
  ASSERT_TRUE(ref_->Embedding(pr.Put(tokens), pr.Put(table), or_).ok());
  ASSERT_TRUE(test_->Embedding(pt.Put(tokens), pt.Put(table), ot).ok());
  EXPECT_EQ(pt.Get(ot), pr.Get(or_));
  std::vector<float> got = pr.Get(or_);
  EXPECT_TRUE(std::equal(got.begin(), got.begin() + 24, table.f.begin() + 49 * 24));
}

INSTANTIATE_TEST_SUITE_P(Backends, ConformanceTest, ::testing::Values("cpu", "cuda"));

}  // namespace
}  // namespace tandem
