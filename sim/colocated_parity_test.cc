// The simulator's chunked colocated instance and the colocated engine make the same decisions: fed the
// same requests (one first, the rest while its first step runs), with the same step budget, batch cap and
// KV pool, they run the same sequence of steps (decodes, prompt chunks, admissions by KV room), because
// both call batching::PlanColocatedStep on their own state. Only the step times differ (the simulator's
// come from a latency model), and step times do not enter the decisions when nothing arrives mid-run.
#include <mutex>
#include <tuple>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "colocated/colocated_engine.h"
#include "gtest/gtest.h"
#include "model/random_model.h"
#include "router/policy/round_robin_policy.h"
#include "sim/simulator.h"

namespace tandem {
namespace {

using Step = std::tuple<int64_t, int64_t, int64_t>;  // decodes, prompt tokens, prompt chunks

constexpr int64_t kBudget = 24;
constexpr int32_t kMaxBatch = 4;
constexpr int32_t kBlockSize = 16;
constexpr int32_t kBlocks = 10;
// (prompt, max_tokens): 10 blocks of 16 tokens hold 2-4 of these at once, so admission waits for room.
const std::vector<std::pair<int, int>> kRequests = {{30, 5}, {50, 3}, {10, 8}, {70, 2},
                                                    {5, 1},  {40, 6}, {20, 4}, {60, 3}};

std::vector<Step> EngineSteps() {
  const std::string dir = ::testing::TempDir() + "/parity_model";
  EXPECT_TRUE(WriteRandomModel(*PresetConfig("tiny"), DType::kF32, 3, dir).ok());
  CpuBackendOptions backend_options;
  backend_options.num_threads = 1;
  CpuBackend backend(backend_options);
  std::unique_ptr<Model> model = *Model::Load(dir, backend);
  std::unique_ptr<KvCache> cache = *KvCache::Create(backend, model->MakeKvSpec(kBlockSize, kBlocks));

  std::mutex mu;
  std::vector<Step> steps;
  std::atomic<int> done{0};
  ColocatedEngine* engine_ptr = nullptr;
  auto job = [&](size_t i) {
    ColocatedJob j;
    j.request_id = std::to_string(i);
    for (int t = 0; t < kRequests[i].first; ++t) j.prompt.push_back(1 + (t * 7 + static_cast<int>(i)) % 200);
    j.max_tokens = kRequests[i].second;
    j.on_tokens = [](auto, auto) {};
    j.on_done = [&done](absl::Status s, ColocatedSummary) {
      EXPECT_TRUE(s.ok()) << s;
      ++done;
    };
    return j;
  };
  ColocatedEngineOptions options;
  options.step_token_budget = kBudget;
  options.max_batch = kMaxBatch;
  options.on_step = [&](const ColocatedStepInfo& info) {
    {
      std::lock_guard<std::mutex> lock(mu);
      steps.push_back({info.decode, info.prefill_tokens, info.prefill_seqs});
    }
    // The rest arrive while the first step runs (in the simulator: at the same instant, queued behind it).
    if (info.index == 1) {
      for (size_t i = 1; i < kRequests.size(); ++i) EXPECT_TRUE(engine_ptr->Submit(job(i)).ok());
    }
  };
  std::unique_ptr<ColocatedEngine> engine = *ColocatedEngine::Create(*model, *cache, options);
  engine_ptr = engine.get();
  EXPECT_TRUE(engine->Submit(job(0)).ok());
  while (done.load() < static_cast<int>(kRequests.size())) absl::SleepFor(absl::Milliseconds(5));
  engine->Shutdown();
  return steps;
}

std::vector<Step> SimulatorSteps() {
  policy::LatencyModelParams p;
  p.prefill = {1, 0.01, 0};
  p.decode_small = p.decode_large = {1, 0.001, 0.01};
  sim::ClusterConfig cluster;
  cluster.colocated.push_back({.latency = *policy::LatencyModel::Create(p),
                               .max_batch_size = kMaxBatch,
                               .kv_capacity_tokens = kBlocks * kBlockSize,
                               .block_size = kBlockSize,
                               .step_token_budget = kBudget});
  sim::Workload workload;
  for (size_t i = 0; i < kRequests.size(); ++i) {
    workload.requests.push_back(
        {.id = static_cast<int64_t>(i), .arrival_s = 0.0, .prompt_len = kRequests[i].first, .output_len = kRequests[i].second});
  }
  std::vector<Step> steps;
  sim::SimOptions options;
  options.on_colocated_step = [&](int, const batching::ColocatedStepPlan& plan) {
    int64_t chunks = 0;
    for (int64_t c : plan.chunks) chunks += c > 0 ? 1 : 0;
    steps.push_back({plan.decode, plan.prefill_tokens(), chunks});
  };
  policy::RoundRobinPolicy policy;
  sim::Simulator simulator(cluster, &policy, options);
  absl::StatusOr<std::vector<sim::RequestRecord>> records = simulator.Run(workload);
  EXPECT_TRUE(records.ok()) << records.status();
  for (const sim::RequestRecord& r : *records) EXPECT_TRUE(r.finished) << r.id;
  return steps;
}

std::string Describe(const std::vector<Step>& steps) {
  std::string out;
  for (const auto& [d, t, c] : steps) out += "(" + std::to_string(d) + "," + std::to_string(t) + "," + std::to_string(c) + ")";
  return out;
}

TEST(ColocatedParityTest, EngineAndSimulatorRunTheSameSteps) {
  const std::vector<Step> engine = EngineSteps();
  const std::vector<Step> simulated = SimulatorSteps();
  EXPECT_EQ(engine, simulated) << "engine    " << Describe(engine) << "\nsimulator " << Describe(simulated);
  // The workload exercises chunking and waiting for KV room: some step splits a prompt.
  int64_t total = 0;
  for (const auto& [d, t, c] : engine) total += t;
  int64_t prompts = 0;
  for (const auto& r : kRequests) prompts += r.first;
  EXPECT_EQ(total, prompts);
  EXPECT_GT(engine.size(), 10u);
}

}  // namespace
}  // namespace tandem
