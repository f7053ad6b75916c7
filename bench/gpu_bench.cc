// GPU engine benchmark (bench/gpu.md, run by tests/gpu/run.sh): decode step time and prefill time of
// real model shapes with random weights drawn on the device (no checkpoint files), each beside its floor
// measured in the same run:
//
//   decode floor  = (weight bytes read per step + KV bytes read) / copy bandwidth
//   prefill floor = FLOPs (2 x parameters x tokens + causal attention) / bf16 GEMM rate
//
// Copy bandwidth is cudaMemcpy device-to-device of 2 GiB counted as read + write bytes (how the
// 4.25 TB/s figure for the H200 was taken); the GEMM rate is a cuBLASLt 8192^3 bf16 GEMM through the
// backend's own Linear. Step times are wall-clock around Model::Step: index upload, graph replay or
// eager launches, sampling and the copy of the sampled ids, i.e. what an engine pays per step.
//
//   build/bench/gpu_bench [--models tinyllama-1.1b,llama3.2-1b,llama3-8b] [--batches 1,8,32,128]
//                         [--context 512] [--prompts 512,2048] [--steps 30] [--dtype bfloat16]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backend/registry.h"
#include "common/flags.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/random_model.h"

namespace tandem {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

[[noreturn]] void Die(const absl::Status& status, const std::string& what) {
  std::fprintf(stderr, "gpu_bench: %s: %s\n", what.c_str(), status.ToString().c_str());
  std::exit(1);
}

template <typename T>
T Check(absl::StatusOr<T> value, const std::string& what) {
  if (!value.ok()) Die(value.status(), what);
  return std::move(*value);
}

void Check(const absl::Status& status, const std::string& what) {
  if (!status.ok()) Die(status, what);
}

std::vector<int64_t> Ints(const std::string& list) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    int64_t v;
    if (!absl::SimpleAtoi(part, &v) || v < 1) Die(absl::InvalidArgumentError(std::string(part)), "a list of sizes");
    out.push_back(v);
  }
  return out;
}

std::unique_ptr<Backend> NewBackend(const std::string& dtype) {
  BackendOptions options;
  options.name = "cuda";
  options.dtype = dtype;
  return Check(MakeBackend(options), "--backend cuda");
}

// Device-to-device copy bandwidth, read + write bytes per second; best of several passes.
double CopyBandwidth(Backend& backend) {
  const int64_t bytes = int64_t{2} << 30;
  auto src = Check(backend.Allocate(bytes), "bandwidth buffer");
  auto dst = Check(backend.Allocate(bytes), "bandwidth buffer");
  auto stream = Check(backend.NewStream(), "stream");
  double best = 0;
  for (int pass = 0; pass < 6; ++pass) {
    const auto start = Clock::now();
    for (int i = 0; i < 4; ++i) Check(backend.CopyAsync(dst->data(), src->data(), bytes, *stream), "copy");
    Check(backend.SynchronizeStream(*stream), "copy");
    const double seconds = Ms(start, Clock::now()) / 1e3;
    if (pass > 0) best = std::max(best, 2.0 * 4 * bytes / seconds);
  }
  return best;
}

// FLOP/s of the backend's Linear on an 8192^3 GEMM; best of several passes.
double GemmRate(Backend& backend, DType dtype) {
  const int64_t n = 8192;
  WorkspaceLimits limits;
  limits.max_tokens = n;
  limits.max_seqs = 1;
  limits.max_context = 1;
  limits.num_heads = 1;
  limits.num_kv_heads = 1;
  limits.head_dim = 64;
  limits.vocab_size = 1;
  limits.max_linear_out = n;
  Check(backend.Reserve(limits), "reserve");
  auto x = Check(backend.Allocate(n * n * DTypeSize(dtype)), "gemm buffer");
  auto w = Check(backend.Allocate(n * n * DTypeSize(dtype)), "gemm buffer");
  auto y = Check(backend.Allocate(n * n * DTypeSize(dtype)), "gemm buffer");
  const Tensor tx{x->data(), dtype, {n, n}}, tw{w->data(), dtype, {n, n}}, ty{y->data(), dtype, {n, n}};
  Check(backend.FillUniform(tx, 1, 0.0f, 1.0f), "fill");
  Check(backend.FillUniform(tw, 2, 0.0f, 0.01f), "fill");
  double best = 0;
  for (int pass = 0; pass < 6; ++pass) {
    Check(backend.Synchronize(), "sync");
    const auto start = Clock::now();
    for (int i = 0; i < 5; ++i) Check(backend.Linear(tx, tw, nullptr, ty), "gemm");
    Check(backend.Synchronize(), "sync");
    const double seconds = Ms(start, Clock::now()) / 1e3;
    if (pass > 0) best = std::max(best, 5 * 2.0 * n * n * n / seconds);
  }
  return best;
}

struct Row {
  std::string model, what;
  int64_t size = 0;
  double ms = 0, floor_ms = 0;
};

void BenchModel(const std::string& preset, const std::string& dtype_name, const std::vector<int64_t>& batches,
                int64_t context, const std::vector<int64_t>& prompts, int steps, double bandwidth, double gemm_rate,
                std::vector<Row>& rows) {
  const ModelConfig config = Check(PresetConfig(preset), "--models");
  std::unique_ptr<Backend> backend = NewBackend(dtype_name);
  const int64_t max_batch = *std::max_element(batches.begin(), batches.end());
  const int64_t max_prompt = *std::max_element(prompts.begin(), prompts.end());
  ModelLoadOptions options;
  options.max_context = std::max<int64_t>(context + steps + 8, max_prompt + 8);
  options.max_batch_tokens = std::max<int64_t>(max_prompt, max_batch);
  options.max_seqs = static_cast<int32_t>(max_batch);
  std::unique_ptr<Model> model = Check(Model::CreateRandom(config, *backend, options, 7), preset);
  const int32_t block_size = 16;
  const int32_t blocks_per_seq = BlocksForTokens(options.max_context, block_size);
  const int32_t num_blocks = static_cast<int32_t>(std::max<int64_t>(max_batch, 2)) * blocks_per_seq;
  std::unique_ptr<KvCache> cache = Check(KvCache::Create(*backend, model->MakeKvSpec(block_size, num_blocks)), "cache");
  // Random KV stands in for prefilled context: decode reads it the same way.
  for (int32_t l = 0; l < cache->spec().num_layers; ++l) {
    Check(backend->FillUniform(cache->layer(l).k, 100 + l, 0.0f, 1.0f), "fill KV");
    Check(backend->FillUniform(cache->layer(l).v, 200 + l, 0.0f, 1.0f), "fill KV");
  }
  Check(backend->Synchronize(), "sync");
  std::vector<std::vector<int32_t>> tables(max_batch);
  for (int64_t s = 0; s < max_batch; ++s) {
    for (int32_t b = 0; b < blocks_per_seq; ++b) tables[s].push_back(static_cast<int32_t>(s * blocks_per_seq + b));
  }
  const double kv_bytes_per_token = static_cast<double>(cache->spec().bytes_per_token());
  std::fprintf(stderr, "%s: %.2f GB of weights, %.1f MB of workspaces\n", preset.c_str(),
               model->weight_bytes() / 1e9, model->workspace_bytes() / 1e6);

  for (int64_t batch : batches) {
    std::vector<int32_t> tokens(batch, 1);
    std::vector<SampleRow> sample_rows(batch);
    auto step_at = [&](int64_t cached) {
      std::vector<SequenceStep> seq_steps;
      for (int64_t s = 0; s < batch; ++s) {
        seq_steps.push_back({std::span<const int32_t>(tokens).subspan(s, 1), cached, tables[s]});
      }
      Check(model->Step(seq_steps, *cache, sample_rows).status(), "decode step");
    };
    for (int i = 0; i < 3; ++i) step_at(context + i);  // warm-up: kernel choice, graph recording
    const auto start = Clock::now();
    for (int i = 0; i < steps; ++i) step_at(context + i);
    const double ms = Ms(start, Clock::now()) / steps;
    const double bytes = static_cast<double>(model->weight_bytes_per_step()) +
                         static_cast<double>(batch) * (context + steps / 2.0) * kv_bytes_per_token;
    rows.push_back({preset, "decode step (batch)", batch, ms, bytes / bandwidth * 1e3});
  }

  const int64_t h = config.hidden_size, inter = config.intermediate_size;
  const double layer_params = static_cast<double>(h * (config.q_size() + 2 * config.kv_size()) + config.q_size() * h +
                                                  3 * h * inter);
  for (int64_t prompt : prompts) {
    std::vector<int32_t> tokens(prompt);
    for (int64_t i = 0; i < prompt; ++i) tokens[i] = static_cast<int32_t>((i * 7919) % config.vocab_size);
    std::vector<int32_t> table(tables[0]);
    const std::vector<SampleRow> sample_rows(1);
    auto run = [&] { Check(model->Step({{tokens, 0, table}}, *cache, sample_rows).status(), "prefill"); };
    run();
    run();
    const int repeats = 5;
    const auto start = Clock::now();
    for (int i = 0; i < repeats; ++i) run();
    const double ms = Ms(start, Clock::now()) / repeats;
    const double flops = 2.0 * prompt * layer_params * config.num_hidden_layers + 2.0 * h * config.vocab_size +
                         2.0 * prompt * prompt * config.num_attention_heads * config.head_dim * config.num_hidden_layers;
    rows.push_back({preset, "prefill (tokens)", prompt, ms, flops / gemm_rate * 1e3});
  }
}

int Main(int argc, char** argv) {
  std::string models = "tinyllama-1.1b,llama3.2-1b,llama3-8b", batches = "1,8,32,128", prompts = "512,2048";
  std::string dtype = "bfloat16";
  int64_t context = 512, steps = 30;
  FlagParser parser("gpu_bench [flags]");
  parser.AddString("models", &models, "tandem mkmodel presets to measure");
  parser.AddString("batches", &batches, "decode batch sizes");
  parser.AddInt("context", &context, "context of every decode sequence");
  parser.AddString("prompts", &prompts, "prefill lengths");
  parser.AddInt("steps", &steps, "timed decode steps per batch size");
  parser.AddString("dtype", &dtype, "bfloat16, float16 or float32");
  std::vector<std::string> args(argv + 1, argv + argc);
  const absl::Status parsed = parser.Parse(args);
  if (parser.help_requested()) {
    std::fputs(parser.Usage().c_str(), stdout);
    return 0;
  }
  Check(parsed, "flags");

  std::unique_ptr<Backend> probe = NewBackend(dtype);
  const double bandwidth = CopyBandwidth(*probe);
  const double gemm_rate = GemmRate(*probe, probe->activation_dtype());
  probe.reset();
  std::vector<Row> rows;
  for (absl::string_view preset : absl::StrSplit(models, ',', absl::SkipEmpty())) {
    BenchModel(std::string(preset), dtype, Ints(batches), context, Ints(prompts), static_cast<int>(steps), bandwidth,
               gemm_rate, rows);
  }
  std::printf("copy bandwidth %.2f TB/s (read + write), %s GEMM %.0f TFLOP/s; decode context %lld, %s\n\n",
              bandwidth / 1e12, dtype.c_str(), gemm_rate / 1e12, static_cast<long long>(context), dtype.c_str());
  std::printf("| model | step | size | ms | floor ms | x floor |\n|---|---|---:|---:|---:|---:|\n");
  for (const Row& r : rows) {
    std::printf("| %s | %s | %lld | %.3f | %.3f | %.2f |\n", r.model.c_str(), r.what.c_str(),
                static_cast<long long>(r.size), r.ms, r.floor_ms, r.ms / r.floor_ms);
  }
  return 0;
}

}  // namespace
}  // namespace tandem

int main(int argc, char** argv) { return tandem::Main(argc, argv); }
