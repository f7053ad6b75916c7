// The engine on a random-weight checkpoint: batching and paging must not change results, every KV
// block comes back, bad requests are refused with the field named.
#include "model/generator.h"

#include <cstdlib>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "backend/cpu/cpu_backend.h"
#include "gtest/gtest.h"
#include "model/random_model.h"

namespace tandem {
namespace {

class GeneratorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(::testing::TempDir() + "/generator_test_model");
    auto config = PresetConfig("tiny");
    ASSERT_TRUE(config.ok());
    config->num_key_value_heads = 2;  // GQA
    ASSERT_TRUE(WriteRandomModel(*config, DType::kBF16, 3, *dir_).ok());
  }
  void SetUp() override {
    backend_ = std::make_unique<CpuBackend>(CpuBackendOptions{.fast = true, .num_threads = 2});
    auto model = Model::Load(*dir_, *backend_);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
  }
  std::unique_ptr<KvCache> MakeCache(int32_t blocks, int32_t block_size = 16) {
    auto cache = KvCache::Create(*backend_, model_->MakeKvSpec(block_size, blocks));
    EXPECT_TRUE(cache.ok());
    return std::move(*cache);
  }
  static std::vector<int32_t> Prompt(int len, int salt) {
    std::vector<int32_t> p;
    for (int i = 0; i < len; ++i) p.push_back((i * 37 + salt * 101 + 5) % 500);
    return p;
  }

  // The model loaded on `backend`: a prompt's last logits from one prefill (`whole`), and from feeding it
  // token by token (`step`).
  static void PrefillAndTokenByToken(CpuBackend& backend, const std::vector<int32_t>& prompt, std::vector<float>* whole,
                                     std::vector<float>* step) {
    auto model = Model::Load(*dir_, backend);
    ASSERT_TRUE(model.ok()) << model.status();
    auto cache = KvCache::Create(backend, (*model)->MakeKvSpec(4, 8));
    ASSERT_TRUE(cache.ok());
    auto blocks = (*cache)->allocator().Allocate(6);
    ASSERT_TRUE(blocks.ok());
    auto prefill = (*model)->Forward({{prompt, 0, *blocks}}, **cache);
    ASSERT_TRUE(prefill.ok()) << prefill.status();
    *whole = *std::move(prefill);
    for (size_t t = 0; t < prompt.size(); ++t) {
      auto logits = (*model)->Forward(
          {{std::span<const int32_t>(prompt).subspan(t, 1), static_cast<int64_t>(t), *blocks}}, **cache);
      ASSERT_TRUE(logits.ok());
      *step = *std::move(logits);
    }
  }

  static std::string* dir_;
  std::unique_ptr<CpuBackend> backend_;
  std::unique_ptr<Model> model_;
};
std::string* GeneratorTest::dir_ = nullptr;

TEST_F(GeneratorTest, BatchedGenerationEqualsOneAtATimeAndFreesEveryBlock) {
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 5; ++i) {
    GenerationRequest r;
    r.prompt = Prompt(3 + i * 11, i);
    r.max_tokens = 9 + i;
    requests.push_back(r);
  }
  auto cache = MakeCache(64);
  Generator generator(*model_, *cache);
  auto together = generator.Generate(requests);
  ASSERT_TRUE(together.ok()) << together.status();
  EXPECT_EQ(cache->allocator().num_free(), 64);
  for (size_t i = 0; i < requests.size(); ++i) {
    auto alone = generator.Generate({requests[i]});
    ASSERT_TRUE(alone.ok());
    EXPECT_EQ((*alone)[0].tokens, (*together)[i].tokens) << "request " << i;
    EXPECT_EQ((*together)[i].tokens.size(), static_cast<size_t>(requests[i].max_tokens));
  }
  EXPECT_EQ(cache->allocator().num_free(), 64);
}

// A prompt's logits, and what feeding it token by token gives: equal up to the order of the sums, with
// float32 activations (widened weights) and with the bf16 dot products (backend/cpu/bf16_dot.h), where
// prompts and decode steps alike round the activations to bf16.
TEST_F(GeneratorTest, PromptFedTokenByTokenGivesThePrefillLogits) {
  const std::vector<int32_t> prompt = Prompt(21, 9);
  for (const bool dot : {false, true}) {
    SCOPED_TRACE(dot ? "bf16 dot products" : "widened weights");
    CpuBackend backend(CpuBackendOptions{.fast = true, .num_threads = 2, .bf16_dot_prompts = dot});
    std::vector<float> whole_logits, step;
    PrefillAndTokenByToken(backend, prompt, &whole_logits, &step);
    const std::vector<float>* whole = &whole_logits;
    ASSERT_EQ(step.size(), whole->size());
    double worst = 0, scale = 0;
    for (size_t k = 0; k < step.size(); ++k) {
      worst = std::max(worst, std::fabs(double(step[k]) - (*whole)[k]));
      scale = std::max(scale, std::fabs(double(step[k])));
    }
    std::printf("prefill vs token by token (%s): max |diff| %.3g, max |logit| %.3g\n", dot ? "dot" : "widened",
                worst, scale);
    EXPECT_LT(worst, 1e-3);
  }
}

// --batch-invariant: a 21-token prompt's logits are, bit for bit, what feeding it token by token gives
// (the prompt's matrix products summed row by row as decode steps sum them), with the matrices held in
// bf16 (the checkpoint's) and widened to float32. So a stream resumed by re-prefilling what it had
// generated samples from exactly the logits it would have had. Without it they differ in the last bits.
TEST_F(GeneratorTest, BatchInvariantPrefillGivesExactlyTheTokenByTokenLogits) {
  const std::vector<int32_t> prompt = Prompt(21, 9);
  struct Case {
    DType held;
    bool invariant;
    bool dot;  // bf16 dot products where the CPU has them (bf16_dot.h); else the widening kernels
  };
  // Without the option, the widening path's sgemm prompts differ (the dot path's one-chain tiles differ
  // too, but not on this model's 64-wide rows: backend_conformance_test shows it on wider ones).
  for (const Case c : {Case{DType::kBF16, true, false}, Case{DType::kBF16, false, false}, Case{DType::kBF16, true, true},
                       Case{DType::kF32, true, false}, Case{DType::kF32, false, false}}) {
    const DType held = c.held;
    const bool invariant = c.invariant;
    {
      SCOPED_TRACE(std::string(DTypeName(held)) + (invariant ? " batch-invariant" : " default") +
                   (c.dot ? " dot" : ""));
      CpuBackend backend(CpuBackendOptions{
          .fast = true, .num_threads = 2, .matrix_dtype = held, .batch_invariant = invariant, .bf16_dot_prompts = c.dot});
      std::vector<float> whole_logits, step;
      PrefillAndTokenByToken(backend, prompt, &whole_logits, &step);
      const std::vector<float>* whole = &whole_logits;
      if (invariant) {
        EXPECT_EQ(step, *whole);
      } else {
        EXPECT_NE(step, *whole) << "the prompt GEMM happened to sum exactly as the decode kernel";
      }
    }
  }
}

// The checkpoint is bf16: the CPU backend holds its matrices in bf16 (half the bytes of float32), uses
// the unfused ones in place in the file mapping, and gives what a float32 copy of the same weights gives
// (the values are equal; only the order of the sums differs) and exactly what a bf16 copy gives.
TEST_F(GeneratorTest, Bf16CheckpointIsHeldInBf16MappedOrCopiedAlike) {
  EXPECT_EQ(model_->matrix_dtype(), DType::kBF16);
  EXPECT_EQ(model_->mapped_weight_bytes(), 0) << "copies by default";
  // Prompts with float32 activations here (the bf16 dot-product path rounds them: compared below).
  CpuBackend widen_backend(CpuBackendOptions{.fast = true, .num_threads = 2, .bf16_dot_prompts = false});
  auto copied = Model::Load(*dir_, widen_backend);
  ASSERT_TRUE(copied.ok()) << copied.status();
  ModelLoadOptions map;
  map.map_weights = true;
  auto mapped = Model::Load(*dir_, widen_backend, map);
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  EXPECT_GT((*mapped)->mapped_weight_bytes(), 0);
  EXPECT_EQ((*mapped)->weight_bytes(), model_->weight_bytes());
  CpuBackend f32_backend(CpuBackendOptions{.fast = true, .num_threads = 2, .matrix_dtype = DType::kF32});
  auto widened = Model::Load(*dir_, f32_backend);
  ASSERT_TRUE(widened.ok()) << widened.status();
  EXPECT_EQ((*widened)->matrix_dtype(), DType::kF32);
  // Norm weights stay float32 either way; the matrices are all but a few KB of the bytes.
  EXPECT_NEAR(static_cast<double>((*widened)->weight_bytes()) / model_->weight_bytes(), 2.0, 0.02);

  // Prompts of 1, 5 (streamed weights) and 40 tokens (GEMM on widened blocks).
  for (int len : {1, 5, 40}) {
    const std::vector<int32_t> prompt = Prompt(len, len);
    std::vector<std::vector<float>> logits;
    for (Model* m : {copied->get(), mapped->get(), widened->get(), model_.get()}) {
      Backend& backend = m == widened->get() ? static_cast<Backend&>(f32_backend)
                         : m == model_.get() ? static_cast<Backend&>(*backend_)
                                             : static_cast<Backend&>(widen_backend);
      auto cache = KvCache::Create(backend, m->MakeKvSpec(16, 4));
      ASSERT_TRUE(cache.ok());
      auto blocks = (*cache)->allocator().Allocate(3);
      ASSERT_TRUE(blocks.ok());
      auto out = m->Forward({{prompt, 0, *blocks}}, **cache);
      ASSERT_TRUE(out.ok()) << out.status();
      logits.push_back(*out);
    }
    EXPECT_EQ(logits[0], logits[1]) << "mapped and copied bf16 weights differ, prompt of " << len;
    double worst = 0, scale = 0;
    for (size_t k = 0; k < logits[0].size(); ++k) {
      worst = std::max(worst, std::fabs(double(logits[0][k]) - logits[2][k]));
      scale = std::max(scale, std::fabs(double(logits[2][k])));
    }
    EXPECT_LT(worst / scale, 1e-5) << "bf16-held vs float32-held, prompt of " << len;
    // The default backend: bf16 dot products where the CPU has them (activations rounded to bf16), so
    // within bf16's precision of float32 activations; elsewhere the same kernels as above.
    double dot_worst = 0;
    for (size_t k = 0; k < logits[3].size(); ++k) {
      dot_worst = std::max(dot_worst, std::fabs(double(logits[3][k]) - logits[2][k]));
    }
    std::printf("prompt of %d: default backend vs float32-held: max |diff| / max |logit| %.3g\n", len,
                dot_worst / scale);
    EXPECT_LT(dot_worst / scale, 1e-2) << "prompt of " << len;
  }
}

// Workspaces hold 7 tokens and 2 sequences: prompts are prefilled in chunks over their own cached KV
// and decode batches are split. On the reference backend every row is computed alone (double sums),
// so chunking must change nothing at all: the same logits bit for bit, the same tokens.
TEST_F(GeneratorTest, ChunkedStepsGiveExactlyWhatOneStepGives) {
  CpuBackend reference(CpuBackendOptions{.fast = false, .num_threads = 1});
  ModelLoadOptions small;
  small.max_batch_tokens = 7;
  small.max_seqs = 2;
  auto whole = Model::Load(*dir_, reference);
  auto chunked = Model::Load(*dir_, reference, small);
  ASSERT_TRUE(whole.ok() && chunked.ok());
  auto cache = KvCache::Create(reference, (*whole)->MakeKvSpec(4, 64));
  ASSERT_TRUE(cache.ok());
  const std::vector<int32_t> a = Prompt(23, 1), b = Prompt(3, 2), c = Prompt(9, 3);
  auto blocks_a = (*cache)->allocator().Allocate(6), blocks_b = (*cache)->allocator().Allocate(1),
       blocks_c = (*cache)->allocator().Allocate(3);
  ASSERT_TRUE(blocks_a.ok() && blocks_b.ok() && blocks_c.ok());
  const std::vector<SequenceStep> steps = {{a, 0, *blocks_a}, {b, 0, *blocks_b}, {c, 0, *blocks_c}};
  auto want = (*whole)->Forward(steps, **cache);
  auto got = (*chunked)->Forward(steps, **cache);
  ASSERT_TRUE(want.ok() && got.ok()) << want.status() << got.status();
  EXPECT_EQ(*got, *want);

  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 5; ++i) {
    GenerationRequest r;
    r.prompt = Prompt(3 + i * 5, i);
    r.max_tokens = 6;
    requests.push_back(r);
  }
  auto gen_cache = KvCache::Create(reference, (*whole)->MakeKvSpec(16, 64));
  ASSERT_TRUE(gen_cache.ok());
  Generator one(**whole, **gen_cache), many(**chunked, **gen_cache);
  auto expected = one.Generate(requests);
  auto actual = many.Generate(requests);
  ASSERT_TRUE(expected.ok() && actual.ok());
  for (size_t i = 0; i < requests.size(); ++i) EXPECT_EQ((*actual)[i].tokens, (*expected)[i].tokens) << i;
}

TEST_F(GeneratorTest, StepReturnsTokensAndLogprobsOfTheLogits) {
  auto cache = MakeCache(8);
  auto blocks = cache->allocator().Allocate(2);
  ASSERT_TRUE(blocks.ok());
  const std::vector<int32_t> prompt = Prompt(11, 4);
  auto logits = model_->Forward({{prompt, 0, *blocks}}, *cache);
  ASSERT_TRUE(logits.ok());
  const std::vector<SampleRow> rows = {SampleRow{}};
  auto step = model_->Step({{prompt, 0, *blocks}}, *cache, rows, /*want_logprobs=*/true);
  ASSERT_TRUE(step.ok()) << step.status();
  const int32_t argmax = Argmax(*logits);
  EXPECT_EQ(step->tokens, std::vector<int32_t>{argmax});
  ASSERT_EQ(step->logprobs.size(), 1u);
  EXPECT_NEAR(step->logprobs[0], TokenLogprob(logits->data(), model_->vocab_size(), argmax), 1e-6);
  EXPECT_LT(step->logprobs[0], 0.0f);
  // One row per sequence, or the step is refused.
  EXPECT_EQ(model_->Step({{prompt, 0, *blocks}}, *cache, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(GeneratorTest, RequestsWaitForMemoryInsteadOfFailing) {
  // Each request needs 2 blocks; the pool holds 3, so they must run (mostly) one after another.
  std::vector<GenerationRequest> requests(4);
  for (int i = 0; i < 4; ++i) {
    requests[i].prompt = Prompt(10, i);
    requests[i].max_tokens = 10;
  }
  auto cache = MakeCache(3);
  Generator generator(*model_, *cache);
  auto out = generator.Generate(requests);
  ASSERT_TRUE(out.ok()) << out.status();
  for (const auto& o : *out) EXPECT_EQ(o.tokens.size(), 10u);
  EXPECT_EQ(cache->allocator().num_free(), 3);
}

TEST_F(GeneratorTest, StopTokensAndCallbackStopEarly) {
  GenerationRequest r;
  r.prompt = Prompt(5, 1);
  r.max_tokens = 12;
  auto cache = MakeCache(4);
  Generator generator(*model_, *cache);
  auto greedy = generator.Generate({r});
  ASSERT_TRUE(greedy.ok());
  r.stop_token_ids = {(*greedy)[0].tokens[2]};
  auto stopped = generator.Generate({r});
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ((*stopped)[0].finish, FinishReason::kStopToken);
  EXPECT_LE((*stopped)[0].tokens.size(), 3u);
  EXPECT_EQ((*stopped)[0].tokens.back(), (*greedy)[0].tokens[2]);

  r.stop_token_ids.clear();
  int seen = 0;
  auto cut = generator.Generate({r}, [&](int, int32_t) { return ++seen < 4; });
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ((*cut)[0].tokens.size(), 4u);
  EXPECT_EQ((*cut)[0].finish, FinishReason::kStopped);
  EXPECT_EQ(cache->allocator().num_free(), 4);
}

TEST_F(GeneratorTest, SeededSamplingIsReproducible) {
  GenerationRequest r;
  r.prompt = Prompt(6, 2);
  r.max_tokens = 16;
  r.sampling = {.temperature = 1.0f, .top_p = 0.9f, .seed = 42};
  auto cache = MakeCache(4);
  Generator generator(*model_, *cache);
  auto a = generator.Generate({r});
  auto b = generator.Generate({r});
  r.sampling.seed = 43;
  auto c = generator.Generate({r});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ((*a)[0].tokens, (*b)[0].tokens);
  EXPECT_NE((*a)[0].tokens, (*c)[0].tokens);
}

TEST_F(GeneratorTest, BadRequestsNameTheField) {
  auto cache = MakeCache(4);
  Generator generator(*model_, *cache);
  auto expect_invalid = [&](GenerationRequest r, const std::string& needle) {
    auto out = generator.Generate({r});
    ASSERT_FALSE(out.ok()) << needle;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(out.status().message().find(needle), std::string::npos) << out.status();
  };
  GenerationRequest ok;
  ok.prompt = {1, 2, 3};
  GenerationRequest r = ok;
  r.prompt.clear();
  expect_invalid(r, "prompt is empty");
  r = ok;
  r.prompt = {1, 512, 3};
  expect_invalid(r, "outside the vocabulary");
  r = ok;
  r.prompt = {-1};
  expect_invalid(r, "outside the vocabulary");
  r = ok;
  r.max_tokens = 0;
  expect_invalid(r, "max_tokens");
  r = ok;
  r.max_tokens = 510;
  expect_invalid(r, "exceeds the context length 512");
  r = ok;
  r.sampling.top_p = 0;
  expect_invalid(r, "top_p");
  EXPECT_EQ(cache->allocator().num_free(), 4);

  // A request larger than the whole pool can never run: refused, not queued forever.
  r = ok;
  r.max_tokens = 100;
  auto huge = generator.Generate({r});
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(GeneratorTest, ForwardRefusesOutOfRangeInputsBeforeTouchingMemory) {
  auto cache = MakeCache(2, 4);
  std::vector<int32_t> blocks = {0, 1};
  std::vector<int32_t> bad_token = {1, 100000};
  EXPECT_EQ(model_->Forward({{bad_token, 0, blocks}}, *cache).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<int32_t> tokens(9, 1);  // 9 tokens need 3 blocks of 4
  EXPECT_EQ(model_->Forward({{tokens, 0, blocks}}, *cache).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<int32_t> bad_blocks = {0, 7};
  EXPECT_EQ(model_->Forward({{std::span<const int32_t>(tokens).first(5), 0, bad_blocks}}, *cache).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(GeneratorTest, LoadRefusesAShapeMismatchNamingTheTensor) {
  const std::string dir = ::testing::TempDir() + "/generator_test_bad_model";
  auto config = PresetConfig("tiny");
  ASSERT_TRUE(WriteRandomModel(*config, DType::kF32, 1, dir).ok());
  // Same weights, but the config now claims a wider MLP.
  config->intermediate_size += 8;
  std::ofstream(dir + "/config.json", std::ios::trunc) << ModelConfigToJson(*config);
  auto model = Model::Load(dir, *backend_);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("model.layers.0.mlp.gate_proj.weight"), std::string::npos)
      << model.status();
  EXPECT_NE(model.status().message().find("config wants [184,64]"), std::string::npos) << model.status();
}

// The progress hook (an engine's heartbeat during a step) runs once per layer of every forward pass, so
// a long prompt step keeps beating; cleared, it runs no more.
TEST_F(GeneratorTest, ProgressHookRunsOncePerLayer) {
  std::unique_ptr<KvCache> cache = MakeCache(16);
  int calls = 0;
  model_->set_progress_hook([&calls] { ++calls; });
  std::vector<int32_t> blocks = *cache->allocator().Allocate(4);
  const std::vector<int32_t> prompt = Prompt(40, 1);
  ASSERT_TRUE(model_->Forward({{prompt, 0, blocks}}, *cache).ok());
  EXPECT_EQ(calls, model_->config().num_hidden_layers);
  model_->set_progress_hook(nullptr);
  const std::vector<int32_t> next = {7};
  ASSERT_TRUE(model_->Forward({{next, 40, blocks}}, *cache).ok());
  EXPECT_EQ(calls, model_->config().num_hidden_layers);
}

}  // namespace
}  // namespace tandem
