#include "backend/cpu/cpu_backend.h"

#include <cblas.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "backend/cpu/fast_ops.h"
#include "backend/cpu/reference_ops.h"
#include "common/random.h"

namespace tandem {
namespace {

class HostBuffer : public DeviceBuffer {
 public:
  HostBuffer(void* data, int64_t size) : data_(data), size_(size) {}
  ~HostBuffer() override { std::free(data_); }
  void* data() override { return data_; }
  int64_t size() const override { return size_; }

 private:
  void* data_;
  int64_t size_;
};

class CpuStream : public Stream {};

int ResolveThreads(int requested) { return requested > 0 ? requested : DefaultThreadCount(); }

}  // namespace

CpuBackend::CpuBackend(const CpuBackendOptions& options)
    : fast_(options.fast), batch_invariant_(options.batch_invariant), bf16_dot_prompts_(options.bf16_dot_prompts), matrix_dtype_(options.matrix_dtype), pool_(ResolveThreads(options.num_threads)) {
  // Prompt GEMMs run as column blocks on this backend's threads, each a single-threaded sgemm
  // (cpu_fast::Linear): OpenBLAS's own threads would spin beside ours.
  openblas_set_num_threads(1);
}

DType CpuBackend::matrix_dtype(DType stored) const {
  if (matrix_dtype_.has_value()) return *matrix_dtype_;
  return stored == DType::kBF16 || stored == DType::kF16 ? stored : DType::kF32;
}

absl::StatusOr<std::unique_ptr<DeviceBuffer>> CpuBackend::Allocate(int64_t bytes) {
  if (bytes < 0) return absl::InvalidArgumentError(absl::StrCat("Allocate: negative size ", bytes));
  // 64-byte alignment for vector loads; aligned_alloc wants a multiple of the alignment. Buffers of
  // 2 MiB and more (weights, the KV pool) are 2 MiB aligned and asked to be backed by huge pages: a
  // decode step streams gigabytes, and 4 KiB pages cost a TLB miss every 4 KiB of it.
  constexpr int64_t kHuge = int64_t{2} << 20;
  const int64_t align = bytes >= kHuge ? kHuge : 64;
  const int64_t rounded = (std::max<int64_t>(bytes, 1) + align - 1) / align * align;
  void* data = std::aligned_alloc(align, rounded);
  if (data == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("cpu backend: cannot allocate ", bytes, " bytes"));
  }
  if (align == kHuge) madvise(data, rounded, MADV_HUGEPAGE);  // advice: without it, 4 KiB pages
  return std::make_unique<HostBuffer>(data, bytes);
}

absl::Status CpuBackend::CopyHostToDevice(void* device_dst, const void* host_src, int64_t bytes) {
  std::memcpy(device_dst, host_src, bytes);
  return absl::OkStatus();
}

absl::Status CpuBackend::CopyDeviceToHost(void* host_dst, const void* device_src, int64_t bytes) {
  std::memcpy(host_dst, device_src, bytes);
  return absl::OkStatus();
}

absl::StatusOr<DeviceMemoryInfo> CpuBackend::MemoryInfo() {
  return absl::UnimplementedError("the CPU backend sizes its KV pool from --kv-cache-mb, not device memory");
}

absl::StatusOr<std::unique_ptr<Stream>> CpuBackend::NewStream() { return std::make_unique<CpuStream>(); }

absl::Status CpuBackend::CopyAsync(void* dst, const void* src, int64_t bytes, Stream& stream) {
  std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Graph>> CpuBackend::CaptureGraph(const std::function<absl::Status()>& record) {
  return absl::UnimplementedError("the CPU backend runs every step eagerly (no graphs)");
}

namespace {

absl::Status CheckMatrix(std::string_view op, const char* what, const Tensor& t) {
  if (t.dtype == DType::kF32 || t.dtype == DType::kBF16 || t.dtype == DType::kF16) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(std::string(op), ": ", what, " is ", std::string(DTypeName(t.dtype)),
                                                 "; the CPU backend takes F32, BF16 or F16"));
}

absl::Status CheckF32(std::string_view op, const char* what, const Tensor& t) {
  if (t.dtype == DType::kF32) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(std::string(op), ": ", what, " is ", std::string(DTypeName(t.dtype)),
                                                 "; the CPU backend's activations are F32"));
}

}  // namespace

absl::Status CpuBackend::Embedding(const Tensor& tokens, const Tensor& table, const Tensor& out) {
  if (absl::Status s = CheckMatrix("Embedding", "table", table); !s.ok()) return s;
  if (absl::Status s = CheckF32("Embedding", "out", out); !s.ok()) return s;
  if (fast_) {
    cpu_fast::Embedding(pool_, tokens, table, out);
  } else {
    cpu_ref::Embedding(tokens, table, out);
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::RmsNorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) {
  if (fast_) {
    cpu_fast::RmsNorm(pool_, x, weight, eps, out);
  } else {
    cpu_ref::RmsNorm(x, weight, eps, out);
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::AddRmsNorm(const Tensor& residual, const Tensor& delta, const Tensor& weight,
                                    float eps, const Tensor& out) {
  if (fast_) {
    cpu_fast::AddRmsNorm(pool_, residual, delta, weight, eps, out);
  } else {
    cpu_ref::AddRmsNorm(residual, delta, weight, eps, out);
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::Linear(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y) {
  if (absl::Status s = CheckMatrix("Linear", "w", w); !s.ok()) return s;
  if (absl::Status s = CheckF32("Linear", "x", x); !s.ok()) return s;
  if (absl::Status s = CheckF32("Linear", "y", y); !s.ok()) return s;
  if (fast_) {
    cpu_fast::Linear(pool_, x, w, bias, y, gemm_scratch_, batch_invariant_, bf16_dot_prompts_);
  } else {
    cpu_ref::Linear(x, w, bias, y);
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::RopeAndStoreKv(const Tensor& qkv, const Tensor& rope, const BatchLayout& layout,
                                        const AttentionShape& shape, const LayerKv& kv) {
  cpu_ref::RopeAndStoreKv(qkv, rope, layout, shape, kv);
  return absl::OkStatus();
}

absl::Status CpuBackend::Attention(const Tensor& qkv, const BatchLayout& layout,
                                   const AttentionShape& shape, const LayerKv& kv, const Tensor& out) {
  if (fast_) {
    cpu_fast::Attention(pool_, qkv, layout, shape, kv, out);
  } else {
    cpu_ref::Attention(qkv, layout, shape, kv, out);
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::SiluMul(const Tensor& gate_up, const Tensor& out) {
  if (fast_) {
    cpu_fast::SiluMul(pool_, gate_up, out);
  } else {
    cpu_ref::SiluMul(gate_up, out);
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::GatherRows(const Tensor& x, const Tensor& rows, const Tensor& out) {
  cpu_ref::GatherRows(x, rows, out);
  return absl::OkStatus();
}

}  // namespace tandem

namespace tandem {

absl::Status CpuBackend::Sample(const Tensor& logits, std::span<const SampleRow> rows, int32_t* host_tokens,
                                float* host_logprobs) {
  const int64_t vocab = logits.dim(1);
  if (logits.dtype != DType::kF32 || logits.dim(0) < static_cast<int64_t>(rows.size())) {
    return absl::InvalidArgumentError(absl::StrCat("Sample: logits must be F32 with >= ", rows.size(), " rows"));
  }
  const int64_t n = static_cast<int64_t>(rows.size());
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* row = logits.as<float>() + r * vocab;
      host_tokens[r] = SampleRowReference(row, vocab, rows[r]);
      if (host_logprobs != nullptr) host_logprobs[r] = static_cast<float>(TokenLogprob(row, vocab, host_tokens[r]));
    }
  };
  if (fast_ && n > 1) {
    pool_.ParallelFor(n, run);
  } else {
    run(0, n);
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::FillUniform(const Tensor& t, uint64_t seed, float offset, float scale) {
  if (t.dtype != DType::kF32 && t.dtype != DType::kBF16 && t.dtype != DType::kF16) {
    return absl::InvalidArgumentError(absl::StrCat("FillUniform: the CPU backend holds F32, BF16 or F16, not ",
                                                   std::string(DTypeName(t.dtype))));
  }
  Xoshiro256 rng(seed);
  constexpr int64_t kChunk = 4096;
  float values[kChunk];
  for (int64_t i = 0; i < t.num_elements(); i += kChunk) {
    const int64_t n = std::min(kChunk, t.num_elements() - i);
    for (int64_t j = 0; j < n; ++j) values[j] = offset + static_cast<float>((2 * rng.NextDouble() - 1) * scale);
    ConvertFromF32(t.dtype, values, n, static_cast<char*>(t.data) + i * DTypeSize(t.dtype));
  }
  return absl::OkStatus();
}

}  // namespace tandem
