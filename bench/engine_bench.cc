// CPU engine benchmarks: prefill tokens/s and decode step time at batch 1, 8, 32, each next to its
// memory-bandwidth floor measured in the same run.
//
// Floor of a decode step = (weight bytes read per step + KV bytes read) / measured read bandwidth.
// The bandwidth is measured right before each decode benchmark (the machines are noisy; see
// bench/README.md), with the same thread count, as the best of a few passes summing a buffer far larger
// than the caches. Copy bandwidth (read + write bytes) is reported beside it for reference.
//
//   build/bench/engine_bench --benchmark_filter=Decode --benchmark_counters_tabular=true
//
// Models are random-weight bf16 checkpoints of the named preset shape, written once under
// $TANDEM_BENCH_MODELS (default /tmp/tandem-bench-models), held in bf16 (as stored) or widened to f32.
// Threads: $TANDEM_BENCH_THREADS (default 2).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <sys/stat.h>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/half_ops.h"
#include "benchmark/benchmark.h"
#include "common/thread_pool.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/random_model.h"

namespace tandem {
namespace {

// Threads of the CPU backend (and of the bandwidth measurement): $TANDEM_BENCH_THREADS, default 2.
int Threads() {
  static const int threads = [] {
    const char* env = std::getenv("TANDEM_BENCH_THREADS");
    return env != nullptr && std::atoi(env) > 0 ? std::atoi(env) : 2;
  }();
  return threads;
}
const char* kPresets[] = {"small", "tinyllama-1.1b"};
// How the (bf16) checkpoint's weight matrices are held: 0 as stored (bf16, widened in the kernels;
// copied into huge-page memory), 1 widened to float32 at load (what the CPU backend did before 16-bit
// weights), 2 bf16 with the unfused matrices used in place in the file mapping (map_weights).
// 3 and 4: bf16 and float32 with --batch-invariant (prompts summed as decode steps sum them).
const char* kHeld[] = {"bf16", "f32", "bf16-mapped", "bf16-invariant", "f32-invariant"};

struct Loaded {
  std::unique_ptr<CpuBackend> backend;
  std::unique_ptr<Model> model;
};

Loaded& GetModel(const std::string& preset, int held) {
  static std::map<std::pair<std::string, int>, Loaded> cache;
  auto it = cache.find({preset, held});
  if (it != cache.end()) return it->second;
  const char* root_env = std::getenv("TANDEM_BENCH_MODELS");
  const std::string root = root_env ? root_env : "/tmp/tandem-bench-models";
  ::mkdir(root.c_str(), 0755);
  const std::string dir = root + "/" + preset;
  struct stat st;
  if (::stat((dir + "/model.safetensors").c_str(), &st) != 0) {
    auto config = PresetConfig(preset);
    if (!config.ok() || !WriteRandomModel(*config, DType::kBF16, 0, dir).ok()) {
      std::fprintf(stderr, "cannot write %s\n", dir.c_str());
      std::abort();
    }
  }
  Loaded loaded;
  CpuBackendOptions options{.fast = true, .num_threads = Threads()};
  if (held == 1 || held == 4) options.matrix_dtype = DType::kF32;
  options.batch_invariant = held >= 3;
  loaded.backend = std::make_unique<CpuBackend>(options);
  ModelLoadOptions load;
  load.max_context = 4096;
  load.map_weights = held == 2;
  auto model = Model::Load(dir, *loaded.backend, load);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    std::abort();
  }
  loaded.model = std::move(*model);
  return cache.emplace(std::make_pair(preset, held), std::move(loaded)).first->second;
}

// Sums [lo, hi) with 16 independent lanes, built for the widest vector unit the CPU has, so that the
// loop is never the limit (the floor must be the memory's, not this loop's).
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))
float SumRange(const float* data, size_t lo, size_t hi) {
  float acc[16] = {};
  for (size_t k = lo; k + 16 <= hi; k += 16) {
    for (int l = 0; l < 16; ++l) acc[l] += data[k + l];
  }
  float total = 0;
  for (float a : acc) total += a;
  return total;
}

// Read bandwidth in bytes/s: threads sum disjoint parts of a 1 GiB buffer; best of 3 passes.
double MeasureReadBandwidth(ThreadPool& pool) {
  static std::vector<float> buffer(256 << 20, 1.0f);
  double best = 0;
  for (int pass = 0; pass < 3; ++pass) {
    std::vector<float> sums(pool.num_threads() * 16);
    const auto start = std::chrono::steady_clock::now();
    pool.ParallelFor(pool.num_threads(), [&](int64_t begin, int64_t end) {
      for (int64_t part = begin; part < end; ++part) {
        const size_t lo = buffer.size() * part / pool.num_threads();
        const size_t hi = buffer.size() * (part + 1) / pool.num_threads();
        sums[part * 16] = SumRange(buffer.data(), lo, hi);
      }
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    benchmark::DoNotOptimize(sums.data());
    best = std::max(best, buffer.size() * sizeof(float) / s);
  }
  return best;
}

// Copy bandwidth in bytes/s, counting bytes read plus bytes written; best of 3 passes.
double MeasureCopyBandwidth(ThreadPool& pool) {
  static std::vector<char> src(512 << 20, 1), dst(512 << 20, 0);
  double best = 0;
  for (int pass = 0; pass < 3; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    pool.ParallelFor(pool.num_threads(), [&](int64_t begin, int64_t end) {
      for (int64_t part = begin; part < end; ++part) {
        const size_t lo = src.size() * part / pool.num_threads();
        const size_t hi = src.size() * (part + 1) / pool.num_threads();
        std::memcpy(dst.data() + lo, src.data() + lo, hi - lo);
      }
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    benchmark::DoNotOptimize(dst.data());
    best = std::max(best, 2.0 * src.size() / s);
  }
  return best;
}

ThreadPool& BandwidthPool() {
  static ThreadPool pool(Threads());
  return pool;
}

// args: preset index, batch size, held dtype index. Every sequence has `kContext` cached tokens; each iteration is one
// decode step writing the token at position kContext (the same slot each time, so the context stays
// fixed across iterations).
constexpr int kContext = 512;

void BM_Decode(benchmark::State& state) {
  const std::string preset = kPresets[state.range(0)];
  const int batch = static_cast<int>(state.range(1));
  const int held = static_cast<int>(state.range(2));
  Loaded& m = GetModel(preset, held);
  const int32_t block_size = 16;
  const int32_t blocks_per_seq = BlocksForTokens(kContext + 1, block_size);
  auto cache = KvCache::Create(*m.backend, m.model->MakeKvSpec(block_size, blocks_per_seq * batch));
  if (!cache.ok()) {
    state.SkipWithError(std::string(cache.status().message()).c_str());
    return;
  }
  std::vector<std::vector<int32_t>> tables(batch);
  std::vector<int32_t> token = {7};
  for (int s = 0; s < batch; ++s) {
    tables[s] = *(*cache)->allocator().Allocate(blocks_per_seq);
  }
  // Fill the context once (prefill each sequence) so attention reads real values.
  std::vector<int32_t> prompt(kContext);
  for (int t = 0; t < kContext; ++t) prompt[t] = (t * 31 + 3) % static_cast<int>(m.model->vocab_size());
  for (int s = 0; s < batch; ++s) {
    if (!m.model->Forward({{prompt, 0, tables[s]}}, **cache).ok()) std::abort();
  }
  std::vector<SequenceStep> steps;
  for (int s = 0; s < batch; ++s) steps.push_back({token, kContext, tables[s]});

  const double read_bw = MeasureReadBandwidth(BandwidthPool());
  const double copy_bw = MeasureCopyBandwidth(BandwidthPool());
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto logits = m.model->Forward(steps, **cache);
    benchmark::DoNotOptimize(logits);
  }
  const double step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
                        static_cast<double>(state.iterations());
  const double kv_bytes = static_cast<double>(batch) * (kContext + 1) * (*cache)->spec().bytes_per_token();
  const double bytes = static_cast<double>(m.model->weight_bytes_per_step()) + kv_bytes;
  const double floor_s = bytes / read_bw;
  state.SetLabel(preset + " " + kHeld[held] + " " + std::to_string(Threads()) + "t");
  state.counters["step_ms"] = step_s * 1e3;
  state.counters["x_floor"] = step_s / floor_s;
  state.counters["floor_ms"] = floor_s * 1e3;
  state.counters["read_GBps"] = read_bw / 1e9;
  state.counters["copy_GBps"] = copy_bw / 1e9;
  state.counters["weights_MB"] = m.model->weight_bytes_per_step() / 1e6;
  state.counters["tok_per_s"] = benchmark::Counter(static_cast<double>(batch) * state.iterations(),
                                                   benchmark::Counter::kIsRate);
}

// args: preset index, prompt tokens, held dtype index.
void BM_Prefill(benchmark::State& state) {
  const std::string preset = kPresets[state.range(0)];
  const int len = static_cast<int>(state.range(1));
  const int held = static_cast<int>(state.range(2));
  Loaded& m = GetModel(preset, held);
  auto cache = KvCache::Create(*m.backend, m.model->MakeKvSpec(16, BlocksForTokens(len, 16)));
  if (!cache.ok()) {
    state.SkipWithError(std::string(cache.status().message()).c_str());
    return;
  }
  auto table = *(*cache)->allocator().Allocate(BlocksForTokens(len, 16));
  std::vector<int32_t> prompt(len);
  for (int t = 0; t < len; ++t) prompt[t] = (t * 17 + 1) % static_cast<int>(m.model->vocab_size());
  for (auto _ : state) {
    auto logits = m.model->Forward({{prompt, 0, table}}, **cache);
    benchmark::DoNotOptimize(logits);
  }
  state.SetLabel(preset + " " + kHeld[held] + " " + std::to_string(Threads()) + "t");
  state.counters["prompt_tok_per_s"] =
      benchmark::Counter(static_cast<double>(len) * state.iterations(), benchmark::Counter::kIsRate);
}

// One batch-1 Linear (decode's matrix-vector product) on its own: weight GB/s by held dtype, for a
// matrix that stays in L2 (args: out 64, in 2048: 256 KiB in bf16; the kernel's own speed) and one
// that streams from memory (out 16384, in 2048). args: out, in, dtype (0 f32, 1 bf16, 2 f16).
void BM_LinearRow(benchmark::State& state) {
  const int64_t out = state.range(0), in = state.range(1);
  const DType dtype = state.range(2) == 0 ? DType::kF32 : state.range(2) == 1 ? DType::kBF16 : DType::kF16;
  CpuBackend backend(CpuBackendOptions{.fast = true, .num_threads = Threads()});
  auto wbuf = backend.Allocate(out * in * DTypeSize(dtype));
  auto xbuf = backend.Allocate(in * 4);
  auto ybuf = backend.Allocate(out * 4);
  const Tensor w{(*wbuf)->data(), dtype, {out, in}}, x{(*xbuf)->data(), DType::kF32, {1, in}},
      y{(*ybuf)->data(), DType::kF32, {1, out}};
  if (!backend.FillUniform(w, 1, 0.0f, 0.02f).ok() || !backend.FillUniform(x, 2, 0.0f, 1.0f).ok()) std::abort();
  for (auto _ : state) {
    if (!backend.Linear(x, w, nullptr, y).ok()) std::abort();
    benchmark::DoNotOptimize(y.data);
  }
  state.SetLabel(std::string(DTypeName(dtype)) + " " + std::to_string(Threads()) + "t");
  state.counters["weight_GBps"] = benchmark::Counter(static_cast<double>(w.num_bytes()) * state.iterations(),
                                                     benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LinearRow)
    ->ArgsProduct({{64, 16384}, {2048}, {0, 1, 2}})
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(1.0)
    ->UseRealTime();

// One prompt Linear (128 rows of TinyLlama's attention 2048 -> 2048, MLP up 2048 -> 5632 and down
// 5632 -> 2048) on its own: GFLOP/s by held dtype (f32: OpenBLAS sgemm in blocks; bf16: the tiled
// decode-order kernel where the CPU has it, else widen + sgemm). args: dtype (0 f32, 1 bf16, 2 f16),
// rows, in, out.
void BM_PromptLinear(benchmark::State& state) {
  const int64_t n = state.range(1), in = state.range(2), out = state.range(3);
  const DType dtype = state.range(0) == 0 ? DType::kF32 : state.range(0) == 1 ? DType::kBF16 : DType::kF16;
  CpuBackend backend(CpuBackendOptions{.fast = true, .num_threads = Threads()});
  auto wbuf = backend.Allocate(out * in * DTypeSize(dtype));
  auto xbuf = backend.Allocate(n * in * 4);
  auto ybuf = backend.Allocate(n * out * 4);
  const Tensor w{(*wbuf)->data(), dtype, {out, in}}, x{(*xbuf)->data(), DType::kF32, {n, in}},
      y{(*ybuf)->data(), DType::kF32, {n, out}};
  if (!backend.FillUniform(w, 1, 0.0f, 0.02f).ok() || !backend.FillUniform(x, 2, 0.0f, 1.0f).ok()) std::abort();
  for (auto _ : state) {
    if (!backend.Linear(x, w, nullptr, y).ok()) std::abort();
    benchmark::DoNotOptimize(y.data);
  }
  state.SetLabel(std::string(DTypeName(dtype)) + " " + std::to_string(Threads()) + "t");
  state.counters["GFLOPs"] = benchmark::Counter(2.0 * n * in * out * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PromptLinear)
    ->Args({0, 128, 2048, 2048})->Args({1, 128, 2048, 2048})->Args({2, 128, 2048, 2048})
    ->Args({0, 128, 2048, 5632})->Args({1, 128, 2048, 5632})->Args({2, 128, 2048, 5632})
    ->Args({0, 128, 5632, 2048})->Args({1, 128, 5632, 2048})->Args({2, 128, 5632, 2048})
    ->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();

// Widening a 64 MiB bf16 matrix block by block into a 1 MiB float32 scratch, as a prompt GEMM does
// (one thread): source GB/s.
void BM_WidenBlocks(benchmark::State& state) {
  const int64_t count = int64_t{32} << 20, block = state.range(0);
  std::vector<uint16_t> src(count, 0x3f80);
  std::vector<float> dst(block);
  for (auto _ : state) {
    for (int64_t i = 0; i < count; i += block) cpu_half::WidenRow(DType::kBF16, src.data() + i, block, dst.data());
    benchmark::DoNotOptimize(dst.data());
  }
  state.counters["src_GBps"] = benchmark::Counter(2.0 * count * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_WidenBlocks)->Arg(1 << 14)->Arg(1 << 16)->Arg(1 << 18)->Unit(benchmark::kMillisecond)->UseRealTime();

// The held dtype varies fastest, so that bf16 and f32 runs of one shape are adjacent (interleaved in
// time; the machines are noisy).
BENCHMARK(BM_Decode)
    ->ArgsProduct({{0, 1}, {1, 2, 4, 8, 32}, {0, 1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0)
    ->UseRealTime();
BENCHMARK(BM_Prefill)
    ->ArgsProduct({{0, 1}, {128, 512}, {0, 1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0)
    ->UseRealTime();
// What --batch-invariant costs a prompt (compare with held 0 and 1 of the same run).
BENCHMARK(BM_Prefill)->Args({1, 128, 3})->Args({1, 128, 4})->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();

}  // namespace
}  // namespace tandem

BENCHMARK_MAIN();
