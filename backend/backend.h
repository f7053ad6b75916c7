// The op interface the transformer is written against, once, for every device.
//
// A Backend owns device memory and runs the ops of one LLaMA-family forward pass plus sampling. The CPU
// backend (backend/cpu) is the reference for every other backend: each op has a plain-loop reference,
// and every faster path is checked against it by tests/backend_conformance_test.cc (and, on a GPU,
// tests/gpu/cuda_conformance_test.cc).
//
// Tensors (types/tensor.h) are non-owning, row-major, contiguous views of device memory (for the CPU
// backend, host memory). Index tensors (token ids, positions, slot mapping, block tables) are kI32.
// Activations and the KV cache are in activation_dtype(); the weight matrices of Linear and the
// embedding table in matrix_dtype(checkpoint dtype) (weight_dtype() unless the backend computes on
// the checkpoint's own 16-bit weights, as the CPU backend does); norms' weights in weight_dtype();
// biases, the RoPE table and logits are float32.
//
// Streams. Every op runs, in order, on the backend's engine stream and may run asynchronously;
// Synchronize() waits for all of them. Ops on the engine stream are issued by one thread at a time (the
// engine's). Transfers of KV between the cache and the host run on a Stream the caller made with
// NewStream(), through CopyAsync / SynchronizeStream; those two may be called from any thread, each
// Stream by one thread at a time. Ordering between streams is the caller's: KV a transfer reads must
// have been written by a step that completed (engines synchronize at the end of each step), and KV a
// transfer writes is used only after SynchronizeStream returned.
//
// Workspaces. Reserve() is called once, before the first op, with the engine's limits; a backend sizes
// its scratch (attention partials, sampling buffers, GEMM workspace) from them so that no step
// allocates, which is what lets decode steps be captured as graphs.
//
// Errors are returned, never thrown.
#ifndef TANDEM_BACKEND_BACKEND_H_
#define TANDEM_BACKEND_BACKEND_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "types/dtype.h"
#include "types/sampling.h"
#include "types/tensor.h"

namespace tandem {

// Device memory owned by a backend; freed on destruction.
class DeviceBuffer {
 public:
  virtual ~DeviceBuffer() = default;
  virtual void* data() = 0;
  virtual int64_t size() const = 0;
};

// An ordered queue of copies, independent of the engine stream (see the header comment).
class Stream {
 public:
  virtual ~Stream() = default;
};

// A recorded sequence of ops on the engine stream, replayed as one launch (a CUDA graph). The buffers
// and scalar arguments it was recorded with are baked in: replays read new inputs only through the
// device memory those buffers point at.
class Graph {
 public:
  virtual ~Graph() = default;
  virtual absl::Status Launch() = 0;
};

// The layout of one forward step over several sequences (a batch of prompts, decode tokens, or both).
// Sequence s contributes new tokens [query_start[s], query_start[s+1]) of the batch; after the step
// its KV holds context_lens[s] tokens, so its new tokens sit at positions
// context_lens[s] - q_len .. context_lens[s] - 1, and each attends causally to positions <= its own.
// A token whose slot_mapping is negative is padding: its KV is not stored. A sequence whose
// context_lens is 0 is padding: its attention output is zero.
// max_query_len and max_context_len are upper bounds (a graph is recorded with the largest values it
// may be replayed with); kernels read the exact lengths from the tensors.
struct BatchLayout {
  int32_t num_seqs = 0;
  int32_t num_tokens = 0;
  int32_t max_blocks_per_seq = 0;
  int32_t max_query_len = 0;
  int32_t max_context_len = 0;
  Tensor positions;        // kI32 [num_tokens]
  Tensor slot_mapping;     // kI32 [num_tokens]: block_id * block_size + offset of each new token's KV
  Tensor query_start;      // kI32 [num_seqs + 1]
  Tensor context_lens;     // kI32 [num_seqs]
  Tensor block_tables;     // kI32 [num_seqs, max_blocks_per_seq]; entries past a sequence's end unused
  Tensor last_token_rows;  // kI32 [num_seqs]: row in the batch of each sequence's last new token
};

// Paged KV storage of one layer.
struct LayerKv {
  Tensor k;  // [num_blocks, block_size, num_kv_heads, head_dim]
  Tensor v;  // [num_blocks, block_size, num_kv_heads, head_dim]
};

struct AttentionShape {
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t block_size = 0;
  float scale = 0.0f;  // usually 1/sqrt(head_dim)
};

// The largest step an engine will run, given to Reserve().
struct WorkspaceLimits {
  int64_t max_tokens = 0;   // new tokens per step
  int32_t max_seqs = 0;     // sequences per step (and rows per Sample call)
  int32_t max_context = 0;  // tokens of one sequence
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  int64_t vocab_size = 0;
  int64_t max_linear_out = 0;  // widest Linear output (for split-K or staging scratch)
};

struct DeviceMemoryInfo {
  int64_t free_bytes = 0;       // on the whole device, other processes' use taken out
  int64_t total_bytes = 0;
  int64_t allocated_bytes = 0;  // held by this backend now (weights, workspaces, scratch, pinned excluded)
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;
  // The dtype the model should store weights in, and the dtype of activations and the KV cache.
  virtual DType weight_dtype() const = 0;
  virtual DType activation_dtype() const = 0;
  // The dtype of Linear weights and the embedding table for a checkpoint whose matrices are stored in
  // `stored`: the model converts to it at load (no conversion, or a mapping of the file, when equal).
  virtual DType matrix_dtype(DType stored) const { return weight_dtype(); }
  // True when device memory is host memory (the CPU backends): KV can be read and written in place.
  virtual bool host_memory() const = 0;

  // --- memory ---
  virtual absl::StatusOr<std::unique_ptr<DeviceBuffer>> Allocate(int64_t bytes) = 0;
  // Page-locked host memory for staging copies (plain host memory on the CPU backends).
  virtual absl::StatusOr<std::unique_ptr<DeviceBuffer>> AllocateHost(int64_t bytes) = 0;
  // Synchronous copies on the engine stream (they wait for the ops before them).
  virtual absl::Status CopyHostToDevice(void* device_dst, const void* host_src, int64_t bytes) = 0;
  virtual absl::Status CopyDeviceToHost(void* host_dst, const void* device_src, int64_t bytes) = 0;
  // Copy on the engine stream without waiting (host memory must be from AllocateHost and stay valid
  // until the next Synchronize()).
  virtual absl::Status CopyToDeviceAsync(void* device_dst, const void* host_src, int64_t bytes) = 0;
  virtual absl::Status Synchronize() = 0;
  // Free and total device memory (UnimplementedError on the CPU backends).
  virtual absl::StatusOr<DeviceMemoryInfo> MemoryInfo() = 0;
  // Sizes the backend's scratch for steps within `limits`; called once, before any op.
  virtual absl::Status Reserve(const WorkspaceLimits& limits) = 0;

  // --- transfer streams (any thread; see the header comment) ---
  virtual absl::StatusOr<std::unique_ptr<Stream>> NewStream() = 0;
  // Any direction between device memory and host memory.
  virtual absl::Status CopyAsync(void* dst, const void* src, int64_t bytes, Stream& stream) = 0;
  virtual absl::Status SynchronizeStream(Stream& stream) = 0;

  // --- graphs ---
  // Records the ops `record` issues on the engine stream without running them. UnimplementedError
  // where the backend has no graphs (the model then runs every step eagerly).
  virtual absl::StatusOr<std::unique_ptr<Graph>> CaptureGraph(const std::function<absl::Status()>& record) = 0;

  // --- ops (shapes in comments; n = num_tokens) ---
  // out[i] = table[tokens[i]]. Token ids were validated by the caller against vocab.
  virtual absl::Status Embedding(const Tensor& tokens,  // kI32 [n]
                                 const Tensor& table,   // [vocab, hidden]
                                 const Tensor& out) = 0;  // [n, hidden]
  // out = x / sqrt(mean(x^2) + eps) * weight, per row.
  virtual absl::Status RmsNorm(const Tensor& x,       // [n, hidden]
                               const Tensor& weight,  // [hidden]
                               float eps,
                               const Tensor& out) = 0;  // [n, hidden]
  // residual += delta; out = RmsNorm(residual).
  virtual absl::Status AddRmsNorm(const Tensor& residual,  // [n, hidden], updated in place
                                  const Tensor& delta,     // [n, hidden]
                                  const Tensor& weight,    // [hidden]
                                  float eps,
                                  const Tensor& out) = 0;  // [n, hidden]
  // y = x · wᵀ (+ bias). y is in the activation dtype or float32 (logits).
  virtual absl::Status Linear(const Tensor& x,      // [n, in]
                              const Tensor& w,      // [out, in]
                              const Tensor* bias,   // f32 [out] or null
                              const Tensor& y) = 0;  // [n, out]
  // Rotates the q and k parts of qkv in place (HF rotate-half convention) with the precomputed table,
  // then writes k and v of every token into the paged cache at slot_mapping.
  virtual absl::Status RopeAndStoreKv(const Tensor& qkv,        // [n, (heads + 2 kv_heads) * head_dim]
                                      const Tensor& rope,       // f32 [max_pos, head_dim]: cos | sin
                                      const BatchLayout& layout,
                                      const AttentionShape& shape,
                                      const LayerKv& kv) = 0;
  // Causal attention of each new token over its sequence's cached KV (read through the block table).
  virtual absl::Status Attention(const Tensor& qkv,  // [n, (heads + 2 kv_heads) * head_dim]; reads q
                                 const BatchLayout& layout,
                                 const AttentionShape& shape,
                                 const LayerKv& kv,
                                 const Tensor& out) = 0;  // [n, heads * head_dim]
  // out = silu(gate) * up where gate_up = [gate | up].
  virtual absl::Status SiluMul(const Tensor& gate_up,  // [n, 2 * inter]
                               const Tensor& out) = 0;  // [n, inter]
  // out[j] = x[rows[j]].
  virtual absl::Status GatherRows(const Tensor& x,     // [n, hidden]
                                  const Tensor& rows,  // kI32 [m]
                                  const Tensor& out) = 0;  // [m, hidden]
  // One token per row of logits (SampleRowReference is the spec), copied to host_tokens; when
  // host_logprobs is not null, log softmax(logits)[token] at temperature 1 too. Waits for the step.
  virtual absl::Status Sample(const Tensor& logits,             // f32 [rows.size(), vocab]
                              std::span<const SampleRow> rows,  // host
                              int32_t* host_tokens,             // [rows.size()]
                              float* host_logprobs) = 0;        // [rows.size()] or null
  // Fills a floating tensor with offset + uniform values in [-scale, scale] from `seed` (random-weight
  // models for benchmarks, made on the device without host files). Deterministic per backend, not
  // across backends.
  virtual absl::Status FillUniform(const Tensor& t, uint64_t seed, float offset, float scale) = 0;
};

}  // namespace tandem

#endif  // TANDEM_BACKEND_BACKEND_H_
