// CudaBackend: device memory, the engine stream, transfer streams, graphs, scratch, and the dispatch of
// every op to its kernel (backend/cuda/kernels) or to cuBLASLt.
#include "backend/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/cuda/cublas_gemm.h"
#include "backend/cuda/cuda_status.h"
#include "backend/cuda/kernels/attention.cuh"
#include "backend/cuda/kernels/bias_add.cuh"
#include "backend/cuda/kernels/embedding.cuh"
#include "backend/cuda/kernels/fill_uniform.cuh"
#include "backend/cuda/kernels/gather_rows.cuh"
#include "backend/cuda/kernels/gemv.cuh"
#include "backend/cuda/kernels/rms_norm.cuh"
#include "backend/cuda/kernels/rope_store_kv.cuh"
#include "backend/cuda/kernels/sampling.cuh"
#include "backend/cuda/kernels/silu_mul.cuh"
#include "backend/cuda/launch_shapes.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace tandem {
namespace {

using cuda::CudaStatus;

constexpr size_t kGemmWorkspaceBytes = size_t{32} << 20;

// Runs `fn` with `device` current on this thread, then restores the thread's device (destructors may
// run on any thread).
template <typename Fn>
void OnDevice(int device, Fn&& fn) {
  int previous = -1;
  cudaGetDevice(&previous);
  if (previous != device) cudaSetDevice(device);
  fn();
  if (previous != device && previous >= 0) cudaSetDevice(previous);
}

class CudaBuffer : public DeviceBuffer {
 public:
  CudaBuffer(void* data, int64_t size, int device, std::shared_ptr<std::atomic<int64_t>> allocated)
      : data_(data), size_(size), device_(device), allocated_(std::move(allocated)) {
    *allocated_ += size_;
  }
  ~CudaBuffer() override {
    OnDevice(device_, [&] { cudaFree(data_); });
    *allocated_ -= size_;
  }
  void* data() override { return data_; }
  int64_t size() const override { return size_; }

 private:
  void* data_;
  int64_t size_;
  int device_;
  std::shared_ptr<std::atomic<int64_t>> allocated_;
};

class PinnedBuffer : public DeviceBuffer {
 public:
  PinnedBuffer(void* data, int64_t size) : data_(data), size_(size) {}
  ~PinnedBuffer() override { cudaFreeHost(data_); }
  void* data() override { return data_; }
  int64_t size() const override { return size_; }

 private:
  void* data_;
  int64_t size_;
};

class CudaStreamHandle : public Stream {
 public:
  CudaStreamHandle(cudaStream_t stream, int device) : stream_(stream), device_(device) {}
  ~CudaStreamHandle() override {
    OnDevice(device_, [&] { cudaStreamDestroy(stream_); });
  }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_;
  int device_;
};

class CudaGraph : public Graph {
 public:
  CudaGraph(cudaGraphExec_t exec, cudaStream_t stream) : exec_(exec), stream_(stream) {}
  ~CudaGraph() override { cudaGraphExecDestroy(exec_); }
  absl::Status Launch() override { return CudaStatus(cudaGraphLaunch(exec_, stream_), "cudaGraphLaunch"); }

 private:
  cudaGraphExec_t exec_;
  cudaStream_t stream_;
};

enum class LinearPath { kGemv, kCublas };

std::string Name(DType dtype) { return std::string(DTypeName(dtype)); }

class CudaBackend : public Backend {
 public:
  CudaBackend(int device, DType dtype) : device_(device), dtype_(dtype) {
    if (const char* linear = std::getenv("TANDEM_CUDA_LINEAR")) linear_override_ = linear;
  }
  ~CudaBackend() override {
    if (stream_ != nullptr) {
      Bind().IgnoreError();
      cudaStreamSynchronize(stream_);
      gemm_.reset();
      cudaStreamDestroy(stream_);
    }
  }

  absl::Status Init() {
    TANDEM_RETURN_IF_ERROR(Bind());
    cudaDeviceProp prop{};
    TANDEM_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, device_), "cudaGetDeviceProperties");
    if (prop.major < 8) {
      return absl::FailedPreconditionError(absl::StrCat("--backend cuda: device ", device_, " (", prop.name,
                                                        ") has compute capability ", prop.major, ".", prop.minor,
                                                        "; tandem's kernels need 8.0 or newer"));
    }
    limits_.max_threads_per_block = prop.maxThreadsPerBlock;
    limits_.max_grid_x = prop.maxGridSize[0];
    limits_.max_grid_y = prop.maxGridSize[1];
    limits_.max_grid_z = prop.maxGridSize[2];
    limits_.max_shared_per_block = static_cast<int64_t>(prop.sharedMemPerBlock);
    limits_.max_shared_per_block_optin = static_cast<int64_t>(prop.sharedMemPerBlockOptin);
    limits_.num_sms = prop.multiProcessorCount;
    device_name_ = prop.name;
    TANDEM_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    TANDEM_LOG(INFO, "cuda") << "device " << device_ << ": " << device_name_ << ", " << limits_.num_sms
                             << " SMs, " << (prop.totalGlobalMem >> 20) << " MiB; " << Name(dtype_);
    return absl::OkStatus();
  }

  std::string_view name() const override { return "cuda"; }
  DType weight_dtype() const override { return dtype_; }
  DType activation_dtype() const override { return dtype_; }
  bool host_memory() const override { return false; }

  // --- memory ---
  absl::StatusOr<std::unique_ptr<DeviceBuffer>> Allocate(int64_t bytes) override {
    TANDEM_RETURN_IF_ERROR(Bind());
    if (bytes < 0) return absl::InvalidArgumentError(absl::StrCat("Allocate: negative size ", bytes));
    void* data = nullptr;
    TANDEM_CUDA_RETURN_IF_ERROR(cudaMalloc(&data, std::max<int64_t>(bytes, 1)),
                                absl::StrCat("cudaMalloc of ", bytes, " bytes on device ", device_));
    return std::make_unique<CudaBuffer>(data, bytes, device_, allocated_);
  }
  absl::StatusOr<std::unique_ptr<DeviceBuffer>> AllocateHost(int64_t bytes) override {
    TANDEM_RETURN_IF_ERROR(Bind());
    if (bytes < 0) return absl::InvalidArgumentError(absl::StrCat("AllocateHost: negative size ", bytes));
    void* data = nullptr;
    TANDEM_CUDA_RETURN_IF_ERROR(cudaMallocHost(&data, std::max<int64_t>(bytes, 1)),
                                absl::StrCat("cudaMallocHost of ", bytes, " bytes"));
    return std::make_unique<PinnedBuffer>(data, bytes);
  }
  absl::Status CopyHostToDevice(void* device_dst, const void* host_src, int64_t bytes) override {
    TANDEM_RETURN_IF_ERROR(Bind());
    TANDEM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, stream_),
                                "copy to device");
    return Synchronize();
  }
  absl::Status CopyDeviceToHost(void* host_dst, const void* device_src, int64_t bytes) override {
    TANDEM_RETURN_IF_ERROR(Bind());
    TANDEM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, stream_),
                                "copy to host");
    return Synchronize();
  }
  absl::Status CopyToDeviceAsync(void* device_dst, const void* host_src, int64_t bytes) override {
    TANDEM_RETURN_IF_ERROR(Bind());
    return CudaStatus(cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, stream_),
                      "async copy to device");
  }
  absl::Status Synchronize() override {
    TANDEM_RETURN_IF_ERROR(Bind());
    return CudaStatus(cudaStreamSynchronize(stream_), "engine stream");
  }
  absl::StatusOr<DeviceMemoryInfo> MemoryInfo() override {
    TANDEM_RETURN_IF_ERROR(Bind());
    size_t free_bytes = 0, total_bytes = 0;
    TANDEM_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
    return DeviceMemoryInfo{static_cast<int64_t>(free_bytes), static_cast<int64_t>(total_bytes), allocated_->load()};
  }
  absl::Status Reserve(const WorkspaceLimits& limits) override;

  // --- transfer streams ---
  absl::StatusOr<std::unique_ptr<Stream>> NewStream() override {
    TANDEM_RETURN_IF_ERROR(Bind());
    cudaStream_t stream = nullptr;
    TANDEM_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    return std::make_unique<CudaStreamHandle>(stream, device_);
  }
  absl::Status CopyAsync(void* dst, const void* src, int64_t bytes, Stream& stream) override {
    TANDEM_RETURN_IF_ERROR(Bind());
    return CudaStatus(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, static_cast<CudaStreamHandle&>(stream).get()),
                      "transfer copy");
  }
  absl::Status SynchronizeStream(Stream& stream) override {
    TANDEM_RETURN_IF_ERROR(Bind());
    return CudaStatus(cudaStreamSynchronize(static_cast<CudaStreamHandle&>(stream).get()), "transfer stream");
  }

  absl::StatusOr<std::unique_ptr<Graph>> CaptureGraph(const std::function<absl::Status()>& record) override;

  // --- ops ---
  absl::Status Embedding(const Tensor& tokens, const Tensor& table, const Tensor& out) override;
  absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) override;
  absl::Status AddRmsNorm(const Tensor& residual, const Tensor& delta, const Tensor& weight, float eps,
                          const Tensor& out) override;
  absl::Status Linear(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y) override;
  absl::Status RopeAndStoreKv(const Tensor& qkv, const Tensor& rope, const BatchLayout& layout,
                              const AttentionShape& shape, const LayerKv& kv) override;
  absl::Status Attention(const Tensor& qkv, const BatchLayout& layout, const AttentionShape& shape,
                         const LayerKv& kv, const Tensor& out) override;
  absl::Status SiluMul(const Tensor& gate_up, const Tensor& out) override;
  absl::Status GatherRows(const Tensor& x, const Tensor& rows, const Tensor& out) override;
  absl::Status Sample(const Tensor& logits, std::span<const SampleRow> rows, int32_t* host_tokens,
                      float* host_logprobs) override;
  absl::Status FillUniform(const Tensor& t, uint64_t seed, float offset, float scale) override;

 private:
  // The CUDA runtime's current device is per thread: every entry point binds the calling thread once.
  absl::Status Bind() {
    thread_local int bound = -1;
    if (bound == device_) return absl::OkStatus();
    TANDEM_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_), absl::StrCat("cudaSetDevice(", device_, ")"));
    bound = device_;
    return absl::OkStatus();
  }
  absl::Status Launched(cudaError_t error, std::string_view op) { return CudaStatus(error, op); }
  absl::Status CheckActivation(const Tensor& t, std::string_view op, std::string_view what) const {
    if (t.dtype != dtype_) {
      return absl::InvalidArgumentError(absl::StrCat(std::string(op), ": ", std::string(what), " is ",
                                                     Name(t.dtype), ", the backend runs ", Name(dtype_)));
    }
    return absl::OkStatus();
  }
  absl::Status RequireReserved(std::string_view op) const {
    if (!reserved_) {
      return absl::FailedPreconditionError(
          absl::StrCat(std::string(op), ": the CUDA backend's scratch is not reserved (call Reserve first)"));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<LinearPath> ChooseLinear(const cuda::GemmShape& shape, const Tensor& x, const Tensor& w,
                                          const Tensor* bias, const Tensor& y);
  absl::Status RunLinear(LinearPath path, const cuda::GemmShape& shape, const Tensor& x, const Tensor& w,
                         const Tensor* bias, const Tensor& y);
  absl::StatusOr<double> TimeLinear(LinearPath path, const cuda::GemmShape& shape, const Tensor& x, const Tensor& w,
                                    const Tensor* bias, const Tensor& y);

  const int device_;
  const DType dtype_;
  std::string device_name_;
  cudaStream_t stream_ = nullptr;
  cuda::DeviceLimits limits_;
  std::string linear_override_;
  // Bytes of device memory this backend's buffers hold (buffers may outlive the backend: shared).
  std::shared_ptr<std::atomic<int64_t>> allocated_ = std::make_shared<std::atomic<int64_t>>(0);
  bool capturing_ = false;
  bool reserved_ = false;
  WorkspaceLimits reserved_limits_;

  std::unique_ptr<DeviceBuffer> gemm_workspace_;
  std::unique_ptr<cuda::CublasGemm> gemm_;
  using LinearKey = std::tuple<int64_t, int64_t, int64_t, int, int, bool>;
  std::map<LinearKey, LinearPath> linear_paths_;

  std::unique_ptr<DeviceBuffer> attention_scratch_;
  int64_t attention_scratch_floats_ = 0;
  int32_t split_token_limit_ = 0;

  // Sampling: per-row parameters, sampled row ids, tokens, logprobs (device and page-locked host),
  // per-row statistics, and the sort scratch.
  int32_t sample_capacity_ = 0;
  std::unique_ptr<DeviceBuffer> sample_params_, sample_rows_, sample_tokens_, sample_logprobs_, sample_stats_;
  std::unique_ptr<DeviceBuffer> host_params_, host_rows_, host_tokens_, host_logprobs_;
  std::unique_ptr<DeviceBuffer> sort_scratch_;
};

absl::Status CudaBackend::Reserve(const WorkspaceLimits& limits) {
  TANDEM_RETURN_IF_ERROR(Bind());
  if (reserved_) {
    // Scratch pointers are baked into recorded graphs: never reallocated. A second model fits in the
    // first one's limits or needs its own backend.
    const WorkspaceLimits& r = reserved_limits_;
    if (limits.max_tokens <= r.max_tokens && limits.max_seqs <= r.max_seqs && limits.num_heads <= r.num_heads &&
        limits.head_dim <= r.head_dim && limits.vocab_size <= r.vocab_size) {
      return absl::OkStatus();
    }
    return absl::FailedPreconditionError(
        "Reserve: this CUDA backend's scratch is already reserved for smaller limits (one backend per model)");
  }
  if (limits.max_seqs < 1 || limits.max_tokens < 1 || limits.vocab_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("Reserve: max_seqs ", limits.max_seqs, ", max_tokens ",
                                                   limits.max_tokens, ", vocab ", limits.vocab_size,
                                                   " must be >= 1"));
  }
  if (limits.head_dim > cuda::kAttentionMaxHeadDim) {
    return absl::InvalidArgumentError(absl::StrCat("head_dim ", limits.head_dim, ": the CUDA attention kernel takes up to ",
                                                   cuda::kAttentionMaxHeadDim));
  }
  reserved_limits_ = limits;
  TANDEM_ASSIGN_OR_RETURN(gemm_workspace_, Allocate(kGemmWorkspaceBytes));
  TANDEM_ASSIGN_OR_RETURN(gemm_, cuda::CublasGemm::Create(gemm_workspace_->data(), kGemmWorkspaceBytes));

  // Attention splits the keys for steps of up to max_seqs tokens (decode batches).
  // No plan splits a context into more than ceil(max_context / kAttentionMinPartition) partitions.
  split_token_limit_ = limits.max_seqs;
  const int64_t max_splits = std::clamp<int64_t>(
      (std::max(1, limits.max_context) + cuda::kAttentionMinPartition - 1) / cuda::kAttentionMinPartition, 1,
      cuda::kAttentionMaxSplits);
  attention_scratch_floats_ = static_cast<int64_t>(split_token_limit_) * std::max(1, limits.num_heads) * max_splits *
                              (std::max(1, limits.head_dim) + 2);
  TANDEM_ASSIGN_OR_RETURN(attention_scratch_, Allocate(attention_scratch_floats_ * 4));

  sample_capacity_ = limits.max_seqs;
  const int64_t n = sample_capacity_;
  TANDEM_ASSIGN_OR_RETURN(sample_params_, Allocate(n * sizeof(cuda::DeviceSampleRow)));
  TANDEM_ASSIGN_OR_RETURN(sample_rows_, Allocate(n * 4));
  TANDEM_ASSIGN_OR_RETURN(sample_tokens_, Allocate(n * 4));
  TANDEM_ASSIGN_OR_RETURN(sample_logprobs_, Allocate(n * 4));
  TANDEM_ASSIGN_OR_RETURN(sample_stats_, Allocate(n * sizeof(cuda::SampleRowStats)));
  TANDEM_ASSIGN_OR_RETURN(host_params_, AllocateHost(n * sizeof(cuda::DeviceSampleRow)));
  TANDEM_ASSIGN_OR_RETURN(host_rows_, AllocateHost(n * 4));
  TANDEM_ASSIGN_OR_RETURN(host_tokens_, AllocateHost(n * 4));
  TANDEM_ASSIGN_OR_RETURN(host_logprobs_, AllocateHost(n * 4));
  TANDEM_ASSIGN_OR_RETURN(sort_scratch_,
                          Allocate(static_cast<int64_t>(cuda::SampleSortScratchBytes(cuda::kSampleSortRows, limits.vocab_size))));
  reserved_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Graph>> CudaBackend::CaptureGraph(const std::function<absl::Status()>& record) {
  TANDEM_RETURN_IF_ERROR(Bind());
  // Thread-local: transfer threads may keep allocating and copying on their own streams meanwhile.
  TANDEM_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal),
                              "cudaStreamBeginCapture");
  capturing_ = true;
  const absl::Status recorded = record();
  capturing_ = false;
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
  if (!recorded.ok()) {
    if (graph != nullptr) cudaGraphDestroy(graph);
    return recorded;
  }
  TANDEM_CUDA_RETURN_IF_ERROR(ended, "cudaStreamEndCapture");
  cudaGraphExec_t exec = nullptr;
  const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  TANDEM_CUDA_RETURN_IF_ERROR(instantiated, "cudaGraphInstantiate");
  return std::make_unique<CudaGraph>(exec, stream_);
}

absl::Status CudaBackend::Embedding(const Tensor& tokens, const Tensor& table, const Tensor& out) {
  TANDEM_RETURN_IF_ERROR(Bind());
  TANDEM_RETURN_IF_ERROR(CheckActivation(table, "Embedding", "table"));
  cuda::EmbeddingArgs a;
  a.tokens = tokens.as<int32_t>();
  a.table = table.data;
  a.out = out.data;
  a.num_tokens = tokens.dim(0);
  a.hidden = table.dim(1);
  a.dtype = dtype_;
  return Launched(cuda::LaunchEmbedding(a, stream_), "Embedding");
}

absl::Status CudaBackend::RmsNorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) {
  TANDEM_RETURN_IF_ERROR(Bind());
  TANDEM_RETURN_IF_ERROR(CheckActivation(x, "RmsNorm", "x"));
  TANDEM_RETURN_IF_ERROR(CheckActivation(weight, "RmsNorm", "weight"));
  cuda::RmsNormArgs a;
  a.residual = x.data;  // read only without a delta
  a.weight = weight.data;
  a.out = out.data;
  a.rows = x.dim(0);
  a.hidden = x.dim(1);
  a.eps = eps;
  a.dtype = dtype_;
  return Launched(cuda::LaunchRmsNorm(a, stream_), "RmsNorm");
}

absl::Status CudaBackend::AddRmsNorm(const Tensor& residual, const Tensor& delta, const Tensor& weight, float eps,
                                     const Tensor& out) {
  TANDEM_RETURN_IF_ERROR(Bind());
  TANDEM_RETURN_IF_ERROR(CheckActivation(residual, "AddRmsNorm", "residual"));
  TANDEM_RETURN_IF_ERROR(CheckActivation(weight, "AddRmsNorm", "weight"));
  cuda::RmsNormArgs a;
  a.residual = residual.data;
  a.delta = delta.data;
  a.weight = weight.data;
  a.out = out.data;
  a.rows = residual.dim(0);
  a.hidden = residual.dim(1);
  a.eps = eps;
  a.dtype = dtype_;
  return Launched(cuda::LaunchRmsNorm(a, stream_), "AddRmsNorm");
}

absl::Status CudaBackend::RunLinear(LinearPath path, const cuda::GemmShape& s, const Tensor& x, const Tensor& w,
                                    const Tensor* bias, const Tensor& y) {
  const float* bias_data = bias != nullptr ? bias->as<float>() : nullptr;
  if (path == LinearPath::kGemv) {
    cuda::GemvArgs a;
    a.x = x.data;
    a.w = w.data;
    a.bias = bias_data;
    a.y = y.data;
    a.rows = static_cast<int32_t>(s.n);
    a.in = s.in;
    a.out = s.out;
    a.dtype = s.dtype;
    a.out_dtype = s.out_dtype;
    return Launched(cuda::LaunchGemv(a, stream_), "Linear (gemv)");
  }
  // cuBLASLt's bias epilogue reads the bias in the output's type, so it is fused only for float32
  // outputs (our biases are float32); otherwise, or when the library has no algorithm for the fused
  // shape, the GEMM runs plain and our kernel adds the bias.
  if (!s.bias || s.out_dtype == DType::kF32) {
    absl::Status fused = gemm_->Run(s, x.data, w.data, bias_data, y.data, stream_);
    if (fused.ok() || !s.bias || (!absl::IsUnimplemented(fused) && !absl::IsInvalidArgument(fused))) return fused;
  }
  cuda::GemmShape plain = s;
  plain.bias = false;
  TANDEM_RETURN_IF_ERROR(gemm_->Run(plain, x.data, w.data, nullptr, y.data, stream_));
  return Launched(cuda::LaunchBiasAdd(y.data, bias_data, s.n, s.out, s.out_dtype, stream_), "Linear bias");
}

absl::StatusOr<double> CudaBackend::TimeLinear(LinearPath path, const cuda::GemmShape& s, const Tensor& x,
                                               const Tensor& w, const Tensor* bias, const Tensor& y) {
  constexpr int kRuns = 5;
  TANDEM_RETURN_IF_ERROR(RunLinear(path, s, x, w, bias, y));  // warm-up (and plan creation)
  cudaEvent_t start = nullptr, stop = nullptr;
  TANDEM_CUDA_RETURN_IF_ERROR(cudaEventCreate(&start), "cudaEventCreate");
  TANDEM_CUDA_RETURN_IF_ERROR(cudaEventCreate(&stop), "cudaEventCreate");
  absl::Status status = CudaStatus(cudaEventRecord(start, stream_), "cudaEventRecord");
  for (int i = 0; i < kRuns && status.ok(); ++i) status = RunLinear(path, s, x, w, bias, y);
  if (status.ok()) status = CudaStatus(cudaEventRecord(stop, stream_), "cudaEventRecord");
  if (status.ok()) status = CudaStatus(cudaEventSynchronize(stop), "cudaEventSynchronize");
  float ms = 0.0f;
  if (status.ok()) status = CudaStatus(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  TANDEM_RETURN_IF_ERROR(status);
  return static_cast<double>(ms) / kRuns;
}

absl::StatusOr<LinearPath> CudaBackend::ChooseLinear(const cuda::GemmShape& s, const Tensor& x, const Tensor& w,
                                                     const Tensor* bias, const Tensor& y) {
  if (s.n > cuda::kGemvMaxRows || linear_override_ == "cublas") return LinearPath::kCublas;
  if (linear_override_ == "gemv") return LinearPath::kGemv;
  const LinearKey key{s.n, s.in, s.out, static_cast<int>(s.dtype), static_cast<int>(s.out_dtype), s.bias};
  auto it = linear_paths_.find(key);
  if (it != linear_paths_.end()) return it->second;
  // Inside a graph recording nothing can be timed; the model runs every bucket eagerly first, so this
  // is only reached by a shape never seen eagerly.
  if (capturing_) return LinearPath::kGemv;
  TANDEM_ASSIGN_OR_RETURN(const double gemv_ms, TimeLinear(LinearPath::kGemv, s, x, w, bias, y));
  absl::StatusOr<double> cublas_ms = TimeLinear(LinearPath::kCublas, s, x, w, bias, y);
  const LinearPath path = cublas_ms.ok() && *cublas_ms < gemv_ms ? LinearPath::kCublas : LinearPath::kGemv;
  TANDEM_LOG(DEBUG, "cuda") << "Linear " << s.n << "x" << s.in << " -> " << s.out << ": gemv " << gemv_ms
                            << " ms, cublas "
                            << (cublas_ms.ok() ? absl::StrCat(*cublas_ms, " ms") : cublas_ms.status().ToString())
                            << ": " << (path == LinearPath::kGemv ? "gemv" : "cublas");
  linear_paths_[key] = path;
  return path;
}

absl::Status CudaBackend::Linear(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y) {
  TANDEM_RETURN_IF_ERROR(Bind());
  TANDEM_RETURN_IF_ERROR(RequireReserved("Linear"));
  TANDEM_RETURN_IF_ERROR(CheckActivation(x, "Linear", "x"));
  TANDEM_RETURN_IF_ERROR(CheckActivation(w, "Linear", "w"));
  if (y.dtype != dtype_ && y.dtype != DType::kF32) {
    return absl::InvalidArgumentError(absl::StrCat("Linear: y is ", Name(y.dtype), "; it must be ", Name(dtype_),
                                                   " or F32"));
  }
  if (x.dim(1) != w.dim(1) || y.dim(0) != x.dim(0) || y.dim(1) != w.dim(0) ||
      (bias != nullptr && (bias->dtype != DType::kF32 || bias->dim(0) != w.dim(0)))) {
    return absl::InvalidArgumentError(absl::StrCat("Linear: shapes x [", x.dim(0), ", ", x.dim(1), "], w [", w.dim(0),
                                                   ", ", w.dim(1), "], y [", y.dim(0), ", ", y.dim(1),
                                                   "] or the bias do not agree"));
  }
  cuda::GemmShape s;
  s.n = x.dim(0);
  s.in = x.dim(1);
  s.out = w.dim(0);
  s.dtype = dtype_;
  s.out_dtype = y.dtype;
  s.bias = bias != nullptr;
  if (s.n == 0 || s.out == 0) return absl::OkStatus();
  TANDEM_ASSIGN_OR_RETURN(const LinearPath path, ChooseLinear(s, x, w, bias, y));
  return RunLinear(path, s, x, w, bias, y);
}

absl::Status CudaBackend::RopeAndStoreKv(const Tensor& qkv, const Tensor& rope, const BatchLayout& layout,
                                         const AttentionShape& shape, const LayerKv& kv) {
  TANDEM_RETURN_IF_ERROR(Bind());
  TANDEM_RETURN_IF_ERROR(CheckActivation(qkv, "RopeAndStoreKv", "qkv"));
  TANDEM_RETURN_IF_ERROR(CheckActivation(kv.k, "RopeAndStoreKv", "the KV cache"));
  cuda::RopeStoreKvArgs a;
  a.qkv = qkv.data;
  a.rope = rope.as<float>();
  a.positions = layout.positions.as<int32_t>();
  a.slots = layout.slot_mapping.as<int32_t>();
  a.k_cache = kv.k.data;
  a.v_cache = kv.v.data;
  a.num_tokens = layout.num_tokens;
  a.num_heads = shape.num_heads;
  a.num_kv_heads = shape.num_kv_heads;
  a.head_dim = shape.head_dim;
  a.dtype = dtype_;
  return Launched(cuda::LaunchRopeStoreKv(a, stream_), "RopeAndStoreKv");
}

absl::Status CudaBackend::Attention(const Tensor& qkv, const BatchLayout& layout, const AttentionShape& shape,
                                    const LayerKv& kv, const Tensor& out) {
  TANDEM_RETURN_IF_ERROR(Bind());
  TANDEM_RETURN_IF_ERROR(CheckActivation(qkv, "Attention", "qkv"));
  TANDEM_RETURN_IF_ERROR(CheckActivation(kv.k, "Attention", "the KV cache"));
  cuda::AttentionArgs a;
  a.qkv = qkv.data;
  a.k_cache = kv.k.data;
  a.v_cache = kv.v.data;
  a.out = out.data;
  a.query_start = layout.query_start.as<int32_t>();
  a.context_lens = layout.context_lens.as<int32_t>();
  a.block_tables = layout.block_tables.as<int32_t>();
  a.dims.num_seqs = layout.num_seqs;
  a.dims.num_tokens = layout.num_tokens;
  a.dims.num_heads = shape.num_heads;
  a.dims.num_kv_heads = shape.num_kv_heads;
  a.dims.head_dim = shape.head_dim;
  a.dims.max_query_len = layout.max_query_len;
  a.dims.max_context_len = layout.max_context_len;
  a.block_size = shape.block_size;
  a.max_blocks_per_seq = layout.max_blocks_per_seq;
  a.scale = shape.scale;
  a.scratch = attention_scratch_ ? static_cast<float*>(attention_scratch_->data()) : nullptr;
  a.scratch_floats = attention_scratch_floats_;
  a.split_token_limit = split_token_limit_;
  a.dtype = dtype_;
  return Launched(cuda::LaunchAttention(a, limits_, stream_), "Attention");
}

absl::Status CudaBackend::SiluMul(const Tensor& gate_up, const Tensor& out) {
  TANDEM_RETURN_IF_ERROR(Bind());
  TANDEM_RETURN_IF_ERROR(CheckActivation(gate_up, "SiluMul", "gate_up"));
  cuda::SiluMulArgs a;
  a.gate_up = gate_up.data;
  a.out = out.data;
  a.rows = out.dim(0);
  a.inter = out.dim(1);
  a.dtype = dtype_;
  return Launched(cuda::LaunchSiluMul(a, stream_), "SiluMul");
}

absl::Status CudaBackend::GatherRows(const Tensor& x, const Tensor& rows, const Tensor& out) {
  TANDEM_RETURN_IF_ERROR(Bind());
  cuda::GatherRowsArgs a;
  a.x = x.data;
  a.rows = rows.as<int32_t>();
  a.out = out.data;
  a.num_rows = rows.dim(0);
  a.width = x.dim(1);
  a.dtype = x.dtype;
  return Launched(cuda::LaunchGatherRows(a, stream_), "GatherRows");
}

absl::Status CudaBackend::Sample(const Tensor& logits, std::span<const SampleRow> rows, int32_t* host_tokens,
                                 float* host_logprobs) {
  TANDEM_RETURN_IF_ERROR(Bind());
  TANDEM_RETURN_IF_ERROR(RequireReserved("Sample"));
  const int32_t n = static_cast<int32_t>(rows.size());
  if (n == 0) return absl::OkStatus();
  if (logits.dtype != DType::kF32 || logits.dim(0) < n) {
    return absl::InvalidArgumentError(absl::StrCat("Sample: logits must be F32 with >= ", n, " rows"));
  }
  if (n > sample_capacity_ || logits.dim(1) > reserved_limits_.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat("Sample: ", n, " rows of ", logits.dim(1),
                                                   " logits exceed the reserved ", sample_capacity_, " rows of ",
                                                   reserved_limits_.vocab_size));
  }
  const int64_t vocab = logits.dim(1);
  auto* params = static_cast<cuda::DeviceSampleRow*>(host_params_->data());
  auto* sampled = static_cast<int32_t*>(host_rows_->data());
  int32_t num_sampled = 0;
  for (int32_t r = 0; r < n; ++r) {
    params[r] = cuda::DeviceSampleRow{rows[r].uniform, rows[r].temperature, rows[r].top_p, rows[r].top_k, 0};
    if (rows[r].temperature != 0.0f) sampled[num_sampled++] = r;
  }
  TANDEM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(sample_params_->data(), params, n * sizeof(cuda::DeviceSampleRow),
                                              cudaMemcpyHostToDevice, stream_),
                              "Sample parameters");
  cuda::ArgmaxArgs argmax;
  argmax.logits = logits.as<float>();
  argmax.vocab = vocab;
  argmax.rows = n;
  argmax.tokens = static_cast<int32_t*>(sample_tokens_->data());
  argmax.logprobs = static_cast<float*>(sample_logprobs_->data());
  argmax.stats = static_cast<cuda::SampleRowStats*>(sample_stats_->data());
  TANDEM_RETURN_IF_ERROR(Launched(cuda::LaunchArgmax(argmax, stream_), "Sample (argmax)"));
  if (num_sampled > 0) {
    TANDEM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(sample_rows_->data(), sampled, num_sampled * 4,
                                                cudaMemcpyHostToDevice, stream_),
                                "Sample rows");
    for (int32_t begin = 0; begin < num_sampled; begin += cuda::kSampleSortRows) {
      cuda::RandomSampleArgs a;
      a.logits = logits.as<float>();
      a.vocab = vocab;
      a.params = static_cast<const cuda::DeviceSampleRow*>(sample_params_->data());
      a.stats = argmax.stats;
      a.sampled_rows = static_cast<const int32_t*>(sample_rows_->data()) + begin;
      a.num_sampled = std::min(cuda::kSampleSortRows, num_sampled - begin);
      a.tokens = argmax.tokens;
      a.logprobs = argmax.logprobs;
      a.scratch = sort_scratch_->data();
      a.scratch_bytes = static_cast<size_t>(sort_scratch_->size());
      TANDEM_RETURN_IF_ERROR(Launched(cuda::LaunchRandomSample(a, stream_), "Sample (random)"));
    }
  }
  TANDEM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host_tokens_->data(), argmax.tokens, n * 4, cudaMemcpyDeviceToHost,
                                              stream_),
                              "Sample tokens");
  if (host_logprobs != nullptr) {
    TANDEM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host_logprobs_->data(), argmax.logprobs, n * 4,
                                                cudaMemcpyDeviceToHost, stream_),
                                "Sample logprobs");
  }
  TANDEM_RETURN_IF_ERROR(Synchronize());
  std::memcpy(host_tokens, host_tokens_->data(), n * 4);
  if (host_logprobs != nullptr) std::memcpy(host_logprobs, host_logprobs_->data(), n * 4);
  return absl::OkStatus();
}

absl::Status CudaBackend::FillUniform(const Tensor& t, uint64_t seed, float offset, float scale) {
  TANDEM_RETURN_IF_ERROR(Bind());
  cuda::FillUniformArgs a;
  a.data = t.data;
  a.count = t.num_elements();
  a.seed = seed;
  a.offset = offset;
  a.scale = scale;
  a.dtype = t.dtype;
  return Launched(cuda::LaunchFillUniform(a, stream_), "FillUniform");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(const CudaBackendOptions& options) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess || count == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--backend cuda: no CUDA device was found (",
        error == cudaSuccess ? std::string("the driver reports 0 devices")
                             : absl::StrCat(cudaGetErrorName(error), ": ", cudaGetErrorString(error)),
        ")"));
  }
  if (options.device < 0 || options.device >= count) {
    return absl::InvalidArgumentError(
        absl::StrCat("--device ", options.device, ": this machine has ", count, " CUDA device(s), 0..", count - 1));
  }
  if (options.dtype == DType::kI32) return absl::InvalidArgumentError("--dtype: I32 is not a compute type");
  auto backend = std::make_unique<CudaBackend>(options.device, options.dtype);
  TANDEM_RETURN_IF_ERROR(backend->Init());
  return backend;
}

}  // namespace tandem
