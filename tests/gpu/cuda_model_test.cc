// The whole model on the CUDA backend against the CPU backend, on random checkpoints: greedy ids in
// float32 (a difference accepted only at a near-tie), logits within 1e-4 (float32) and 2e-2 (bfloat16),
// decode graphs against eager steps, chunked prefill, seeded sampling, and KV transfers through the
// page-locked staging of KvCache. Skips (with the reason) where no CUDA device is found. ctest label: gpu.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backend/registry.h"
#include "common/random.h"
#include "gtest/gtest.h"
#include "model/generator.h"
#include "model/model.h"
#include "model/random_model.h"

namespace tandem {
namespace {

// Sets an environment variable for a scope (backends read TANDEM_CUDA_LINEAR when made).
struct ScopedEnv {
  ScopedEnv(const char* name, const char* value) : name(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name); }
  const char* name;
};

struct Variant {
  std::string name;
  ModelConfig config;
};

std::vector<Variant> Variants() {
  std::vector<Variant> out;
  ModelConfig tiny = *PresetConfig("tiny");  // GQA 2: 4 heads over 2 kv heads, head_dim 16
  out.push_back({"tiny", tiny});
  ModelConfig gqa8 = tiny;
  gqa8.num_attention_heads = 8;
  gqa8.num_key_value_heads = 1;
  gqa8.head_dim = 8;
  out.push_back({"gqa8-headdim8", gqa8});
  ModelConfig qwen = tiny;
  qwen.architecture = "Qwen2ForCausalLM";
  qwen.model_type = "qwen2";
  qwen.attention_bias = true;
  qwen.tie_word_embeddings = true;
  out.push_back({"qwen2-bias-tied", qwen});
  ModelConfig wide = tiny;
  wide.hidden_size = 256;
  wide.num_attention_heads = 2;
  wide.num_key_value_heads = 2;
  wide.head_dim = 128;
  wide.intermediate_size = 344;
  out.push_back({"mha-headdim128", wide});
  return out;
}

std::vector<int32_t> Prompt(int len, int salt, int64_t vocab) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back(static_cast<int32_t>((i * 37 + salt * 101 + 5) % vocab));
  return p;
}

double RelativeError(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0, scale = 1e-6;
  for (size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::fabs(got[i] - want[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(want[i])));
  }
  return worst / scale;
}

struct Loaded {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<KvCache> cache;
};

class CudaModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dirs_ = new std::vector<std::string>;
    for (const Variant& v : Variants()) {
      const std::string dir = ::testing::TempDir() + "/cuda_model_test_" + v.name;
      ASSERT_TRUE(WriteRandomModel(v.config, DType::kF32, 11, dir).ok());
      dirs_->push_back(dir);
    }
  }
  void SetUp() override {
    BackendOptions probe;
    probe.name = "cuda";
    auto cuda = MakeBackend(probe);
    if (!cuda.ok()) {
      // tests/gpu/run.sh sets TANDEM_REQUIRE_GPU: on the GPU machine a missing device is a failure.
      if (std::getenv("TANDEM_REQUIRE_GPU") != nullptr) FAIL() << cuda.status();
      GTEST_SKIP() << cuda.status();
    }
  }

  static Loaded Load(const std::string& dir, const std::string& backend, const std::string& dtype,
                     ModelLoadOptions options = {}) {
    Loaded l;
    BackendOptions b;
    b.name = backend;
    b.num_threads = 2;
    b.dtype = dtype;
    auto made = MakeBackend(b);
    EXPECT_TRUE(made.ok()) << made.status();
    l.backend = std::move(*made);
    auto model = Model::Load(dir, *l.backend, options);
    EXPECT_TRUE(model.ok()) << model.status();
    l.model = std::move(*model);
    auto cache = KvCache::Create(*l.backend, l.model->MakeKvSpec(16, 128));
    EXPECT_TRUE(cache.ok()) << cache.status();
    l.cache = std::move(*cache);
    return l;
  }

  static std::vector<float> PromptLogits(Loaded& l, const std::vector<int32_t>& prompt) {
    auto blocks = l.cache->allocator().Allocate(BlocksForTokens(prompt.size(), 16));
    EXPECT_TRUE(blocks.ok());
    auto logits = l.model->Forward({{prompt, 0, *blocks}}, *l.cache);
    EXPECT_TRUE(logits.ok()) << logits.status();
    EXPECT_TRUE(l.cache->allocator().Free(*blocks).ok());
    return *logits;
  }

  static std::vector<GenerationRequest> Requests(int64_t vocab, const SamplingParams& sampling = {}) {
    std::vector<GenerationRequest> requests;
    for (int i = 0; i < 4; ++i) {
      GenerationRequest r;
      r.prompt = Prompt(1 + i * 17, i, vocab);
      r.max_tokens = 24;
      r.sampling = sampling;
      requests.push_back(r);
    }
    return requests;
  }

  static std::vector<std::string>* dirs_;
};
std::vector<std::string>* CudaModelTest::dirs_ = nullptr;

TEST_F(CudaModelTest, Float32LogitsAndGreedyIdsEqualTheCpuBackend) {
  for (size_t v = 0; v < dirs_->size(); ++v) {
    const std::string& dir = (*dirs_)[v];
    Loaded cpu = Load(dir, "cpu-reference", "");
    Loaded gpu = Load(dir, "cuda", "float32");
    const int64_t vocab = cpu.model->vocab_size();
    for (int len : {1, 17, 120}) {
      const std::vector<int32_t> prompt = Prompt(len, len, vocab);
      EXPECT_LE(RelativeError(PromptLogits(gpu, prompt), PromptLogits(cpu, prompt)), 1e-4) << dir << " len " << len;
    }
    Generator cpu_gen(*cpu.model, *cpu.cache), gpu_gen(*gpu.model, *gpu.cache);
    const std::vector<GenerationRequest> requests = Requests(vocab);
    auto want = cpu_gen.Generate(requests);
    auto got = gpu_gen.Generate(requests);
    ASSERT_TRUE(want.ok() && got.ok());
    for (size_t r = 0; r < requests.size(); ++r) {
      const auto& a = (*want)[r].tokens;
      const auto& b = (*got)[r].tokens;
      const size_t same = std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first - a.begin();
      if (same == a.size() && a.size() == b.size()) continue;
      // A difference is accepted only where the CPU's top two logits are within 1e-4 of each other.
      std::vector<int32_t> context = requests[r].prompt;
      context.insert(context.end(), a.begin(), a.begin() + same);
      const std::vector<float> logits = PromptLogits(cpu, context);
      const float margin = std::fabs(logits[a[same]] - logits[b[same]]);
      EXPECT_LE(margin, 1e-4 * std::max(1.0f, std::fabs(logits[a[same]])))
          << dir << " request " << r << " diverges at token " << same << " (" << a[same] << " vs " << b[same] << ")";
    }
    EXPECT_EQ(gpu.cache->allocator().num_free(), gpu.cache->allocator().num_total());
  }
}

TEST_F(CudaModelTest, Bfloat16AndFloat16LogitsAgreeWithTheCpuBackend) {
  for (const std::string& dir : *dirs_) {
    Loaded cpu = Load(dir, "cpu-reference", "");
    for (const char* dtype : {"bfloat16", "float16"}) {
      Loaded gpu = Load(dir, "cuda", dtype);
      for (int len : {1, 40}) {
        const std::vector<int32_t> prompt = Prompt(len, 3, cpu.model->vocab_size());
        EXPECT_LE(RelativeError(PromptLogits(gpu, prompt), PromptLogits(cpu, prompt)), 2e-2)
            << dir << " " << dtype << " len " << len;
      }
    }
  }
}

// Both models use the same Linear kernels (not each its own timing's choice), so that only the graph
// differs.
TEST_F(CudaModelTest, DecodeGraphsGiveWhatEagerStepsGive) {
  ScopedEnv linear("TANDEM_CUDA_LINEAR", "gemv");
  const std::string& dir = (*dirs_)[0];
  ModelLoadOptions eager_options;
  eager_options.use_graphs = false;
  Loaded eager = Load(dir, "cuda", "float32", eager_options);
  Loaded graphs = Load(dir, "cuda", "float32");
  const std::vector<GenerationRequest> requests = Requests(eager.model->vocab_size());
  Generator a(*eager.model, *eager.cache), b(*graphs.model, *graphs.cache);
  auto want = a.Generate(requests);
  auto got = b.Generate(requests);
  ASSERT_TRUE(want.ok() && got.ok());
  for (size_t r = 0; r < requests.size(); ++r) EXPECT_EQ((*got)[r].tokens, (*want)[r].tokens) << "request " << r;
  EXPECT_EQ(eager.model->num_graphs(), 0);
  EXPECT_GT(graphs.model->num_graphs(), 0);
  // Batches 4, 3, 2, 1 as requests finish at the same length: each bucket recorded once, then replayed.
  auto again = b.Generate(requests);
  ASSERT_TRUE(again.ok());
  for (size_t r = 0; r < requests.size(); ++r) EXPECT_EQ((*again)[r].tokens, (*want)[r].tokens) << "request " << r;
}

TEST_F(CudaModelTest, ChunkedPrefillMatchesOneStep) {
  ScopedEnv linear("TANDEM_CUDA_LINEAR", "cublas");
  const std::string& dir = (*dirs_)[1];
  ModelLoadOptions small;
  small.max_batch_tokens = 8;
  small.max_seqs = 2;
  Loaded whole = Load(dir, "cuda", "float32");
  Loaded chunked = Load(dir, "cuda", "float32", small);
  const std::vector<int32_t> prompt = Prompt(45, 1, whole.model->vocab_size());
  EXPECT_LE(RelativeError(PromptLogits(chunked, prompt), PromptLogits(whole, prompt)), 1e-5);
  const std::vector<GenerationRequest> requests = Requests(whole.model->vocab_size());
  Generator a(*whole.model, *whole.cache), b(*chunked.model, *chunked.cache);
  auto want = a.Generate(requests);
  auto got = b.Generate(requests);
  ASSERT_TRUE(want.ok() && got.ok());
  for (size_t r = 0; r < requests.size(); ++r) EXPECT_EQ((*got)[r].tokens, (*want)[r].tokens) << "request " << r;
}

TEST_F(CudaModelTest, SeededSamplingDrawsTheCpuBackendsTokens) {
  const std::string& dir = (*dirs_)[0];
  Loaded cpu = Load(dir, "cpu-reference", "");
  Loaded gpu = Load(dir, "cuda", "float32");
  SamplingParams sampling;
  sampling.temperature = 0.8f;
  sampling.top_p = 0.9f;
  sampling.top_k = 50;
  sampling.seed = 5;
  const std::vector<GenerationRequest> requests = Requests(cpu.model->vocab_size(), sampling);
  Generator a(*cpu.model, *cpu.cache), b(*gpu.model, *gpu.cache);
  auto want = a.Generate(requests);
  auto got = b.Generate(requests);
  ASSERT_TRUE(want.ok() && got.ok());
  for (size_t r = 0; r < requests.size(); ++r) EXPECT_EQ((*got)[r].tokens, (*want)[r].tokens) << "request " << r;
}

TEST_F(CudaModelTest, KvTransfersRoundTripThroughPinnedStagingFromManyThreads) {
  Loaded gpu = Load((*dirs_)[0], "cuda", "bfloat16");
  const KvCacheSpec& spec = gpu.cache->spec();
  const int64_t token_bytes = static_cast<int64_t>(spec.num_kv_heads) * spec.head_dim * DTypeSize(spec.dtype);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto blocks = gpu.cache->allocator().Allocate(5);
      if (!blocks.ok()) {
        failures[t] = 1;
        return;
      }
      Xoshiro256 rng(t);
      for (int round = 0; round < 20; ++round) {
        const int32_t layer = round % spec.num_layers, begin = (round * 7) % 40, count = 1 + (round * 13) % 39;
        std::vector<uint8_t> k(count * token_bytes), v(count * token_bytes);
        for (auto& x : k) x = static_cast<uint8_t>(rng.Next());
        for (auto& x : v) x = static_cast<uint8_t>(rng.Next());
        std::vector<uint8_t> k_back(k.size()), v_back(v.size());
        if (!gpu.cache->WriteTokens(*blocks, layer, begin, count, k.data(), v.data()).ok() ||
            !gpu.cache->ReadTokens(*blocks, layer, begin, count, k_back.data(), v_back.data()).ok() ||
            k_back != k || v_back != v) {
          ++failures[t];
        }
      }
      if (!gpu.cache->allocator().Free(*blocks).ok()) ++failures[t];
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
  // A range past the blocks is refused, not copied.
  auto blocks = gpu.cache->allocator().Allocate(1);
  std::vector<uint8_t> buffer(64 * token_bytes);
  EXPECT_EQ(gpu.cache->ReadTokens(*blocks, 0, 10, 20, buffer.data(), buffer.data()).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CudaModelTest, MemoryInfoAndWorkspaceSizes) {
  Loaded gpu = Load((*dirs_)[0], "cuda", "bfloat16");
  auto memory = gpu.backend->MemoryInfo();
  ASSERT_TRUE(memory.ok()) << memory.status();
  EXPECT_GT(memory->total_bytes, memory->free_bytes);
  EXPECT_GT(memory->free_bytes, 0);
  EXPECT_GT(gpu.model->workspace_bytes(), 0);
  EXPECT_GT(gpu.model->weight_bytes(), 0);
}

}  // namespace
}  // namespace tandem
