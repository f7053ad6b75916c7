// The colocated engine against one-process generation (model/generator.h, itself checked against the
// numpy reference): chunked or not, concurrent or alone, it must produce the same tokens; a long prompt
// must not stall running decodes (checked on the step timeline); every KV block must come back.
#include "colocated/colocated_engine.h"

#include <future>
#include <map>
#include <mutex>

#include "backend/cpu/cpu_backend.h"
#include "gtest/gtest.h"
#include "model/generator.h"
#include "model/random_model.h"

namespace tandem {
namespace {

struct Outcome {
  std::vector<int32_t> tokens;
  absl::Status status;
  ColocatedSummary summary;
};

class ColocatedEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/colocated_model";
    auto config = PresetConfig("tiny");
    ASSERT_TRUE(config.ok());
    ASSERT_TRUE(WriteRandomModel(*config, DType::kF32, 11, dir_).ok());
    for (auto* b : {&backend_, &ref_backend_}) {
      CpuBackendOptions options;
      options.fast = true;
      options.num_threads = 2;
      *b = std::make_unique<CpuBackend>(options);
    }
    model_ = *Model::Load(dir_, *backend_);
    ref_model_ = *Model::Load(dir_, *ref_backend_);
  }
  void TearDown() override {
    if (engine_) engine_->Shutdown();
  }

  void StartEngine(int64_t budget, int32_t num_blocks = 128, bool paused = false, int32_t block_size = 16) {
    cache_ = *KvCache::Create(*backend_, model_->MakeKvSpec(block_size, num_blocks));
    ColocatedEngineOptions options;
    options.step_token_budget = budget;
    options.start_paused = paused;
    options.on_step = [this](const ColocatedStepInfo& info) {
      std::lock_guard<std::mutex> lock(timeline_mu_);
      timeline_.push_back(info);
    };
    auto engine = ColocatedEngine::Create(*model_, *cache_, options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
  }

  std::vector<int32_t> Reference(const std::vector<int32_t>& prompt, int32_t max_tokens, SamplingParams sampling = {}) {
    auto cache = *KvCache::Create(*ref_backend_, ref_model_->MakeKvSpec(16, 64));
    Generator generator(*ref_model_, *cache);
    GenerationRequest r;
    r.prompt = prompt;
    r.max_tokens = max_tokens;
    r.sampling = sampling;
    return (*generator.Generate({r}))[0].tokens;
  }

  std::future<Outcome> Submit(const std::string& id, const std::vector<int32_t>& prompt, int32_t max_tokens,
                              SamplingParams sampling = {}, std::shared_ptr<std::atomic<bool>> cancel = nullptr,
                              int cancel_after = -1, absl::Status* refused = nullptr) {
    auto promise = std::make_shared<std::promise<Outcome>>();
    auto outcome = std::make_shared<Outcome>();
    ColocatedJob job;
    job.request_id = id;
    job.prompt = prompt;
    job.max_tokens = max_tokens;
    job.sampling = sampling;
    if (cancel) job.cancelled = cancel;
    job.on_tokens = [outcome, cancel, cancel_after](std::vector<int32_t> tokens, std::vector<float>) {
      outcome->tokens.insert(outcome->tokens.end(), tokens.begin(), tokens.end());
      if (cancel && static_cast<int>(outcome->tokens.size()) >= cancel_after) cancel->store(true);
    };
    job.on_done = [promise, outcome](absl::Status s, ColocatedSummary summary) {
      outcome->status = s;
      outcome->summary = summary;
      promise->set_value(*outcome);
    };
    absl::Status s = engine_->Submit(std::move(job));
    if (refused != nullptr) *refused = s;
    if (!s.ok()) {
      outcome->status = s;
      promise->set_value(*outcome);
    }
    return promise->get_future();
  }

  static std::vector<int32_t> Prompt(int n, int seed) {
    std::vector<int32_t> p;
    for (int i = 0; i < n; ++i) p.push_back((seed * 31 + i * 7) % 250 + 1);
    return p;
  }

  void ExpectAllBlocksFree() {
    // Finish() frees blocks before on_done; the engine thread may still be between the two.
    for (int i = 0; i < 100 && engine_->Load().blocks_free != engine_->Load().blocks_total; ++i) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    const ColocatedLoad load = engine_->Load();
    EXPECT_EQ(load.blocks_free, load.blocks_total);
  }

  std::string dir_;
  std::unique_ptr<CpuBackend> backend_, ref_backend_;
  std::unique_ptr<Model> model_, ref_model_;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<ColocatedEngine> engine_;
  std::mutex timeline_mu_;
  std::vector<ColocatedStepInfo> timeline_;
};

// Chunked (budget 8: every prompt here spans several steps) and unchunked (budget 2048) runs of the
// same concurrent requests give exactly one-process generation's greedy tokens.
TEST_F(ColocatedEngineTest, ChunkedAndUnchunkedMatchOneProcessGeneration) {
  const std::vector<std::pair<int, int>> shapes = {{5, 12}, {37, 9}, {1, 6}, {70, 14}, {16, 1}, {23, 20}};
  std::vector<std::vector<int32_t>> expected;
  for (size_t i = 0; i < shapes.size(); ++i) {
    expected.push_back(Reference(Prompt(shapes[i].first, i), shapes[i].second));
  }
  for (int64_t budget : {8, 2048}) {
    SCOPED_TRACE(budget);
    timeline_.clear();
    StartEngine(budget);
    std::vector<std::future<Outcome>> futures;
    for (size_t i = 0; i < shapes.size(); ++i) {
      futures.push_back(Submit("r" + std::to_string(i), Prompt(shapes[i].first, i), shapes[i].second));
    }
    for (size_t i = 0; i < futures.size(); ++i) {
      Outcome out = futures[i].get();
      ASSERT_TRUE(out.status.ok()) << out.status;
      EXPECT_EQ(out.tokens, expected[i]) << "request " << i;
      EXPECT_EQ(out.summary.finish_reason, "length");
      EXPECT_EQ(out.summary.generated, shapes[i].second);
    }
    ExpectAllBlocksFree();
    int64_t max_step_tokens = 0, chunked = 0;
    for (const ColocatedStepInfo& s : timeline_) {
      max_step_tokens = std::max(max_step_tokens, s.decode + s.prefill_tokens);
      chunked += s.prefill_seqs - s.first_tokens;  // chunks that did not end their prompt
    }
    EXPECT_LE(max_step_tokens, budget);
    if (budget == 8) {
      EXPECT_GT(chunked, 0) << "budget 8 must split prompts";
    } else {
      EXPECT_EQ(chunked, 0) << "budget 2048 must not split prompts";
    }
    engine_->Shutdown();
  }
}

TEST_F(ColocatedEngineTest, SeededSamplingMatchesOneProcessGeneration) {
  const SamplingParams sampling{.temperature = 0.9f, .top_k = 40, .top_p = 0.95f, .seed = 1234};
  const std::vector<int32_t> expected = Reference(Prompt(30, 3), 16, sampling);
  StartEngine(8);
  Outcome out = Submit("s", Prompt(30, 3), 16, sampling).get();
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(out.tokens, expected);
}

// A running decode gets a token in every step while a long prompt is prefilled in budget-sized chunks:
// the prompt never takes a step for itself.
TEST_F(ColocatedEngineTest, ALongPromptDoesNotStallRunningDecodes) {
  StartEngine(/*budget=*/16);
  // The long prompt is submitted from the runner's third token (on the engine thread, so before the
  // next step is planned): the runner is decoding for certain, however loaded the machine is.
  std::future<Outcome> long_future;
  std::atomic<int> decoded{0};
  ColocatedJob job;
  job.request_id = "runner";
  job.prompt = Prompt(4, 1);
  job.max_tokens = 60;
  job.on_tokens = [&](std::vector<int32_t> t, std::vector<float>) {
    if (decoded.fetch_add(static_cast<int>(t.size())) == 2) long_future = Submit("long", Prompt(150, 2), 2);
  };
  std::promise<absl::Status> runner_done;
  job.on_done = [&](absl::Status s, ColocatedSummary) { runner_done.set_value(s); };
  ASSERT_TRUE(engine_->Submit(std::move(job)).ok());
  EXPECT_TRUE(runner_done.get_future().get().ok());
  Outcome long_prompt = long_future.get();
  ASSERT_TRUE(long_prompt.status.ok());
  EXPECT_EQ(long_prompt.tokens, Reference(Prompt(150, 2), 2));

  std::lock_guard<std::mutex> lock(timeline_mu_);
  int long_steps = 0;
  for (const ColocatedStepInfo& s : timeline_) {
    const bool has_long = std::find(s.prefill_ids.begin(), s.prefill_ids.end(), "long") != s.prefill_ids.end();
    if (!has_long) continue;
    ++long_steps;
    EXPECT_EQ(s.decode_ids, std::vector<std::string>{"runner"}) << "step " << s.index << " left the runner out";
    EXPECT_LE(s.decode + s.prefill_tokens, 16);
  }
  // 150 prompt tokens at 15 per step (the runner takes one token of each step's 16).
  EXPECT_EQ(long_steps, 10);
  EXPECT_EQ(long_prompt.summary.prefill_steps, 10);
}

TEST_F(ColocatedEngineTest, CancelFreesBlocksWhetherPrefillingDecodingOrQueued) {
  StartEngine(8);
  auto c1 = std::make_shared<std::atomic<bool>>(false);
  auto c2 = std::make_shared<std::atomic<bool>>(false);
  auto decoding = Submit("decoding", Prompt(10, 1), 200, {}, c1, /*cancel_after=*/5);
  auto prefilling = Submit("prefilling", Prompt(120, 2), 10, {}, c2);
  c2->store(true);  // most likely still queued or in its first chunks
  EXPECT_EQ(decoding.get().status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(prefilling.get().status.code(), absl::StatusCode::kCancelled);
  ExpectAllBlocksFree();
}

TEST_F(ColocatedEngineTest, MoreRequestsThanMemoryWaitAndAllComplete) {
  // 12 blocks of 16 tokens: each request reserves 3, so at most 4 run at once.
  StartEngine(32, /*num_blocks=*/12);
  std::vector<std::future<Outcome>> futures;
  for (int i = 0; i < 10; ++i) futures.push_back(Submit("m" + std::to_string(i), Prompt(20, i), 20));
  for (int i = 0; i < 10; ++i) {
    Outcome out = futures[i].get();
    ASSERT_TRUE(out.status.ok()) << out.status;
    EXPECT_EQ(out.tokens, Reference(Prompt(20, i), 20)) << i;
  }
  ExpectAllBlocksFree();
}

TEST_F(ColocatedEngineTest, BadRequestsNameTheField) {
  StartEngine(64, 8);
  absl::Status s;
  Submit("e", {}, 4, {}, nullptr, -1, &s);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("prompt"), std::string::npos) << s;
  Submit("e", Prompt(3, 1), 0, {}, nullptr, -1, &s);
  EXPECT_NE(s.message().find("max_tokens"), std::string::npos) << s;
  Submit("e", {1, 99999}, 4, {}, nullptr, -1, &s);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  Submit("e", Prompt(3, 1), 4, {.temperature = -1}, nullptr, -1, &s);
  EXPECT_NE(s.message().find("temperature"), std::string::npos) << s;
  // 8 blocks of 16 tokens hold 128; this needs 9 blocks and can never run here.
  Submit("e", Prompt(100, 1), 40, {}, nullptr, -1, &s);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  ColocatedJob job;
  job.prompt = Prompt(3, 1);
  job.rng_draws_used = 4;
  job.on_tokens = [](auto, auto) {};
  job.on_done = [](auto, auto) {};
  s = engine_->Submit(std::move(job));
  EXPECT_NE(s.message().find("rng_draws_used"), std::string::npos) << s;
  ExpectAllBlocksFree();
}

TEST_F(ColocatedEngineTest, ShutdownEndsEveryJobUnavailableAndFreesBlocks) {
  StartEngine(8, 128, /*paused=*/true);
  auto queued = Submit("q", Prompt(10, 1), 10);
  engine_->Shutdown();
  EXPECT_EQ(queued.get().status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(cache_->allocator().num_free(), cache_->allocator().num_total());
  absl::Status s;
  Submit("late", Prompt(3, 1), 2, {}, nullptr, -1, &s);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
}

TEST_F(ColocatedEngineTest, InvalidOptionsNameTheOption) {
  cache_ = *KvCache::Create(*backend_, model_->MakeKvSpec(16, 8));
  auto engine = ColocatedEngine::Create(*model_, *cache_, {.step_token_budget = 0});
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(engine.status().message().find("step_token_budget"), std::string::npos);
}

}  // namespace
}  // namespace tandem
