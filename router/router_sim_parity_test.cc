// The simulator and the router make the same placement decisions on the same snapshots.
//
// Both call the same policy objects (router/policy); this test proves the claim end to end. The
// simulator runs a small disaggregated cluster (2 prefill + 3 decode instances of unequal speed and
// KV capacity) over a ShareGPT-shaped Poisson workload that queues, with a recording decorator
// around each policy. Then the router's own WorkerRegistry and RouterState replay every recorded
// step: fake workers answer GetLoad with reports the registry turns back into the recorded snapshot
// (checked field by field), and RouterState::Place must return the recorded decision.
//
// How a snapshot crosses the wire (the inverse of WorkerRegistry::Snapshot):
//   prefill  queued_requests         <- LoadReport.queued_requests
//            queued_prompt_tokens    <- queued_tokens
//            running_tokens          <- running_context_tokens
//            running_requests        <- running_requests
//            recent_step_ms          <- recent_step_ms
//   decode   running_batch_size      <- running_requests
//            total_context_tokens    <- running_context_tokens
//            free_kv_blocks          <- kv_blocks_free (int32)
//            total_kv_blocks         <- kv_blocks_total (int32)
//            block_size              <- block_size
//            queued_requests         <- queued_requests
//            recent_step_ms          <- recent_step_ms
//   both     healthy                 <- the registry's health checks (every fake worker serves)
// What does not cross it, and how this test treats it (SnapshotDiff):
//   - id: the router names a worker by its address, the simulator "prefill-0"; LoadReport.worker_id
//     is not read. Compared through the index -> address map; goodput's rejection reasons name
//     workers, so recorded reasons are compared with the ids mapped the same way.
//   - predicted_free_ms: the router derives recent_step_ms * queued_requests, the simulator its
//     remaining busy time plus the queue's predicted time. No policy reads it: not compared.
//   - recent_batch_* (online correction): the router keeps the batch of the last report with
//     running_requests > 0, which no report can reset; the simulator never sets them. Policies read
//     them only when recent_step_ms > 0, so they are compared only then.
//   - min_running_tpot_slo_ms: no LoadReport field (the router leaves it 0). Compared: a simulator
//     that starts filling it breaks parity here, as it would in production.
//   - unlimited KV: a decode instance with kv_capacity_tokens 0 reports 2^40 blocks, which the int32
//     kv_blocks_* fields cannot carry (DecodeReport says so); every instance here has a capacity.
//
// SLOs: the simulator puts SimOptions' TTFT and TPOT SLOs (and best_effort) on every placement
// request, as a client's request to the router carries them; the replay sends the recorded request.
// Goodput runs twice: strict (its refusals are checked, reasons included) and best-effort.
//
// Goodput's latency models, two ways:
//   - one model for every worker (`--latency-model`): both sides get exactly that, while the
//     simulator's instances run their own, different models (wrong for some of them, as it can be in
//     production);
//   - one model per role (the *_per_role cases): the simulator's policy comes from MakeSimPolicy, as in
//     `tandem sim` (each instance's own model, keyed by the simulator's ids), the router's from
//     --prefill-latency-model / --decode-latency-model through LoadPolicyOptions (keyed by address).
//     Their decisions agree when the instances of a role share a model, which is what those flags can
//     express; instances of one role on different devices need per-worker files the router lacks.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "proto/worker.pb.h"
#include "router/policy/latency_model.h"
#include "router/policy/placement_policy.h"
#include "router/policy/snapshot.h"
#include "router/router_server.h"
#include "router/router_state.h"
#include "router/testing/fake_workers.h"
#include "router/worker_registry.h"
#include "sim/profiles.h"
#include "sim/search.h"
#include "sim/simulator.h"
#include "sim/workload.h"
#include "tokenizer/make_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace tandem::router {
namespace {

namespace wv1 = ::tandem::worker::v1;
using ::tandem::router::testing::FakeDecodeWorker;
using ::tandem::router::testing::FakePrefillWorker;

constexpr int64_t kNumRequests = 300;
constexpr double kRate = 14.0;  // requests per second: the prefill queues build up
constexpr uint64_t kSeed = 7;
constexpr double kTtftSloMs = 400.0;
constexpr double kTpotSloMs = 60.0;

// One call the simulator made: the request as the policy saw it, the snapshot and the decision.
struct Step {
  policy::PlacementRequest request;
  policy::ClusterSnapshot snapshot;
  policy::PlacementDecision decision;
};

// Forwards to the real policy and records every call.
class RecordingPolicy : public policy::PlacementPolicy {
 public:
  explicit RecordingPolicy(std::unique_ptr<policy::PlacementPolicy> inner) : inner_(std::move(inner)) {}

  std::string_view name() const override { return inner_->name(); }

  policy::PlacementDecision Place(const policy::PlacementRequest& request,
                                  const policy::ClusterSnapshot& snapshot) override {
    policy::PlacementDecision decision = inner_->Place(request, snapshot);
    steps_.push_back({request, snapshot, decision});
    return decision;
  }

  const std::vector<Step>& steps() const { return steps_; }

 private:
  std::unique_ptr<policy::PlacementPolicy> inner_;
  std::vector<Step> steps_;
};

// OPT-13B on A100s (DistServe's fits, as sim/profiles.cc), scaled by `slowdown` to make instances of
// unequal speed.
policy::LatencyModel Opt13b(int tp, double slowdown = 1.0) {
  absl::StatusOr<std::vector<policy::LatencyModel>> builtin = sim::BuiltinProfiles("distserve-a100");
  EXPECT_TRUE(builtin.ok()) << builtin.status();
  absl::StatusOr<policy::LatencyModel> fits = sim::FindProfile(*builtin, "opt-13b", tp);
  EXPECT_TRUE(fits.ok()) << fits.status();
  absl::StatusOr<policy::LatencyModel> slowed = sim::WithCorrection(*fits, slowdown, slowdown);
  EXPECT_TRUE(slowed.ok()) << slowed.status();
  policy::LatencyModelParams p = slowed->params();
  p.kv_bytes_per_token = 819200;
  p.link_bandwidth_bytes_per_s = 25e9;
  p.link_latency_ms = 0.5;
  absl::StatusOr<policy::LatencyModel> model = policy::LatencyModel::Create(p);
  EXPECT_TRUE(model.ok()) << model.status();
  return *std::move(model);
}

// Unequal instances, so that load, speed and KV room all move the decisions.
sim::ClusterConfig ParityCluster() {
  sim::ClusterConfig c;
  c.prefill.push_back({.latency = Opt13b(1, 1.3), .max_batch_tokens = 2048});
  c.prefill.push_back({.latency = Opt13b(2), .max_batch_tokens = 4096, .kv_buffer_tokens = 8192});
  c.decode.push_back({.latency = Opt13b(1, 1.5), .max_batch_size = 16, .kv_capacity_tokens = 6000});
  c.decode.push_back({.latency = Opt13b(1), .kv_capacity_tokens = 16000});
  c.decode.push_back({.latency = Opt13b(2), .kv_capacity_tokens = 40000, .block_size = 32});
  c.kv_bytes_per_token = 819200;
  return c;
}

// One model per role (prefill on a TP2 device, decode on a slower TP1 one), the instances of a role
// still unequal in batch limits and KV room.
sim::ClusterConfig PerRoleCluster() {
  sim::ClusterConfig c;
  c.prefill.push_back({.latency = Opt13b(2), .max_batch_tokens = 2048});
  c.prefill.push_back({.latency = Opt13b(2), .max_batch_tokens = 4096, .kv_buffer_tokens = 8192});
  c.decode.push_back({.latency = Opt13b(1, 1.5), .max_batch_size = 16, .kv_capacity_tokens = 6000});
  c.decode.push_back({.latency = Opt13b(1, 1.5), .kv_capacity_tokens = 16000});
  c.decode.push_back({.latency = Opt13b(1, 1.5), .kv_capacity_tokens = 40000, .block_size = 32});
  c.kv_bytes_per_token = 819200;
  return c;
}

absl::StatusOr<int32_t> ToInt32(int64_t value, absl::string_view what) {
  if (value < std::numeric_limits<int32_t>::min() || value > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", value, " does not fit the int32 LoadReport field"));
  }
  return static_cast<int32_t>(value);
}

// The report that WorkerRegistry::Snapshot turns into `w` (file comment).
absl::StatusOr<wv1::LoadReport> PrefillReport(const policy::PrefillWorkerState& w) {
  wv1::LoadReport r;
  r.set_worker_id(w.id);
  r.set_role("prefill");
  absl::StatusOr<int32_t> queued = ToInt32(w.queued_requests, absl::StrCat(w.id, ": queued_requests"));
  absl::StatusOr<int32_t> running = ToInt32(w.running_requests, absl::StrCat(w.id, ": running_requests"));
  if (!queued.ok()) return queued.status();
  if (!running.ok()) return running.status();
  r.set_queued_requests(*queued);
  r.set_queued_tokens(w.queued_prompt_tokens);
  r.set_running_requests(*running);
  r.set_running_context_tokens(w.running_tokens);
  r.set_recent_step_ms(w.recent_step_ms);
  return r;
}

absl::StatusOr<wv1::LoadReport> DecodeReport(const policy::DecodeWorkerState& w) {
  wv1::LoadReport r;
  r.set_worker_id(w.id);
  r.set_role("decode");
  absl::StatusOr<int32_t> running = ToInt32(w.running_batch_size, absl::StrCat(w.id, ": running_batch_size"));
  absl::StatusOr<int32_t> queued = ToInt32(w.queued_requests, absl::StrCat(w.id, ": queued_requests"));
  absl::StatusOr<int32_t> free_blocks = ToInt32(w.free_kv_blocks, absl::StrCat(w.id, ": free_kv_blocks"));
  absl::StatusOr<int32_t> total_blocks = ToInt32(w.total_kv_blocks, absl::StrCat(w.id, ": total_kv_blocks"));
  absl::StatusOr<int32_t> block_size = ToInt32(w.block_size, absl::StrCat(w.id, ": block_size"));
  for (const auto* s : {&running, &queued, &free_blocks, &total_blocks, &block_size}) {
    if (!s->ok()) return s->status();
  }
  if (*block_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(w.id, ": block_size ", *block_size,
                                                   " reads as 'not reported' (the registry keeps 16)"));
  }
  r.set_running_requests(*running);
  r.set_running_context_tokens(w.total_context_tokens);
  r.set_kv_blocks_free(*free_blocks);
  r.set_kv_blocks_total(*total_blocks);
  r.set_block_size(*block_size);
  r.set_queued_requests(*queued);
  r.set_recent_step_ms(w.recent_step_ms);
  return r;
}

// Every difference a policy could see between the recorded snapshot and the router's, as text
// ("" when none). `prefill_ids` / `decode_ids` are the router's ids (addresses) by index.
std::string SnapshotDiff(const policy::ClusterSnapshot& want, const policy::ClusterSnapshot& got,
                         const std::vector<std::string>& prefill_ids, const std::vector<std::string>& decode_ids) {
  std::string diff;
  auto field = [&diff](const std::string& worker, absl::string_view name, const auto& want_value,
                       const auto& got_value) {
    if (want_value != got_value) {
      absl::StrAppend(&diff, worker, ".", name, ": simulator ", want_value, ", router ", got_value, "\n");
    }
  };
  if (want.prefill.size() != got.prefill.size() || want.decode.size() != got.decode.size()) {
    return absl::StrCat("sizes: simulator ", want.prefill.size(), "+", want.decode.size(), ", router ",
                        got.prefill.size(), "+", got.decode.size());
  }
  for (size_t i = 0; i < want.prefill.size(); ++i) {
    const policy::PrefillWorkerState& w = want.prefill[i];
    const policy::PrefillWorkerState& g = got.prefill[i];
    field(w.id, "id (mapped)", prefill_ids[i], g.id);
    field(w.id, "healthy", static_cast<int>(w.healthy), static_cast<int>(g.healthy));
    field(w.id, "queued_requests", w.queued_requests, g.queued_requests);
    field(w.id, "queued_prompt_tokens", w.queued_prompt_tokens, g.queued_prompt_tokens);
    field(w.id, "running_tokens", w.running_tokens, g.running_tokens);
    field(w.id, "running_requests", w.running_requests, g.running_requests);
    field(w.id, "recent_step_ms", w.recent_step_ms, g.recent_step_ms);
    if (w.recent_step_ms > 0) {
      field(w.id, "recent_batch_requests", w.recent_batch_requests, g.recent_batch_requests);
      field(w.id, "recent_batch_tokens", w.recent_batch_tokens, g.recent_batch_tokens);
    }
  }
  for (size_t i = 0; i < want.decode.size(); ++i) {
    const policy::DecodeWorkerState& w = want.decode[i];
    const policy::DecodeWorkerState& g = got.decode[i];
    field(w.id, "id (mapped)", decode_ids[i], g.id);
    field(w.id, "healthy", static_cast<int>(w.healthy), static_cast<int>(g.healthy));
    field(w.id, "running_batch_size", w.running_batch_size, g.running_batch_size);
    field(w.id, "total_context_tokens", w.total_context_tokens, g.total_context_tokens);
    field(w.id, "free_kv_blocks", w.free_kv_blocks, g.free_kv_blocks);
    field(w.id, "total_kv_blocks", w.total_kv_blocks, g.total_kv_blocks);
    field(w.id, "block_size", w.block_size, g.block_size);
    field(w.id, "queued_requests", w.queued_requests, g.queued_requests);
    field(w.id, "recent_step_ms", w.recent_step_ms, g.recent_step_ms);
    if (w.recent_step_ms > 0) {
      field(w.id, "recent_batch_size", w.recent_batch_size, g.recent_batch_size);
      field(w.id, "recent_batch_context_tokens", w.recent_batch_context_tokens, g.recent_batch_context_tokens);
    }
    field(w.id, "min_running_tpot_slo_ms", w.min_running_tpot_slo_ms, g.min_running_tpot_slo_ms);
  }
  return diff;
}

bool NamesAWorker(absl::string_view reason, const policy::ClusterSnapshot& snapshot) {
  for (const auto& w : snapshot.prefill) {
    if (absl::StrContains(reason, w.id)) return true;
  }
  for (const auto& w : snapshot.decode) {
    if (absl::StrContains(reason, w.id)) return true;
  }
  return false;
}

std::string Describe(const policy::PlacementRequest& r) {
  return absl::StrCat("prompt ", r.prompt_len, ", max_output ", r.max_output_len, ", expected_output ",
                      r.expected_output_len, ", ttft_slo ", r.ttft_slo_ms, " ms, tpot_slo ", r.tpot_slo_ms,
                      " ms, best_effort ", r.best_effort);
}

// The router of router_server.cc, minus the public service: a started registry over fake workers and
// a RouterState holding a policy made by the router's factory. The pollers wait an hour, so the load
// the registry holds is exactly what the last PollLoadNow fetched.
class ReplayRouter {
 public:
  // `make_policy` gets the fake workers' addresses (prefill, decode), as router_server.cc's options hold
  // them before it makes its policy.
  using PolicyFactory = std::function<absl::StatusOr<std::unique_ptr<policy::PlacementPolicy>>(
      const std::vector<std::string>&, const std::vector<std::string>&)>;
  static absl::StatusOr<std::unique_ptr<ReplayRouter>> Start(int num_prefill, int num_decode,
                                                             const PolicyFactory& make_policy) {
    std::unique_ptr<ReplayRouter> router(new ReplayRouter);
    WorkerRegistryOptions options;
    for (int i = 0; i < num_prefill; ++i) {
      router->prefill_.push_back(FakePrefillWorker::Start());
      if (router->prefill_.back() == nullptr) return absl::UnavailableError("cannot start a fake prefill worker");
      options.prefill_addresses.push_back(router->prefill_.back()->address());
    }
    for (int i = 0; i < num_decode; ++i) {
      router->decode_.push_back(FakeDecodeWorker::Start());
      if (router->decode_.back() == nullptr) return absl::UnavailableError("cannot start a fake decode worker");
      options.decode_addresses.push_back(router->decode_.back()->address());
    }
    absl::StatusOr<std::unique_ptr<policy::PlacementPolicy>> policy =
        make_policy(options.prefill_addresses, options.decode_addresses);
    if (!policy.ok()) return policy.status();
    options.health_interval = absl::Hours(1);
    options.load_interval = absl::Hours(1);
    absl::StatusOr<std::unique_ptr<WorkerRegistry>> registry = WorkerRegistry::Create(options);
    if (!registry.ok()) return registry.status();
    (*registry)->Start();

    // RouterState wants a tokenizer; Place never uses it. Bytes only (no merges).
    absl::StatusOr<std::string> json = MakeByteLevelBpeTokenizerJson(256, kEnglishTrainingText, {});
    if (!json.ok()) return json.status();
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromJson(*json, "parity tokenizer");
    if (!tokenizer.ok()) return tokenizer.status();
    ServedModel model{.name = "parity", .max_context = 4096, .vocab_size = 256, .eos_token_ids = {}};
    router->state_ = std::make_unique<RouterState>(std::move(model), *std::move(tokenizer), *std::move(registry),
                                                   *std::move(policy), /*max_in_flight=*/256);
    return router;
  }

  RouterState& state() { return *state_; }
  WorkerRegistry& registry() { return state_->registry(); }
  FakePrefillWorker& prefill(size_t i) { return *prefill_[i]; }
  FakeDecodeWorker& decode(size_t i) { return *decode_[i]; }

 private:
  ReplayRouter() = default;

  // Declared first: the registry (inside state_) goes before the workers it polls.
  std::vector<std::unique_ptr<FakePrefillWorker>> prefill_;
  std::vector<std::unique_ptr<FakeDecodeWorker>> decode_;
  std::unique_ptr<RouterState> state_;
};

struct ParityCase {
  std::string policy_name;
  bool best_effort = false;
  // Goodput with one latency model per role, as `tandem sim` (MakeSimPolicy: each instance's own model)
  // and the router (--prefill-latency-model / --decode-latency-model through LoadPolicyOptions) give it.
  bool per_role_models = false;
};

void PrintTo(const ParityCase& c, std::ostream* out) {
  *out << c.policy_name << (c.best_effort ? " (best effort)" : "") << (c.per_role_models ? " (per role)" : "");
}

class RouterSimParityTest : public ::testing::TestWithParam<ParityCase> {};

TEST_P(RouterSimParityTest, RouterReplaysTheSimulatorsDecisions) {
  const std::string& policy_name = GetParam().policy_name;
  const bool best_effort = GetParam().best_effort;
  const bool per_role = GetParam().per_role_models;
  const sim::ClusterConfig cluster = per_role ? PerRoleCluster() : ParityCluster();
  const policy::LatencyModel latency_model = Opt13b(1);

  // --- The simulator, recording every placement. ---
  absl::StatusOr<sim::LengthSpec> lengths = sim::BuiltinLengthSpec("sharegpt");
  ASSERT_TRUE(lengths.ok()) << lengths.status();
  absl::StatusOr<sim::Workload> unit = sim::MakeSyntheticWorkload(*lengths, {}, kNumRequests, kSeed);
  ASSERT_TRUE(unit.ok()) << unit.status();
  sim::SimSetup setup;
  setup.policy_name = policy_name;
  absl::StatusOr<std::unique_ptr<policy::PlacementPolicy>> sim_policy =
      per_role ? sim::MakeSimPolicy(setup, cluster)
               : policy::MakePlacementPolicy(policy_name, {.latency_model = latency_model});
  ASSERT_TRUE(sim_policy.ok()) << sim_policy.status();
  RecordingPolicy recording(*std::move(sim_policy));
  sim::Simulator simulator(cluster, &recording,
                           {.ttft_slo_ms = kTtftSloMs, .tpot_slo_ms = kTpotSloMs, .best_effort = best_effort});
  absl::StatusOr<std::vector<sim::RequestRecord>> records = simulator.Run(sim::ScaleToRate(*unit, kRate));
  ASSERT_TRUE(records.ok()) << records.status();
  const std::vector<Step>& steps = recording.steps();
  ASSERT_EQ(steps.size(), static_cast<size_t>(kNumRequests));

  // The recording is worth replaying: queues built up and the decisions spread over the cluster.
  int64_t max_prefill_queue = 0;
  int64_t max_decode_batch = 0;
  int rejected = 0;
  int reasons_naming_a_worker = 0;  // these exercise the id mapping below
  int placed_past_the_slo = 0;      // goodput's best-effort path
  std::vector<int> prefill_chosen(cluster.prefill.size()), decode_chosen(cluster.decode.size());
  for (const Step& step : steps) {
    ASSERT_EQ(step.request.ttft_slo_ms, kTtftSloMs) << "the simulator no longer passes its SLOs on";
    ASSERT_EQ(step.request.tpot_slo_ms, kTpotSloMs);
    ASSERT_EQ(step.request.best_effort, best_effort);
    for (const auto& p : step.snapshot.prefill) max_prefill_queue = std::max(max_prefill_queue, p.queued_requests);
    for (const auto& d : step.snapshot.decode) max_decode_batch = std::max(max_decode_batch, d.running_batch_size);
    if (!step.decision.accepted) {
      ++rejected;
      if (NamesAWorker(step.decision.reject_reason, step.snapshot)) ++reasons_naming_a_worker;
      continue;
    }
    if (step.decision.predicted_ttft_ms > kTtftSloMs || step.decision.predicted_tpot_ms > kTpotSloMs) {
      ++placed_past_the_slo;
    }
    ++prefill_chosen[static_cast<size_t>(step.decision.prefill_index)];
    ++decode_chosen[static_cast<size_t>(step.decision.decode_index)];
  }
  EXPECT_GE(max_prefill_queue, 2);
  EXPECT_GE(max_decode_batch, 4);
  for (int count : prefill_chosen) EXPECT_GT(count, 0);
  for (int count : decode_chosen) EXPECT_GT(count, 0);
  if (policy_name == "goodput" && !best_effort) {
    EXPECT_GT(rejected, 0) << "the SLOs never bound: the rejection path goes unchecked";
    EXPECT_GT(reasons_naming_a_worker, 0);
    EXPECT_LT(rejected, kNumRequests / 2);
  } else if (policy_name == "goodput") {
    EXPECT_GT(placed_past_the_slo, 0) << "the SLOs never bound: the best-effort path goes unchecked";
  } else {
    EXPECT_EQ(rejected, 0);
  }

  // --- The router, as router_server.cc builds it: latency models come from files, through
  // LoadPolicyOptions (--latency-model, or one file per role). ---
  const std::string dir = absl::StrCat(::testing::TempDir(), "/parity_", getpid());
  RouterOptions router_options;
  router_options.policy = policy_name;
  if (per_role) {
    router_options.prefill_latency_model_path = dir + "_prefill.json";
    router_options.decode_latency_model_path = dir + "_decode.json";
    ASSERT_TRUE(cluster.prefill[0].latency.SaveToFile(router_options.prefill_latency_model_path).ok());
    ASSERT_TRUE(cluster.decode[0].latency.SaveToFile(router_options.decode_latency_model_path).ok());
  } else {
    router_options.latency_model_path = dir + "_latency_model.json";
    ASSERT_TRUE(latency_model.SaveToFile(router_options.latency_model_path).ok());
  }
  absl::StatusOr<std::unique_ptr<ReplayRouter>> router = ReplayRouter::Start(
      static_cast<int>(cluster.prefill.size()), static_cast<int>(cluster.decode.size()),
      [&router_options](const std::vector<std::string>& prefill, const std::vector<std::string>& decode)
          -> absl::StatusOr<std::unique_ptr<policy::PlacementPolicy>> {
        router_options.prefill_addresses = prefill;
        router_options.decode_addresses = decode;
        absl::StatusOr<policy::PlacementPolicyOptions> options = LoadPolicyOptions(router_options);
        if (!options.ok()) return options.status();
        return policy::MakePlacementPolicy(router_options.policy, *options);
      });
  ASSERT_TRUE(router.ok()) << router.status();
  WorkerRegistry& registry = (*router)->registry();

  // Simulator id -> router id, for the snapshot check and for reasons that name workers.
  std::vector<std::string> prefill_ids, decode_ids;
  std::vector<std::pair<std::string, std::string>> id_map;
  for (int i = 0; i < registry.num_workers(WorkerRole::kPrefill); ++i) {
    prefill_ids.push_back(registry.address(WorkerRole::kPrefill, i));
    id_map.push_back({steps[0].snapshot.prefill[static_cast<size_t>(i)].id, prefill_ids.back()});
  }
  for (int i = 0; i < registry.num_workers(WorkerRole::kDecode); ++i) {
    decode_ids.push_back(registry.address(WorkerRole::kDecode, i));
    id_map.push_back({steps[0].snapshot.decode[static_cast<size_t>(i)].id, decode_ids.back()});
  }

  // --- Replay, in order (round robin's cursor depends on every earlier call). ---
  const absl::Time start = absl::Now();
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& step = steps[i];
    SCOPED_TRACE(absl::StrCat(policy_name, " step ", i, ": request ", Describe(step.request)));
    for (size_t p = 0; p < step.snapshot.prefill.size(); ++p) {
      absl::StatusOr<wv1::LoadReport> report = PrefillReport(step.snapshot.prefill[p]);
      ASSERT_TRUE(report.ok()) << "not expressible as a load report: " << report.status();
      (*router)->prefill(p).set_load_report(*report);
    }
    for (size_t d = 0; d < step.snapshot.decode.size(); ++d) {
      absl::StatusOr<wv1::LoadReport> report = DecodeReport(step.snapshot.decode[d]);
      ASSERT_TRUE(report.ok()) << "not expressible as a load report: " << report.status();
      (*router)->decode(d).set_load_report(*report);
    }
    registry.PollLoadNow();
    ASSERT_EQ(SnapshotDiff(step.snapshot, registry.Snapshot(), prefill_ids, decode_ids), "");

    const absl::StatusOr<Placement> placed = (*router)->state().Place(step.request);
    if (step.decision.accepted) {
      ASSERT_TRUE(placed.ok()) << "simulator placed it on (" << step.decision.prefill_index << ", "
                               << step.decision.decode_index << "); router: " << placed.status();
      ASSERT_EQ(placed->prefill_index, step.decision.prefill_index) << "prefill index: router, simulator";
      ASSERT_EQ(placed->decode_index, step.decision.decode_index) << "decode index: router, simulator";
    } else {
      ASSERT_FALSE(placed.ok()) << "simulator rejected it (" << step.decision.reject_reason
                                << "); router placed it on (" << placed->prefill_index << ", "
                                << placed->decode_index << ")";
      // Every worker is healthy, so a refusal is the policy's (an SLO or KV), not Unavailable.
      EXPECT_EQ(placed.status().code(), absl::StatusCode::kResourceExhausted) << placed.status();
      ASSERT_EQ(std::string(placed.status().message()),
                absl::StrCat("request refused: ", absl::StrReplaceAll(step.decision.reject_reason, id_map)));
    }
  }
  const absl::Duration replay = absl::Now() - start;
  RecordProperty("replay_ms", static_cast<int>(absl::ToInt64Milliseconds(replay)));
  std::cout << policy_name << (best_effort ? " best-effort" : "") << ": replayed " << steps.size() << " steps ("
            << rejected << " rejected, " << placed_past_the_slo << " placed past the SLO) in " << replay << "\n";
}

TEST(LoadPolicyOptionsTest, RoleFilesOverrideByAddressAndMissingRolesAreNamed) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/load_policy_options_", getpid());
  ASSERT_TRUE(Opt13b(2).SaveToFile(dir + "_prefill.json").ok());
  ASSERT_TRUE(Opt13b(1, 1.5).SaveToFile(dir + "_decode.json").ok());
  RouterOptions options;
  options.prefill_addresses = {"10.0.0.1:7001", "10.0.0.2:7001"};
  options.decode_addresses = {"10.0.0.3:7002"};
  options.prefill_latency_model_path = dir + "_prefill.json";
  options.decode_latency_model_path = dir + "_decode.json";
  absl::StatusOr<policy::PlacementPolicyOptions> loaded = LoadPolicyOptions(options);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->worker_latency_models.size(), 3u);
  EXPECT_EQ(loaded->worker_latency_models.at("10.0.0.2:7001").params().tp, 2);
  EXPECT_EQ(loaded->worker_latency_models.at("10.0.0.3:7002").params().tp, 1);
  EXPECT_GT(loaded->worker_latency_models.at("10.0.0.3:7002").DecodeStepMs(1, 512),
            Opt13b(1).DecodeStepMs(1, 512));

  options.decode_latency_model_path.clear();  // one role only, and no --latency-model for the other
  loaded = LoadPolicyOptions(options);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(loaded.status().message(), "--decode-latency-model")) << loaded.status();

  options.latency_model_path = dir + "_decode.json";  // --latency-model covers the decode workers
  loaded = LoadPolicyOptions(options);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->worker_latency_models.size(), 2u);
  EXPECT_EQ(loaded->latency_model->params().tp, 1);

  options.prefill_latency_model_path = dir + "_missing.json";
  loaded = LoadPolicyOptions(options);
  EXPECT_FALSE(loaded.ok());
  EXPECT_TRUE(absl::StrContains(loaded.status().message(), "--prefill-latency-model")) << loaded.status();
}

std::vector<ParityCase> ParityCases() {
  std::vector<ParityCase> cases;
  for (const std::string& name : policy::PlacementPolicyNames()) cases.push_back({.policy_name = name});
  cases.push_back({.policy_name = "goodput", .best_effort = true});
  cases.push_back({.policy_name = "goodput", .per_role_models = true});
  cases.push_back({.policy_name = "goodput", .best_effort = true, .per_role_models = true});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Policies, RouterSimParityTest, ::testing::ValuesIn(ParityCases()),
                         [](const ::testing::TestParamInfo<ParityCase>& info) {
                           return info.param.policy_name + (info.param.best_effort ? "_best_effort" : "") +
                                  (info.param.per_role_models ? "_per_role" : "");
                         });

}  // namespace
}  // namespace tandem::router
