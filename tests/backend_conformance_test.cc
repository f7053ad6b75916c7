// The CPU fast path against the plain-loop reference, through the shared op conformance harness
// (tests/testing/conformance.cc), and the fast path's batch invariance.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "backend/cpu/bf16_dot.h"
#include "backend/cpu/half_ops.h"
#include "backend/registry.h"
#include "gtest/gtest.h"
#include "model/sampler.h"
#include "tests/testing/conformance.h"

namespace tandem {

std::vector<conformance::ConformanceParam> conformance::ConformanceParams() {
  // float32 against a float64-accumulating reference; bfloat16 and float16: the weight matrices held
  // in 16 bits (activations float32), the reference given the same rounded weights widened (and, for
  // bf16 on CPUs with AVX512_BF16, the activations rounded to bf16 as the backend's dot products take
  // them).
  return {{.backend = "cpu", .dtype = "float32", .linear = "", .tolerance = 2e-5, .long_contexts = false},
          {.backend = "cpu",
           .dtype = "bfloat16",
           .linear = "",
           .tolerance = 2e-5,
           .long_contexts = false,
           .bf16_activations_above_rows = cpu_bf16dot::Available() ? 0 : -1},
          {.backend = "cpu", .dtype = "float16", .linear = "", .tolerance = 2e-5, .long_contexts = false}};
}

namespace {

// Host tensors copied onto a backend.
struct HostTensor {
  std::vector<float> f;
  std::vector<int64_t> shape;
};

HostTensor RandomF(std::vector<int64_t> shape, Rng& rng, double scale = 1.0) {
  HostTensor t;
  t.shape = shape;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  t.f.resize(n);
  for (float& x : t.f) x = static_cast<float>((2 * rng.NextDouble() - 1) * scale);
  return t;
}

class Placer {
 public:
  explicit Placer(Backend& backend) : backend_(backend) {}
  Tensor Put(const HostTensor& h, DType dtype = DType::kF32) {
    const int64_t count = static_cast<int64_t>(h.f.size());
    const int64_t bytes = count * DTypeSize(dtype);
    auto buffer = backend_.Allocate(bytes);
    EXPECT_TRUE(buffer.ok());
    std::vector<char> converted(bytes);
    ConvertFromF32(dtype, h.f.data(), count, converted.data());
    EXPECT_TRUE(backend_.CopyHostToDevice((*buffer)->data(), converted.data(), bytes).ok());
    Tensor t{(*buffer)->data(), dtype, h.shape};
    buffers_.push_back(std::move(*buffer));
    return t;
  }
  std::vector<float> Get(const Tensor& t) {
    std::vector<float> out(t.num_elements());
    EXPECT_TRUE(backend_.CopyDeviceToHost(out.data(), t.data, out.size() * 4).ok());
    return out;
  }

 private:
  Backend& backend_;
  std::vector<std::unique_ptr<DeviceBuffer>> buffers_;
};

// Outputs where y = x . w^T + b for `n` random rows differs from the same row computed alone (a batch of
// one, the decode kernel's path), over one random n x in -> out Linear with `wdtype` weights.
int64_t OutputsDifferingFromTheRowAlone(Backend& cpu, Rng& rng, DType wdtype, int n, int in, int out) {
  HostTensor x = RandomF({n, in}, rng), w = RandomF({out, in}, rng), b = RandomF({out}, rng);
  Placer p(cpu);
  Tensor wt = p.Put(w, wdtype), bt = p.Put(b);
  Tensor batch_out = p.Put(RandomF({n, out}, rng));
  EXPECT_TRUE(cpu.Linear(p.Put(x), wt, &bt, batch_out).ok());
  const std::vector<float> batched = p.Get(batch_out);
  int64_t differing = 0;
  for (int r = 0; r < n; ++r) {
    HostTensor row;
    row.shape = {1, in};
    row.f.assign(x.f.begin() + r * in, x.f.begin() + (r + 1) * in);
    Tensor row_out = p.Put(RandomF({1, out}, rng));
    EXPECT_TRUE(cpu.Linear(p.Put(row), wt, &bt, row_out).ok());
    const std::vector<float> alone = p.Get(row_out);
    for (int o = 0; o < out; ++o) differing += alone[o] != batched[r * out + o];
  }
  return differing;
}

// The CPU fast path streams weights for up to 8 rows and sums each output as its batch-1 kernel does,
// so a row's result is bit-identical whatever batch it is in (decode output independent of batching),
// on float32 and on 16-bit weights.
TEST(CpuFastPathTest, LinearRowDoesNotDependOnTheBatch) {
  BackendOptions options;
  options.name = "cpu";
  options.num_threads = 2;
  auto cpu = MakeBackend(options);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  Rng rng(7);
  for (DType wdtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (auto [n, in, out] : std::vector<std::tuple<int, int, int>>{{2, 256, 96}, {5, 70, 33}, {8, 688, 256}}) {
      EXPECT_EQ(OutputsDifferingFromTheRowAlone(**cpu, rng, wdtype, n, in, out), 0)
          << DTypeName(wdtype) << " " << n << "x" << in << "->" << out;
    }
  }
}

// --batch-invariant: prompts (more than 8 rows) are summed row by row as the decode kernel sums them
// (register tiles for float32 and, with AVX-512, bf16: dot-product tiles in the decode kernel's four
// chains where the CPU has AVX512_BF16; the decode kernel itself otherwise), so every
// row of a prompt gets, bit for bit, what it gets decoded alone: a request resumed by re-prefilling its
// tokens continues exactly as it would have. Shapes cover odd row counts, outputs not a multiple of the
// tiles, several output chunks, rows split into pieces (2500 weights), and tails of 32 and of single
// weights. Without the option, prompts take sgemm (or one-chain bf16 dot tiles), and the same check
// finds differences.
TEST(CpuFastPathTest, BatchInvariantPromptRowsEqualTheDecodeKernel) {
  for (bool invariant : {true, false}) {
    BackendOptions options;
    options.name = "cpu";
    options.num_threads = 2;
    options.batch_invariant = invariant;
    auto cpu = MakeBackend(options);
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    Rng rng(11);
    for (DType wdtype : {DType::kF32, DType::kBF16, DType::kF16}) {
      int64_t differing = 0;
      // bf16 on CPUs with AVX512_BF16 takes the dot products (bf16_dot.h): with the option, prompt tiles
      // that sum each output in the decode kernel's four chains; without, one chain (faster), and the
      // check finds the differences.
      for (auto [n, in, out] :
           std::vector<std::tuple<int, int, int>>{{9, 70, 31}, {13, 100, 2000}, {40, 688, 65}, {11, 2500, 7}, {12, 256, 9}}) {
        const int64_t here = OutputsDifferingFromTheRowAlone(**cpu, rng, wdtype, n, in, out);
        if (invariant) EXPECT_EQ(here, 0) << DTypeName(wdtype) << " " << n << "x" << in << "->" << out;
        differing += here;
      }
      if (!invariant) {
        EXPECT_GT(differing, 0) << DTypeName(wdtype) << ": sgemm summed exactly as the decode kernel";
      }
    }
  }
}

// TANDEM_CPU_ISA (the ctest variants backend_conformance_avx2_test / _portable_test) really selects the
// 16-bit kernels' path, so those runs test what they say.
TEST(CpuFastPathTest, IsaOverrideStepsDown) {
  const char* env = std::getenv("TANDEM_CPU_ISA");
  std::printf("16-bit kernels: %s\n", std::string(cpu_half::ActiveIsa()).c_str());
  if (env == nullptr) GTEST_SKIP() << "TANDEM_CPU_ISA unset: the best path the CPU has";
  if (std::string(env) == "portable") EXPECT_EQ(cpu_half::ActiveIsa(), "portable");
  if (std::string(env) == "avx2") EXPECT_NE(cpu_half::ActiveIsa(), "avx512");
}

}  // namespace
}  // namespace tandem
