// A LLaMA-family transformer, written once against the Backend interface.
//
// Load() reads config.json and the safetensors weights of a Hugging Face checkpoint directory,
// converts them to the backend's weight dtype and places them on the device. Q/K/V projections are
// concatenated into one matrix and gate/up into another, so each layer runs four GEMMs.
//
// Forward() runs one step over a batch of sequences — several prompts, several decode tokens, or both —
// writing each new token's K/V into the paged cache and returning the logits of each sequence's last
// new token. The caller (an engine) owns block allocation; Forward validates what it is given (token ids
// within the vocabulary, positions within the context, block tables covering the tokens) and returns
// InvalidArgument instead of touching memory out of bounds.
//
// Thread safety: one thread at a time (it drives one Backend).
#ifndef TANDEM_MODEL_MODEL_H_
#define TANDEM_MODEL_MODEL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backend/backend.h"
#include "model/config.h"
#include "model/kv_cache.h"

namespace tandem {

struct ModelLoadOptions {
  // Longest sequence (prompt + output) the engine will run; 0 means the config's
  // max_position_embeddings. Sizes the RoPE table.
  int64_t max_context = 0;
};

// One sequence's share of a forward step.
struct SequenceStep {
  std::span<const int32_t> tokens;       // the new tokens, >= 1
  int64_t num_cached = 0;                // tokens of this sequence already in the KV cache
  std::span<const int32_t> block_table;  // must hold >= BlocksForTokens(num_cached + tokens.size())
};

class Model {
 public:
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& model_dir, Backend& backend,
                                                     const ModelLoadOptions& options = {});

  const ModelConfig& config() const { return config_; }
  int64_t max_context() const { return max_context_; }
  int64_t vocab_size() const { return config_.vocab_size; }
  // Bytes of weights on the device (the embedding table counted once when tied).
  int64_t weight_bytes() const { return weight_bytes_; }
  // Bytes of weights read by one decode step: everything but the embedding table, which is gathered
  // (when tied, the lm_head read is the table).
  int64_t weight_bytes_per_step() const;
  KvCacheSpec MakeKvSpec(int32_t block_size, int32_t num_blocks) const;

  // Returns logits [steps.size(), vocab] as host floats.
  absl::StatusOr<std::vector<float>> Forward(const std::vector<SequenceStep>& steps, KvCache& cache);

 private:
  struct Layer {
    Tensor input_norm;   // [hidden]
    Tensor qkv;          // [q_size + 2 kv_size, hidden]
    Tensor qkv_bias;     // [q_size + 2 kv_size] (data null when the model has none)
    Tensor o_proj;       // [hidden, q_size]
    Tensor post_norm;    // [hidden]
    Tensor gate_up;      // [2 inter, hidden]
    Tensor down;         // [hidden, inter]
  };
  // Activation buffers, grown to the largest batch seen (no per-step allocation afterwards).
  struct Workspace {
    int64_t token_capacity = 0;
    int64_t seq_capacity = 0;
    int64_t index_capacity = 0;
    std::unique_ptr<DeviceBuffer> residual, normed, qkv, attn, delta, gate_up, act;  // per token
    std::unique_ptr<DeviceBuffer> last, logits;                                      // per sequence
    std::unique_ptr<DeviceBuffer> indices;  // int32 tokens + layout tensors
  };

  Model(const ModelConfig& config, Backend& backend) : config_(config), backend_(backend) {}
  absl::Status LoadWeights(const std::string& model_dir);
  absl::Status BuildRopeTable();
  absl::Status EnsureWorkspace(int64_t num_tokens, int64_t num_seqs, int64_t num_indices);
  absl::StatusOr<Tensor> Upload(const std::vector<float>& host, std::vector<int64_t> shape,
                                std::optional<DType> dtype_override = std::nullopt);

  ModelConfig config_;
  Backend& backend_;
  int64_t max_context_ = 0;
  int64_t weight_bytes_ = 0;
  std::vector<std::unique_ptr<DeviceBuffer>> weight_buffers_;
  Tensor embed_;       // [vocab, hidden]
  Tensor final_norm_;  // [hidden]
  Tensor lm_head_;     // [vocab, hidden] (== embed_ when tied)
  Tensor rope_;        // [max_context, head_dim]: cos | sin halves
  std::vector<Layer> layers_;
  Workspace ws_;
};

}  // namespace tandem

#endif  // TANDEM_MODEL_MODEL_H_
