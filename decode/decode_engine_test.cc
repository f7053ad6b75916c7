// Prefill and decode engines in one process, KV moving through the in-process transport: the
// disaggregated path must produce exactly what one-process generation produces, and every KV block must
// come back on both sides, also after cancellations, expiries and refusals.
#include "decode/decode_engine.h"

#include <chrono>
#include <future>
#include <thread>

#include "backend/cpu/cpu_backend.h"
#include "common/kv_source_failure.h"
#include "gtest/gtest.h"
#include "kvtransfer/inproc_transport.h"
#include "model/generator.h"
#include "model/random_model.h"
#include "prefill/prefill_engine.h"

namespace tandem {
namespace {

struct Outcome {
  std::vector<int32_t> tokens;  // first token + decoded ones
  absl::Status status;
  DecodeSummary summary;
};

class DisaggregatedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/disagg_model";
    auto config = PresetConfig("tiny");
    ASSERT_TRUE(config.ok());
    ASSERT_TRUE(WriteRandomModel(*config, DType::kF32, 5, dir_).ok());
    // A Backend and a Model serve one thread at a time: each engine (and the offline check) gets its own,
    // as each worker process has its own.
    std::unique_ptr<CpuBackend>* backends[] = {&backend_, &prefill_backend_, &decode_backend_};
    std::unique_ptr<Model>* models[] = {&model_, &prefill_model_, &decode_model_};
    for (int i = 0; i < 3; ++i) {
      *backends[i] = std::make_unique<CpuBackend>(CpuBackendOptions{.fast = true, .num_threads = 2});
      auto model = Model::Load(dir_, **backends[i]);
      ASSERT_TRUE(model.ok());
      *models[i] = std::move(*model);
    }
    prefill_cache_ = *KvCache::Create(*prefill_backend_, model_->MakeKvSpec(16, 64));
    // Another block size than the prefill side's, on purpose.
    decode_cache_ = *KvCache::Create(*decode_backend_, model_->MakeKvSpec(8, 96));
    layout_ = {"fingerprint", 2, 2, 16, DType::kF32};
    prefill_ = std::make_unique<PrefillEngine>(*prefill_model_, *prefill_cache_, layout_,
                                               PrefillEngineOptions{.default_lease = absl::Seconds(10)});
    source_name_ = "prefill-" + std::to_string(reinterpret_cast<uintptr_t>(this));
    ASSERT_TRUE(InProcessKvRegistry::Global().Register(source_name_, prefill_.get()).ok());
    decode_ = std::make_unique<DecodeEngine>(*decode_model_, *decode_cache_, layout_, transport_,
                                             [this](const KvHandle& h) { released_ += prefill_->Release(h.lease_id); },
                                             DecodeEngineOptions{});
  }
  void TearDown() override {
    decode_->Shutdown();
    prefill_->Shutdown();
    InProcessKvRegistry::Global().Unregister(source_name_).IgnoreError();
  }

  absl::StatusOr<PrefillResult> Prefill(const std::vector<int32_t>& prompt, SamplingParams sampling = {},
                                        absl::Duration lease = absl::ZeroDuration()) {
    std::promise<absl::StatusOr<PrefillResult>> done;
    PrefillJob job;
    job.request_id = "p";
    job.prompt = prompt;
    job.sampling = sampling;
    job.lease = lease;
    job.done = [&](absl::StatusOr<PrefillResult> r) { done.set_value(std::move(r)); };
    absl::Status s = prefill_->Submit(std::move(job));
    if (!s.ok()) return s;
    return done.get_future().get();
  }

  // Prefill then decode; `cancel` (if set) is raised after `cancel_after` decoded tokens.
  std::future<Outcome> Start(const std::vector<int32_t>& prompt, int32_t max_tokens, SamplingParams sampling = {},
                             std::shared_ptr<std::atomic<bool>> cancel = nullptr, int cancel_after = -1) {
    auto first = Prefill(prompt, sampling);
    auto promise = std::make_shared<std::promise<Outcome>>();
    auto outcome = std::make_shared<Outcome>();
    if (!first.ok()) {
      outcome->status = first.status();
      promise->set_value(*outcome);
      return promise->get_future();
    }
    outcome->tokens.push_back(first->first_token);
    DecodeJob job;
    job.request_id = "d";
    job.prompt = prompt;
    job.first_token = first->first_token;
    job.kv = {first->lease_id, source_name_, first->num_tokens, layout_, first->lease_ms, "inproc"};
    job.sampling = sampling;
    job.max_tokens = max_tokens;
    if (cancel) job.cancelled = cancel;
    job.on_tokens = [outcome, cancel, cancel_after](std::vector<int32_t> t, std::vector<float>) {
      outcome->tokens.insert(outcome->tokens.end(), t.begin(), t.end());
      if (cancel && static_cast<int>(outcome->tokens.size()) - 1 >= cancel_after) cancel->store(true);
    };
    job.on_done = [outcome, promise](absl::Status s, DecodeSummary summary) {
      outcome->status = s;
      outcome->summary = summary;
      promise->set_value(*outcome);
    };
    absl::Status s = decode_->Submit(std::move(job));
    if (!s.ok()) {
      outcome->status = s;
      promise->set_value(*outcome);
    }
    return promise->get_future();
  }

  std::vector<int32_t> RunOffline(const std::vector<int32_t>& prompt, int32_t max_tokens, SamplingParams sampling = {}) {
    auto cache = *KvCache::Create(*backend_, model_->MakeKvSpec(16, 64));
    Generator generator(*model_, *cache);
    GenerationRequest r;
    r.prompt = prompt;
    r.max_tokens = max_tokens;
    r.sampling = sampling;
    return (*generator.Generate({r}))[0].tokens;
  }

  void ExpectAllBlocksFree() {
    // Frees happen on engine threads right after the callbacks; allow them a moment.
    for (int i = 0; i < 100 && (prefill_cache_->allocator().num_free() != 64 ||
                                decode_cache_->allocator().num_free() != 96); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(prefill_cache_->allocator().num_free(), 64);
    EXPECT_EQ(decode_cache_->allocator().num_free(), 96);
  }

  static std::vector<int32_t> Prompt(int len, int salt) {
    std::vector<int32_t> p;
    for (int i = 0; i < len; ++i) p.push_back((i * 29 + salt * 53 + 3) % 500);
    return p;
  }

  std::string dir_, source_name_;
  std::unique_ptr<CpuBackend> backend_, prefill_backend_, decode_backend_;
  std::unique_ptr<Model> model_, prefill_model_, decode_model_;
  std::unique_ptr<KvCache> prefill_cache_, decode_cache_;
  KvLayout layout_;
  InProcessKvTransport transport_;
  std::unique_ptr<PrefillEngine> prefill_;
  std::unique_ptr<DecodeEngine> decode_;
  std::atomic<int> released_{0};
};

TEST_F(DisaggregatedTest, ConcurrentRequestsMatchOneProcessGeneration) {
  std::vector<std::future<Outcome>> futures;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 8; ++i) {
    prompts.push_back(Prompt(1 + i * 9, i));
    futures.push_back(Start(prompts.back(), 6 + i));
  }
  for (int i = 0; i < 8; ++i) {
    Outcome o = futures[i].get();
    ASSERT_TRUE(o.status.ok()) << o.status;
    EXPECT_EQ(o.summary.finish_reason, "length");
    EXPECT_EQ(o.tokens, RunOffline(prompts[i], 6 + i)) << "request " << i;
  }
  EXPECT_EQ(released_.load(), 8);
  EXPECT_EQ(prefill_->Load().leases_held, 0);
  ExpectAllBlocksFree();
}

TEST_F(DisaggregatedTest, SeededSamplingContinuesTheSameRandomStream) {
  SamplingParams sampling{.temperature = 0.9f, .top_k = 50, .seed = 1234};
  const auto prompt = Prompt(12, 3);
  Outcome o = Start(prompt, 12, sampling).get();
  ASSERT_TRUE(o.status.ok());
  EXPECT_EQ(o.tokens, RunOffline(prompt, 12, sampling));
}

TEST_F(DisaggregatedTest, CancelMidStreamFreesBlocksOnBothSides) {
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  Outcome o = Start(Prompt(30, 1), 200, {}, cancel, 3).get();
  EXPECT_EQ(o.status.code(), absl::StatusCode::kCancelled);
  EXPECT_LE(o.tokens.size(), 1u + 3 + 2);  // at most a couple of tokens after the cancel
  ExpectAllBlocksFree();
}

TEST_F(DisaggregatedTest, UnpulledLeaseExpiresAndFreesPrefillBlocks) {
  auto first = Prefill(Prompt(40, 2), {}, absl::Milliseconds(300));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(prefill_->Load().leases_held, 1);
  EXPECT_LT(prefill_cache_->allocator().num_free(), 64);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_EQ(prefill_->Load().leases_held, 0);
  EXPECT_EQ(prefill_cache_->allocator().num_free(), 64);
  EXPECT_FALSE(prefill_->Release(first->lease_id));
}

TEST_F(DisaggregatedTest, LayoutMismatchIsFailedPreconditionAndNothingLeaks) {
  auto first = Prefill(Prompt(5, 4));
  ASSERT_TRUE(first.ok());
  DecodeJob job;
  job.prompt = Prompt(5, 4);
  job.first_token = first->first_token;
  KvLayout other = layout_;
  other.model_fingerprint = "another-model";
  job.kv = {first->lease_id, source_name_, 5, other, first->lease_ms, "inproc"};
  job.max_tokens = 4;
  job.on_tokens = [](std::vector<int32_t>, std::vector<float>) {};
  job.on_done = [](absl::Status, DecodeSummary) {};
  absl::Status s = decode_->Submit(std::move(job));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("fingerprint"), std::string::npos) << s;
  EXPECT_TRUE(prefill_->Release(first->lease_id));
  ExpectAllBlocksFree();
}

TEST_F(DisaggregatedTest, LostLeaseFailsTheRequestWithoutGarbage) {
  auto first = Prefill(Prompt(20, 5));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(prefill_->Release(first->lease_id));  // gone before decode pulls
  DecodeJob job;
  job.prompt = Prompt(20, 5);
  job.first_token = first->first_token;
  job.kv = {first->lease_id, source_name_, 20, layout_, first->lease_ms, "inproc"};
  job.max_tokens = 8;
  std::promise<absl::Status> done;
  int tokens = 0;
  job.on_tokens = [&](std::vector<int32_t> t, std::vector<float>) { tokens += static_cast<int>(t.size()); };
  job.on_done = [&](absl::Status s, DecodeSummary) { done.set_value(s); };
  ASSERT_TRUE(decode_->Submit(std::move(job)).ok());
  absl::Status s = done.get_future().get();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_TRUE(IsKvSourceFailure(s)) << "the router must see the source's failure, not the decode worker's";
  EXPECT_EQ(tokens, 0);
  ExpectAllBlocksFree();
}

TEST_F(DisaggregatedTest, MoreRequestsThanMemoryWaitAndAllComplete) {
  // Each request reserves ceil((40 + 40) / 8) = 10 decode blocks; 96 blocks hold 9 at a time.
  std::vector<std::future<Outcome>> futures;
  for (int i = 0; i < 14; ++i) futures.push_back(Start(Prompt(40, i), 40));
  for (auto& f : futures) {
    Outcome o = f.get();
    ASSERT_TRUE(o.status.ok()) << o.status;
    EXPECT_EQ(o.tokens.size(), 40u);
  }
  ExpectAllBlocksFree();
}

TEST_F(DisaggregatedTest, BadDecodeRequestsNameTheField) {
  DecodeJob job;
  job.prompt = {1, 2};
  job.first_token = 100000;
  job.kv = {"x", source_name_, 2, layout_, 1000, "inproc"};
  job.max_tokens = 3;
  EXPECT_NE(decode_->Submit(job).message().find("first_token"), std::string::npos);
  job.first_token = 1;
  job.max_tokens = 0;
  EXPECT_NE(decode_->Submit(job).message().find("max_tokens"), std::string::npos);
  job.max_tokens = 3;
  job.kv.num_tokens = 7;
  EXPECT_NE(decode_->Submit(job).message().find("kv.num_tokens"), std::string::npos);
  PrefillJob p;
  p.prompt = {};
  p.done = [](absl::StatusOr<PrefillResult>) {};
  EXPECT_NE(prefill_->Submit(p).message().find("prompt is empty"), std::string::npos);
  ExpectAllBlocksFree();
}

}  // namespace
}  // namespace tandem
