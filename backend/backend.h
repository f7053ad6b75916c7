// The op interface the transformer is written against, once, for every device.
//
// A Backend owns device memory and runs the ops of one LLaMA-family forward pass. The CPU backend
// (backend/cpu) is the reference for every other backend: each op has a plain-loop reference, and every
// faster path is checked against it by tests/backend_conformance_test.cc.
//
// Tensors are non-owning, row-major, contiguous views of device memory (for the CPU backend, host
// memory). Index tensors (token ids, positions, slot mapping, block tables) are int32 device tensors.
// Activations are float32 on the CPU backend; a backend reports the dtypes it wants for weights and
// activations and the model converts at load.
//
// Thread safety: a Backend instance is used by one engine thread at a time. Ops are issued in order
// and may run asynchronously; Synchronize() waits for all of them. Errors are returned, never thrown.
#ifndef TANDEM_BACKEND_BACKEND_H_
#define TANDEM_BACKEND_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/dtype.h"

namespace tandem {

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;

  int64_t num_elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  int64_t num_bytes() const { return num_elements() * DTypeSize(dtype); }
  int64_t dim(int i) const { return shape[i]; }
  template <typename T>
  T* as() const { return static_cast<T*>(data); }
};

// Device memory owned by a backend; freed on destruction.
class DeviceBuffer {
 public:
  virtual ~DeviceBuffer() = default;
  virtual void* data() = 0;
  virtual int64_t size() const = 0;
};

// The layout of one forward step over several sequences (a batch of prompts, decode tokens, or both).
// Sequence s contributes new tokens [query_start[s], query_start[s+1]) of the batch; after the step
// its KV holds context_lens[s] tokens, so its new tokens sit at positions
// context_lens[s] - q_len .. context_lens[s] - 1, and each attends causally to positions <= its own.
struct BatchLayout {
  int32_t num_seqs = 0;
  int32_t num_tokens = 0;
  int32_t max_blocks_per_seq = 0;
  int32_t max_query_len = 0;
  int32_t max_context_len = 0;
  Tensor positions;      // int32 [num_tokens]
  Tensor slot_mapping;   // int32 [num_tokens]: block_id * block_size + offset of each new token's KV
  Tensor query_start;    // int32 [num_seqs + 1]
  Tensor context_lens;   // int32 [num_seqs]
  Tensor block_tables;   // int32 [num_seqs, max_blocks_per_seq]; entries past a sequence's end unused
  Tensor last_token_rows;  // int32 [num_seqs]: row in the batch of each sequence's last new token
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

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;
  // The dtype the model should store weights in, and the dtype of activations and the KV cache.
  virtual DType weight_dtype() const = 0;
  virtual DType activation_dtype() const = 0;

  // --- memory ---
  virtual absl::StatusOr<std::unique_ptr<DeviceBuffer>> Allocate(int64_t bytes) = 0;
  virtual absl::Status CopyHostToDevice(void* device_dst, const void* host_src, int64_t bytes) = 0;
  virtual absl::Status CopyDeviceToHost(void* host_dst, const void* device_src, int64_t bytes) = 0;
  virtual absl::Status Synchronize() = 0;

  // --- ops (shapes in comments; n = num_tokens) ---
  // out[i] = table[tokens[i]]. Token ids were validated by the caller against vocab.
  virtual absl::Status Embedding(const Tensor& tokens,  // int32 [n]
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
  // y = x · wᵀ (+ bias).
  virtual absl::Status Linear(const Tensor& x,      // [n, in]
                              const Tensor& w,      // [out, in]
                              const Tensor* bias,   // [out] or null
                              const Tensor& y) = 0;  // [n, out]
  // Rotates the q and k parts of qkv in place (HF rotate-half convention) with the precomputed table,
  // then writes k and v of every token into the paged cache at slot_mapping.
  virtual absl::Status RopeAndStoreKv(const Tensor& qkv,        // [n, (heads + 2 kv_heads) * head_dim]
                                      const Tensor& rope,       // [max_pos, head_dim]: cos | sin halves
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
                                  const Tensor& rows,  // int32 [m]
                                  const Tensor& out) = 0;  // [m, hidden]
};

}  // namespace tandem

#endif  // TANDEM_BACKEND_BACKEND_H_
