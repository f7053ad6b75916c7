// A LLaMA-family transformer, written once against the Backend interface.
//
// Load() reads config.json and the safetensors weights of a Hugging Face checkpoint directory,
// converts them to the backend's weight dtype and places them on the device; CreateRandom() makes the
// same model with random weights drawn on the device (benchmarks of shapes we have no files for).
// Q/K/V projections are concatenated into one matrix and gate/up into another, so each layer runs four
// GEMMs.
//
// Step() runs one forward pass over a batch of sequences — several prompts, several decode tokens, or
// both — writing each new token's K/V into the paged cache, and samples each sequence's next token on
// the device: only the sampled ids (and logprobs when asked) come back to the host. Forward() returns
// the logits instead (tests, the profiler). The caller (an engine) owns block allocation; both validate
// what they are given (token ids within the vocabulary, positions within the context, block tables
// covering the tokens) and return InvalidArgument instead of touching memory out of bounds.
//
// Workspaces are allocated once, at load, from ModelLoadOptions' max_batch_tokens and max_seqs: no step
// allocates device memory. A step with more tokens or sequences than that runs as consecutive chunks
// (a long prompt is prefilled in pieces over its own cached KV). On a backend with graphs, decode steps
// (one new token per sequence) are padded to a bucket size and replayed as a graph recorded on the
// bucket's first use; prompts run eagerly.
//
// Thread safety: one thread at a time (it drives the backend's engine stream).
#ifndef TANDEM_MODEL_MODEL_H_
#define TANDEM_MODEL_MODEL_H_

#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backend/backend.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/step_plan.h"

namespace tandem {

class Checkpoint;

struct ModelLoadOptions {
  // Longest sequence (prompt + output) the engine will run; 0 means the config's
  // max_position_embeddings. Sizes the RoPE table.
  int64_t max_context = 0;
  // Tokens and sequences of the largest step the fixed workspaces hold; larger steps run in chunks.
  int64_t max_batch_tokens = 2048;
  int32_t max_seqs = 256;
  // Replay decode steps as graphs where the backend has them.
  bool use_graphs = true;
  // On a backend whose memory is host memory (the CPU), a weight matrix the checkpoint stores exactly as
  // the backend holds it (same dtype, not fused with another) is used in place in the file's read-only
  // mapping: no copy at load, and processes on the same files share the pages. The files must not
  // change while the model is loaded. Off by default: copies in 2 MiB-aligned huge-page memory decode
  // 10-20% faster than the mapping's unaligned tensors on 4 KiB pages (bench/engine.md).
  bool map_weights = false;
};

// One sequence's share of a forward step.
struct SequenceStep {
  std::span<const int32_t> tokens;       // the new tokens, >= 1
  int64_t num_cached = 0;                // tokens of this sequence already in the KV cache
  std::span<const int32_t> block_table;  // must hold >= BlocksForTokens(num_cached + tokens.size())
};

struct StepResult {
  std::vector<int32_t> tokens;  // [num_seqs]: the sampled next token of each sequence
  std::vector<float> logprobs;  // [num_seqs] when asked: log softmax(logits)[token]; else empty
};

class Model {
 public:
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& model_dir, Backend& backend,
                                                     const ModelLoadOptions& options = {});
  // Weights uniform in +-1/sqrt(fan_in) (norm weights 1), drawn on the device from `seed`.
  static absl::StatusOr<std::unique_ptr<Model>> CreateRandom(const ModelConfig& config, Backend& backend,
                                                             const ModelLoadOptions& options, uint64_t seed);

  const ModelConfig& config() const { return config_; }
  int64_t max_context() const { return max_context_; }
  int64_t vocab_size() const { return config_.vocab_size; }
  const ModelLoadOptions& options() const { return options_; }
  // Bytes of weights on the device (the embedding table counted once when tied).
  int64_t weight_bytes() const { return weight_bytes_; }
  // Of weight_bytes, those used in place in the checkpoint's file mapping (ModelLoadOptions::map_weights).
  int64_t mapped_weight_bytes() const { return mapped_weight_bytes_; }
  // The dtype the weight matrices are held in (the embedding table and Linear weights).
  DType matrix_dtype() const { return embed_.dtype; }
  // Bytes of the fixed workspaces (activations, logits, indices) and of the backend's reserved scratch
  // are not in weight_bytes; this is the model's own share.
  int64_t workspace_bytes() const { return workspace_bytes_; }
  // Bytes of weights read by one decode step: everything but the embedding table, which is gathered
  // (when tied, the lm_head read is the table).
  int64_t weight_bytes_per_step() const;
  KvCacheSpec MakeKvSpec(int32_t block_size, int32_t num_blocks) const;
  // Graphs recorded so far (one per decode bucket used).
  int32_t num_graphs() const { return static_cast<int32_t>(graphs_.size()); }

  // Runs the step and samples one token per sequence (rows[s] for steps[s]).
  absl::StatusOr<StepResult> Step(const std::vector<SequenceStep>& steps, KvCache& cache,
                                  std::span<const SampleRow> rows, bool want_logprobs = false);
  // Returns logits [steps.size(), vocab] as host floats.
  absl::StatusOr<std::vector<float>> Forward(const std::vector<SequenceStep>& steps, KvCache& cache);

  // Called on the stepping thread after each layer is issued (not from a replayed graph), so that an
  // engine's progress watchdog sees a long prompt step move (worker/heartbeat.h). Set it before stepping
  // and clear it (nullptr) before its target goes away; not thread-safe against a running step.
  void set_progress_hook(std::function<void()> hook) { progress_hook_ = std::move(hook); }

 private:
  std::function<void()> progress_hook_;

  struct Layer {
    Tensor input_norm;   // [hidden]
    Tensor qkv;          // [q_size + 2 kv_size, hidden]
    Tensor qkv_bias;     // f32 [q_size + 2 kv_size] (data null when the model has none)
    Tensor o_proj;       // [hidden, q_size]
    Tensor post_norm;    // [hidden]
    Tensor gate_up;      // [2 inter, hidden]
    Tensor down;         // [hidden, inter]
  };
  // Activation buffers, allocated once at load for max_batch_tokens rows (per token) and max_seqs rows
  // (per sequence).
  struct Workspace {
    std::unique_ptr<DeviceBuffer> residual, normed, qkv, attn, delta, gate_up, act;  // per token
    std::unique_ptr<DeviceBuffer> last, logits;                                      // per sequence
    // int32 tokens + layout tensors, on the device and in page-locked host memory; sized for the
    // block size of the cache in use (table_stride blocks per sequence).
    std::unique_ptr<DeviceBuffer> indices, host_indices;
    int32_t table_stride = 0;
  };
  // Offsets (in int32 elements) of the parts of the index block of one step.
  struct IndexLayout {
    int64_t tokens = 0, positions = 0, slots = 0, query_start = 0, context_lens = 0, last_rows = 0,
            tables = 0, total = 0;
  };
  // One chunk of a step, as it goes to the device.
  struct Chunk {
    int32_t num_seqs = 0;
    int32_t num_tokens = 0;
    int32_t table_stride = 0;
    int32_t max_query = 0;
    int32_t max_context = 0;
  };

  Model(const ModelConfig& config, Backend& backend, const ModelLoadOptions& options)
      : config_(config), backend_(backend), options_(options) {}
  static absl::StatusOr<std::unique_ptr<Model>> Create(const ModelConfig& config, Backend& backend,
                                                       const ModelLoadOptions& options);
  absl::Status LoadWeights(const std::string& model_dir);
  absl::Status RandomWeights(uint64_t seed);
  absl::Status BuildRopeTable();
  absl::Status AllocateWorkspace();
  absl::Status EnsureIndexCapacity(int32_t block_size);
  absl::StatusOr<Tensor> Upload(const std::vector<float>& host, Shape shape,
                                std::optional<DType> dtype_override = std::nullopt);
  absl::StatusOr<Tensor> AllocateWeight(Shape shape, DType dtype);
  // A weight matrix [sum of part rows, cols] in `dtype`: the parts (checkpoint tensors [rows, cols])
  // stacked, converted without a float32 detour, or the mapped tensor itself (map_weights).
  struct MatrixPart {
    std::string name;
    int64_t rows = 0;
  };
  absl::StatusOr<Tensor> LoadMatrix(const Checkpoint& ckpt, const std::vector<MatrixPart>& parts, int64_t cols,
                                    DType dtype);

  absl::Status Validate(const std::vector<SequenceStep>& steps, const KvCache& cache) const;
  static IndexLayout MakeIndexLayout(int32_t num_tokens, int32_t num_seqs, int32_t table_stride);
  // Fills the host index block for `pieces` of `steps` (padded to `pad_seqs` one-token sequences when
  // larger than the pieces) and returns the chunk's shape.
  Chunk FillIndices(const std::vector<SequenceStep>& steps, std::span<const ChunkPiece> pieces,
                    int32_t block_size, int32_t pad_seqs, int32_t table_stride);
  BatchLayout MakeLayout(const Chunk& chunk, Tensor* token_ids);
  // Embedding -> layers -> final norm -> logits of each sequence's last token (device, f32).
  absl::Status RunLayers(const BatchLayout& layout, const Tensor& token_ids, KvCache& cache);
  // Runs one chunk and leaves its logits [chunk sequences, vocab] in ws_.logits.
  absl::Status RunChunk(const std::vector<SequenceStep>& steps, std::span<const ChunkPiece> pieces,
                        KvCache& cache);
  Tensor Logits(int32_t rows) const;

  ModelConfig config_;
  Backend& backend_;
  ModelLoadOptions options_;
  int64_t max_context_ = 0;
  int64_t weight_bytes_ = 0;
  int64_t workspace_bytes_ = 0;
  std::vector<std::unique_ptr<DeviceBuffer>> weight_buffers_;
  std::shared_ptr<const Checkpoint> mapped_checkpoint_;  // set when weights point into its mapping
  int64_t mapped_weight_bytes_ = 0;
  Tensor embed_;       // [vocab, hidden]
  Tensor final_norm_;  // [hidden]
  Tensor lm_head_;     // [vocab, hidden] (== embed_ when tied)
  Tensor rope_;        // f32 [max_context, head_dim]: cos | sin halves
  std::vector<Layer> layers_;
  Workspace ws_;
  bool graphs_supported_ = true;  // cleared when the backend answers Unimplemented
  std::vector<int32_t> graph_buckets_;
  std::map<int32_t, std::unique_ptr<Graph>> graphs_;  // by bucket
  std::set<int32_t> failed_buckets_;                  // buckets whose recording failed: eager
  // The cache buffers (and block size) the graphs were recorded against: another cache means recording
  // again.
  std::vector<const void*> graph_cache_pointers_;
};

}  // namespace tandem

#endif  // TANDEM_MODEL_MODEL_H_
