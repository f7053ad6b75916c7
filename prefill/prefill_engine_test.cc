#include "prefill/prefill_engine.h"

#include <future>
#include <set>

#include "backend/cpu/cpu_backend.h"
#include "gtest/gtest.h"
#include "model/generator.h"
#include "model/random_model.h"

namespace tandem {
namespace {

class PrefillEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = ::testing::TempDir() + "/prefill_engine_model";
    ASSERT_TRUE(WriteRandomModel(*PresetConfig("tiny"), DType::kF32, 9, dir).ok());
    backend_ = std::make_unique<CpuBackend>(CpuBackendOptions{.fast = true, .num_threads = 2});
    model_ = std::move(*Model::Load(dir, *backend_));
    cache_ = *KvCache::Create(*backend_, model_->MakeKvSpec(16, 20));
    engine_ = std::make_unique<PrefillEngine>(*model_, *cache_, KvLayout{"f", 2, 2, 16, DType::kF32},
                                              PrefillEngineOptions{.max_batch_tokens = 64});
  }

  std::future<absl::StatusOr<PrefillResult>> Submit(std::vector<int32_t> prompt,
                                                   std::shared_ptr<std::atomic<bool>> cancelled = nullptr) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<PrefillResult>>>();
    PrefillJob job;
    job.request_id = "t";
    job.prompt = std::move(prompt);
    if (cancelled) job.cancelled = cancelled;
    job.done = [promise](absl::StatusOr<PrefillResult> r) { promise->set_value(std::move(r)); };
    absl::Status s = engine_->Submit(std::move(job));
    if (!s.ok()) promise->set_value(s);
    return promise->get_future();
  }

  std::unique_ptr<CpuBackend> backend_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<PrefillEngine> engine_;
};

TEST_F(PrefillEngineTest, FirstTokenIsTheGreedyTokenAndKvIsReadable) {
  std::vector<int32_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3};
  auto result = Submit(prompt).get();
  ASSERT_TRUE(result.ok()) << result.status();
  auto offline_cache = *KvCache::Create(*backend_, model_->MakeKvSpec(16, 4));
  Generator generator(*model_, *offline_cache);
  GenerationRequest r;
  r.prompt = prompt;
  r.max_tokens = 1;
  EXPECT_EQ(result->first_token, (*generator.Generate({r}))[0].tokens[0]);
  EXPECT_EQ(result->num_tokens, 18);

  auto tokens = engine_->LeaseTokens(result->lease_id);
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ(*tokens, 18);
  std::vector<float> k(18 * 2 * 16), v(18 * 2 * 16);
  ASSERT_TRUE(engine_->ReadTokens(result->lease_id, 1, 0, 18, k.data(), v.data()).ok());
  EXPECT_NE(k[0], 0.0f);
  EXPECT_EQ(engine_->ReadTokens(result->lease_id, 1, 10, 9, k.data(), v.data()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(engine_->Release(result->lease_id));
  EXPECT_EQ(engine_->LeaseTokens(result->lease_id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cache_->allocator().num_free(), 20);
}

TEST_F(PrefillEngineTest, PromptsWaitForLeasedBlocksAndCancelledJobsFreeTheirs) {
  // 20 blocks of 16 tokens: two 150-token prompts (10 blocks each) fill the pool; the third waits.
  auto a = Submit(std::vector<int32_t>(150, 7)).get();
  auto b = Submit(std::vector<int32_t>(150, 8)).get();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(cache_->allocator().num_free(), 0);
  auto c = Submit(std::vector<int32_t>(100, 9));
  EXPECT_EQ(c.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  EXPECT_EQ(engine_->Load().queued_requests, 1);
  ASSERT_TRUE(engine_->Release(a->lease_id));
  auto c_result = c.get();
  ASSERT_TRUE(c_result.ok());
  EXPECT_TRUE(engine_->Release(b->lease_id));
  EXPECT_TRUE(engine_->Release(c_result->lease_id));

  auto cancelled = std::make_shared<std::atomic<bool>>(true);
  auto d = Submit({1, 2, 3}, cancelled).get();
  EXPECT_EQ(d.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(cache_->allocator().num_free(), 20);
  EXPECT_EQ(engine_->Load().leases_held, 0);
}

TEST_F(PrefillEngineTest, RefusesWhatCanNeverRun) {
  EXPECT_EQ(Submit(std::vector<int32_t>(400, 1)).get().status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Submit({1, 600}).get().status().code(), absl::StatusCode::kInvalidArgument);
  engine_->Shutdown();
  EXPECT_EQ(Submit({1}).get().status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace tandem

namespace tandem {
namespace {

// A lease id is a capability: it was "lease-<counter>-<request id>", and guessed ids released other
// requests' KV (issue 11, item 1). Now 128 random bits, never repeated, never derived from the request.
TEST_F(PrefillEngineTest, LeaseIdsAreUnguessable) {
  std::set<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    auto result = Submit({1, 2, 3}).get();
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->lease_id.size(), std::string("lease-").size() + 32) << result->lease_id;
    EXPECT_EQ(result->lease_id.find("-t"), std::string::npos) << "the request id leaks into " << result->lease_id;
    EXPECT_TRUE(ids.insert(result->lease_id).second);
    EXPECT_TRUE(engine_->Release(result->lease_id));
  }
  EXPECT_FALSE(engine_->Release("lease-1-t"));
}

// An unbounded lease_ms let four calls pin the whole pool (issue 11, item 2).
TEST_F(PrefillEngineTest, LeasesLongerThanTheCapAreRefused) {
  PrefillJob job;
  job.request_id = "t";
  job.prompt = {1, 2, 3};
  job.lease = absl::Milliseconds(int64_t{1} << 62);
  job.done = [](absl::StatusOr<PrefillResult>) {};
  const absl::Status s = engine_->Submit(std::move(job));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("lease_ms"), std::string::npos) << s;
  PrefillJob fine;
  fine.prompt = {1, 2, 3};
  fine.lease = absl::Minutes(1);
  fine.done = [](absl::StatusOr<PrefillResult>) {};
  EXPECT_TRUE(engine_->Submit(std::move(fine)).ok());
}

}  // namespace
}  // namespace tandem
