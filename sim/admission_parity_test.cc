// The simulator admits work as the engines it models do, because both call the same policies in
// batching/admission.h on their own state (issue 13): fed the same requests (one first, the rest while its
// step runs), the prefill engine and a simulated prefill instance form the same batches, and the offline
// generator and a simulated unchunked (vLLM v0) colocated instance run the same steps, KV-limited
// admission included. Only step times differ, and they do not enter the decisions when nothing arrives
// mid-run. (The chunked colocated engine has its own parity test, colocated_parity_test.)
#include <atomic>
#include <mutex>
#include <utility>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "gtest/gtest.h"
#include "model/generator.h"
#include "model/random_model.h"
#include "prefill/prefill_engine.h"
#include "router/policy/round_robin_policy.h"
#include "sim/simulator.h"

namespace tandem {
namespace {

using Step = std::tuple<bool, int64_t, int64_t>;  // prefill?, sequences, tokens

std::string Describe(const std::vector<Step>& steps) {
  std::string out;
  for (const auto& [prefill, n, t] : steps) {
    out += (prefill ? "P(" : "D(") + std::to_string(n) + "," + std::to_string(t) + ")";
  }
  return out;
}

policy::LatencyModel TestLatency() {
  policy::LatencyModelParams p;
  p.prefill = {1, 0.01, 0};
  p.decode_small = p.decode_large = {1, 0.001, 0.01};
  return *policy::LatencyModel::Create(p);
}

struct Loaded {
  std::unique_ptr<CpuBackend> backend;
  std::unique_ptr<Model> model;
};

Loaded LoadTinyModel(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  EXPECT_TRUE(WriteRandomModel(*PresetConfig("tiny"), DType::kF32, 3, dir).ok());
  Loaded loaded;
  loaded.backend = std::make_unique<CpuBackend>(CpuBackendOptions{.num_threads = 1});
  loaded.model = *Model::Load(dir, *loaded.backend);
  return loaded;
}

std::vector<int32_t> Prompt(int64_t len, size_t salt) {
  std::vector<int32_t> prompt;
  for (int64_t t = 0; t < len; ++t) prompt.push_back(1 + static_cast<int32_t>((t * 7 + salt) % 200));
  return prompt;
}

// ---- Prefill worker: batches under a prompt-count cap and a token budget ----

constexpr int64_t kPrefillBatchTokens = 64;
constexpr int32_t kPrefillMaxBatch = 3;
// The first is longer than the budget (it runs alone); the rest hit the count cap and the budget.
const std::vector<int64_t> kPromptLens = {80, 20, 30, 10, 50, 14, 64, 12, 40, 33};

std::vector<Step> PrefillEngineBatches() {
  Loaded m = LoadTinyModel("parity_prefill_model");
  std::unique_ptr<KvCache> cache = *KvCache::Create(*m.backend, m.model->MakeKvSpec(16, 128));
  std::mutex mu;
  std::vector<Step> batches;
  std::atomic<int> done{0};
  PrefillEngine* engine_ptr = nullptr;
  auto job = [&](size_t i) {
    PrefillJob j;
    j.request_id = std::to_string(i);
    j.prompt = Prompt(kPromptLens[i], i);
    j.done = [&done](absl::StatusOr<PrefillResult> r) {
      EXPECT_TRUE(r.ok()) << r.status();
      ++done;
    };
    return j;
  };
  PrefillEngineOptions options;
  options.max_batch_tokens = kPrefillBatchTokens;
  options.max_batch = kPrefillMaxBatch;
  options.on_step = [&](absl::Duration, int32_t requests, int64_t tokens) {
    bool first;
    {
      std::lock_guard<std::mutex> lock(mu);
      batches.push_back({true, requests, tokens});
      first = batches.size() == 1;
    }
    // The rest arrive while the first batch runs (on the engine thread, before it plans the next batch).
    if (first) {
      for (size_t i = 1; i < kPromptLens.size(); ++i) EXPECT_TRUE(engine_ptr->Submit(job(i)).ok());
    }
  };
  const KvLayout layout{"fingerprint", 2, 2, 16, DType::kF32};
  PrefillEngine engine(*m.model, *cache, layout, options);
  engine_ptr = &engine;
  EXPECT_TRUE(engine.Submit(job(0)).ok());
  while (done.load() < static_cast<int>(kPromptLens.size())) absl::SleepFor(absl::Milliseconds(5));
  engine.Shutdown();
  return batches;
}

std::vector<Step> SimulatedPrefillBatches() {
  sim::ClusterConfig cluster;
  cluster.prefill.push_back(
      {.latency = TestLatency(), .max_batch_tokens = kPrefillBatchTokens, .max_batch_size = kPrefillMaxBatch});
  cluster.decode.push_back({.latency = TestLatency()});
  sim::Workload workload;
  for (size_t i = 0; i < kPromptLens.size(); ++i) {
    workload.requests.push_back(
        {.id = static_cast<int64_t>(i), .arrival_s = 0.0, .prompt_len = kPromptLens[i], .output_len = 1});
  }
  std::vector<Step> batches;
  sim::SimOptions options;
  options.on_step = [&](const sim::StepTrace& step) {
    if (step.kind == sim::StepTrace::kPrefill) batches.push_back({true, step.sequences, step.tokens});
  };
  policy::RoundRobinPolicy policy;
  sim::Simulator simulator(cluster, &policy, options);
  absl::StatusOr<std::vector<sim::RequestRecord>> records = simulator.Run(workload);
  EXPECT_TRUE(records.ok()) << records.status();
  for (const sim::RequestRecord& r : *records) EXPECT_TRUE(r.finished) << r.id;
  return batches;
}

TEST(AdmissionParityTest, PrefillEngineAndSimulatorFormTheSameBatches) {
  const std::vector<Step> engine = PrefillEngineBatches();
  const std::vector<Step> simulated = SimulatedPrefillBatches();
  EXPECT_EQ(engine, simulated) << "engine    " << Describe(engine) << "\nsimulator " << Describe(simulated);
  // The workload exercises every limit: a prompt alone over the budget, a batch cut by the count cap and
  // one that fills the budget exactly (one token less and it would split).
  const std::vector<Step> expected = {{true, 1, 80}, {true, 3, 60}, {true, 2, 64}, {true, 1, 64},
                                      {true, 2, 52}, {true, 1, 33}};
  EXPECT_EQ(engine, expected) << Describe(engine);
}

// ---- One engine prefilling and decoding by turns: the generator and the v0 colocated instance ----

constexpr int64_t kPrefillTokens = 64;
constexpr int32_t kMaxBatch = 4;
constexpr int32_t kBlockSize = 16;
constexpr int32_t kBlocks = 12;
// (prompt, max_tokens). 12 blocks of 16 hold the first (6 blocks) and about two more: admission waits
// for room as well as for batch slots and the prefill budget.
const std::vector<std::pair<int64_t, int64_t>> kRequests = {{80, 4}, {20, 5}, {30, 3}, {10, 8}, {50, 2},
                                                            {5, 1},  {40, 6}, {12, 4}, {33, 2}};

std::vector<Step> GeneratorSteps() {
  Loaded m = LoadTinyModel("parity_generator_model");
  std::unique_ptr<KvCache> cache = *KvCache::Create(*m.backend, m.model->MakeKvSpec(kBlockSize, kBlocks));
  std::vector<Step> steps;
  GeneratorOptions options;
  options.max_prefill_tokens = kPrefillTokens;
  options.max_batch = kMaxBatch;
  options.on_step = [&](bool prefill, int64_t sequences, int64_t tokens) {
    steps.push_back({prefill, sequences, tokens});
  };
  std::vector<GenerationRequest> requests;
  for (size_t i = 0; i < kRequests.size(); ++i) {
    GenerationRequest r;
    r.prompt = Prompt(kRequests[i].first, i);
    r.max_tokens = static_cast<int32_t>(kRequests[i].second);
    requests.push_back(std::move(r));
  }
  Generator generator(*m.model, *cache, options);
  absl::StatusOr<std::vector<GenerationOutput>> outputs = generator.Generate(requests);
  EXPECT_TRUE(outputs.ok()) << outputs.status();
  for (size_t i = 0; outputs.ok() && i < outputs->size(); ++i) {
    EXPECT_EQ(static_cast<int64_t>((*outputs)[i].tokens.size()), kRequests[i].second) << i;  // no early stop
  }
  EXPECT_EQ(cache->allocator().num_free(), kBlocks);
  return steps;
}

std::vector<Step> SimulatedColocatedSteps() {
  sim::ClusterConfig cluster;
  cluster.colocated.push_back({.latency = TestLatency(),
                               .max_batch_tokens = kPrefillTokens,
                               .max_batch_size = kMaxBatch,
                               .kv_capacity_tokens = kBlocks * kBlockSize,
                               .block_size = kBlockSize});
  sim::Workload workload;
  for (size_t i = 0; i < kRequests.size(); ++i) {
    workload.requests.push_back({.id = static_cast<int64_t>(i),
                                 .arrival_s = 0.0,
                                 .prompt_len = kRequests[i].first,
                                 .output_len = kRequests[i].second});
  }
  std::vector<Step> steps;
  sim::SimOptions options;
  options.on_step = [&](const sim::StepTrace& step) {
    steps.push_back({step.kind == sim::StepTrace::kColocatedPrefill, step.sequences, step.tokens});
  };
  policy::RoundRobinPolicy policy;
  sim::Simulator simulator(cluster, &policy, options);
  absl::StatusOr<std::vector<sim::RequestRecord>> records = simulator.Run(workload);
  EXPECT_TRUE(records.ok()) << records.status();
  for (const sim::RequestRecord& r : *records) EXPECT_TRUE(r.finished) << r.id;
  return steps;
}

TEST(AdmissionParityTest, GeneratorAndSimulatedColocatedInstanceRunTheSameSteps) {
  const std::vector<Step> engine = GeneratorSteps();
  const std::vector<Step> simulated = SimulatedColocatedSteps();
  EXPECT_EQ(engine, simulated) << "generator " << Describe(engine) << "\nsimulator " << Describe(simulated);
  // The first prompt runs alone (over the budget); the next step admits two, not three: the third would
  // fit the budget and the batch but not the KV pool.
  ASSERT_GE(engine.size(), 2u);
  EXPECT_EQ(engine[0], Step(true, 1, 80));
  EXPECT_EQ(engine[1], Step(true, 2, 50));
}

}  // namespace
}  // namespace tandem
