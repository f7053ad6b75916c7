// The CPU backend: float32 activations and KV cache in host memory; weight matrices (Linear weights
// and the embedding table) in float32, or in bfloat16 / float16 as the checkpoint stores them (half the
// bytes a decode step reads; widened inside the kernels, backend/cpu/half_ops.h).
//
// With `fast` false every op runs its plain-loop reference (backend/cpu/reference_ops.h); with `fast`
// true the threaded / BLAS paths of backend/cpu/fast_ops.h run where they exist.
//
// Thread safety: one engine thread at a time (Backend contract). Ops run synchronously; a Stream is a
// token (copies on it are plain memcpy on the calling thread); there are no graphs.
#ifndef TANDEM_BACKEND_CPU_CPU_BACKEND_H_
#define TANDEM_BACKEND_CPU_CPU_BACKEND_H_

#include <memory>
#include <optional>
#include <vector>

#include "backend/backend.h"
#include "common/thread_pool.h"

namespace tandem {

struct CpuBackendOptions {
  bool fast = true;
  int num_threads = 0;  // 0: one per hardware thread
  // The dtype weight matrices are held in; unset keeps a 16-bit checkpoint's dtype and float32 for
  // float32 checkpoints.
  std::optional<DType> matrix_dtype;
  // Prompt matrix products summed row by row as a batch-1 decode step sums them (cpu_fast::Linear), so
  // that a sequence's logits do not depend on its batch or on being re-prefilled. Slower prompts.
  bool batch_invariant = false;
  // Prompts on bf16 matrices: AVX512_BF16 dot products on activations rounded to bf16 (bf16_dot.h),
  // where the CPU has them. false: the weights widened to float32 for sgemm (float32 activations).
  bool bf16_dot_prompts = true;
};

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(const CpuBackendOptions& options);

  std::string_view name() const override { return fast_ ? "cpu" : "cpu-reference"; }
  DType weight_dtype() const override { return DType::kF32; }
  DType activation_dtype() const override { return DType::kF32; }
  DType matrix_dtype(DType stored) const override;
  bool host_memory() const override { return true; }

  absl::StatusOr<std::unique_ptr<DeviceBuffer>> Allocate(int64_t bytes) override;
  absl::StatusOr<std::unique_ptr<DeviceBuffer>> AllocateHost(int64_t bytes) override { return Allocate(bytes); }
  absl::Status CopyHostToDevice(void* device_dst, const void* host_src, int64_t bytes) override;
  absl::Status CopyDeviceToHost(void* host_dst, const void* device_src, int64_t bytes) override;
  absl::Status CopyToDeviceAsync(void* device_dst, const void* host_src, int64_t bytes) override {
    return CopyHostToDevice(device_dst, host_src, bytes);
  }
  absl::Status Synchronize() override { return absl::OkStatus(); }
  absl::StatusOr<DeviceMemoryInfo> MemoryInfo() override;
  absl::Status Reserve(const WorkspaceLimits& limits) override { return absl::OkStatus(); }

  absl::StatusOr<std::unique_ptr<Stream>> NewStream() override;
  absl::Status CopyAsync(void* dst, const void* src, int64_t bytes, Stream& stream) override;
  absl::Status SynchronizeStream(Stream& stream) override { return absl::OkStatus(); }
  absl::StatusOr<std::unique_ptr<Graph>> CaptureGraph(const std::function<absl::Status()>& record) override;

  absl::Status Embedding(const Tensor& tokens, const Tensor& table, const Tensor& out) override;
  absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) override;
  absl::Status AddRmsNorm(const Tensor& residual, const Tensor& delta, const Tensor& weight,
                          float eps, const Tensor& out) override;
  absl::Status Linear(const Tensor& x, const Tensor& w, const Tensor* bias,
                      const Tensor& y) override;
  absl::Status RopeAndStoreKv(const Tensor& qkv, const Tensor& rope, const BatchLayout& layout,
                              const AttentionShape& shape, const LayerKv& kv) override;
  absl::Status Attention(const Tensor& qkv, const BatchLayout& layout, const AttentionShape& shape,
                         const LayerKv& kv, const Tensor& out) override;
  absl::Status SiluMul(const Tensor& gate_up, const Tensor& out) override;
  absl::Status GatherRows(const Tensor& x, const Tensor& rows, const Tensor& out) override;
  absl::Status Sample(const Tensor& logits, std::span<const SampleRow> rows, int32_t* host_tokens,
                      float* host_logprobs) override;
  absl::Status FillUniform(const Tensor& t, uint64_t seed, float offset, float scale) override;

  int num_threads() const { return pool_.num_threads(); }

 private:
  bool fast_;
  bool batch_invariant_;
  bool bf16_dot_prompts_;
  std::optional<DType> matrix_dtype_;
  ThreadPool pool_;
  std::vector<float> gemm_scratch_;  // widened 16-bit weight blocks (prompt GEMMs)
};

}  // namespace tandem

#endif  // TANDEM_BACKEND_CPU_CPU_BACKEND_H_
