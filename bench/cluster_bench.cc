// The time the disaggregated path adds to the first token, against one-process generation (what
// `tandem run` does), for a 512-token prompt on the `small` preset. Everything runs in this process on
// loopback: a prefill worker, a decode worker and a router, each with one CPU thread, and a separate
// model for the local path, also with one thread.
//
//   BM_FirstTokenLocal     prompt -> Model::Forward -> sampled first token (tandem run's TTFT)
//   BM_FirstTokenCluster   client -> router -> prefill worker -> first token streamed back (TTFT)
//   BM_SecondTokenCluster  ... + KV pull to the decode worker + one decode step (time to 2nd token)
//
//   build/bench/cluster_bench --benchmark_enable_random_interleaving=true --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sys/stat.h>

#include "backend/cpu/cpu_backend.h"
#include "benchmark/benchmark.h"
#include "decode/decode_server.h"
#include "grpcpp/create_channel.h"
#include "model/generator.h"
#include "model/random_model.h"
#include "prefill/prefill_server.h"
#include "proto/tandem.grpc.pb.h"
#include "router/router_server.h"
#include "model/demo_model.h"

namespace tandem {
namespace {

constexpr int kPromptTokens = 512;

struct Cluster {
  std::string dir;
  std::unique_ptr<CpuBackend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<PrefillServer> prefill;
  std::unique_ptr<DecodeServer> decode;
  std::unique_ptr<router::RouterServer> router;
  std::unique_ptr<v1::Tandem::Stub> stub;
  std::vector<int32_t> prompt;
};

void Check(const absl::Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "cluster_bench: %s\n", status.ToString().c_str());
    std::abort();
  }
}

Cluster& GetCluster() {
  static Cluster* cluster = [] {
    auto* c = new Cluster;
    c->dir = "/tmp/tandem-cluster-bench-small";
    auto config = PresetConfig("small");
    Check(config.status());
    struct stat st;
    if (::stat((c->dir + "/tokenizer.json").c_str(), &st) != 0) Check(WriteDemoModel(*config, DType::kF32, 0, c->dir));
    c->backend = std::make_unique<CpuBackend>(CpuBackendOptions{.fast = true, .num_threads = 1});
    auto model = Model::Load(c->dir, *c->backend);
    Check(model.status());
    c->model = std::move(*model);
    c->cache = *KvCache::Create(*c->backend, c->model->MakeKvSpec(16, 64));

    WorkerModelOptions worker;
    worker.model_dir = c->dir;
    worker.num_threads = 1;
    worker.kv_cache_mb = 64;
    PrefillServerOptions prefill_options;
    prefill_options.model = worker;
    auto prefill = PrefillServer::Start(prefill_options);
    Check(prefill.status());
    c->prefill = std::move(*prefill);
    DecodeServerOptions decode_options;
    decode_options.model = worker;
    auto decode = DecodeServer::Start(decode_options);
    Check(decode.status());
    c->decode = std::move(*decode);
    router::RouterOptions options;
    options.model_dir = c->dir;
    options.prefill_addresses = {c->prefill->address()};
    options.decode_addresses = {c->decode->address()};
    auto server = router::RouterServer::Start(options);
    Check(server.status());
    c->router = std::move(*server);
    c->stub = v1::Tandem::NewStub(grpc::CreateChannel(c->router->address(), grpc::InsecureChannelCredentials()));
    for (int i = 0; i < kPromptTokens; ++i) c->prompt.push_back((i * 37 + 11) % 1000);
    return c;
  }();
  return *cluster;
}

// Counter `beyond_forward_ms`: the time minus the forward pass alone (sampling, bookkeeping).
void BM_FirstTokenLocal(benchmark::State& state) {
  Cluster& c = GetCluster();
  Generator generator(*c.model, *c.cache);
  GenerationRequest request;
  request.prompt = c.prompt;
  request.max_tokens = 1;
  double beyond_forward_ms = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    auto out = generator.Generate({request});
    const double total = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!out.ok()) state.SkipWithError("generate failed");
    benchmark::DoNotOptimize(out);
    state.PauseTiming();
    auto blocks = *c.cache->allocator().Allocate(BlocksForTokens(kPromptTokens, 16));
    const auto forward_start = std::chrono::steady_clock::now();
    auto logits = c.model->Forward({{c.prompt, 0, blocks}}, *c.cache);
    const double forward =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - forward_start).count();
    c.cache->allocator().Free(blocks).IgnoreError();
    state.ResumeTiming();
    beyond_forward_ms += total - forward;
  }
  state.counters["beyond_forward_ms"] = beyond_forward_ms / static_cast<double>(state.iterations());
}

// Time from sending Generate to receiving the message that carries token number `token_index` (1-based).
// Counter `beyond_prefill_ms`: that time minus the prefill worker's own compute time for the same
// request (from the router's final timing) — the part the disaggregated path adds, measured per request
// so that noise in the 512-token forward pass cancels out.
void TimeToToken(benchmark::State& state, int token_index) {
  Cluster& c = GetCluster();
  v1::GenerateRequest request;
  request.mutable_prompt_token_ids()->mutable_ids()->Add(c.prompt.begin(), c.prompt.end());
  request.set_max_tokens(token_index);
  request.set_ignore_eos(true);
  double beyond_prefill_ms = 0;
  for (auto _ : state) {
    double prefill_compute_ms = 0;
    grpc::ClientContext context;
    const auto start = std::chrono::steady_clock::now();
    auto reader = c.stub->Generate(&context, request);
    v1::GenerateResponse response;
    int tokens = 0;
    double seconds = 0;
    while (reader->Read(&response)) {
      tokens += response.token_ids_size();
      if (tokens >= token_index && seconds == 0) {
        seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
      if (response.has_final()) prefill_compute_ms = response.final().timing().prefill_compute_ms();
    }
    if (!reader->Finish().ok() || tokens < token_index) state.SkipWithError("generate failed");
    state.SetIterationTime(seconds);
    beyond_prefill_ms += seconds * 1e3 - prefill_compute_ms;
  }
  state.counters["beyond_prefill_ms"] = beyond_prefill_ms / static_cast<double>(state.iterations());
}

void BM_FirstTokenCluster(benchmark::State& state) { TimeToToken(state, 1); }
void BM_SecondTokenCluster(benchmark::State& state) { TimeToToken(state, 2); }

BENCHMARK(BM_FirstTokenLocal)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_FirstTokenCluster)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseManualTime();
BENCHMARK(BM_SecondTokenCluster)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseManualTime();

}  // namespace
}  // namespace tandem

BENCHMARK_MAIN();
