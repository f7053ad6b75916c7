// Running a Model: validation, the index block of a step, chunking, decode graphs, sampling.
#include "model/model.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "model/step_plan.h"

namespace tandem {

absl::Status Model::Validate(const std::vector<SequenceStep>& steps, const KvCache& cache) const {
  const ModelConfig& c = config_;
  const KvCacheSpec& spec = cache.spec();
  if (steps.empty()) return absl::InvalidArgumentError("Forward: no sequences");
  if (spec.num_layers != c.num_hidden_layers || spec.num_kv_heads != c.num_key_value_heads ||
      spec.head_dim != c.head_dim || spec.dtype != backend_.activation_dtype()) {
    return absl::FailedPreconditionError("Forward: the KV cache was made for another model shape or dtype");
  }
  for (size_t s = 0; s < steps.size(); ++s) {
    const SequenceStep& step = steps[s];
    const int64_t total = step.num_cached + static_cast<int64_t>(step.tokens.size());
    if (step.tokens.empty()) return absl::InvalidArgumentError(absl::StrCat("sequence ", s, ": no new tokens"));
    if (step.num_cached < 0 || total > max_context_) {
      return absl::InvalidArgumentError(absl::StrCat("sequence ", s, ": ", total,
                                                     " tokens exceed the context length ", max_context_));
    }
    if (static_cast<int64_t>(step.block_table.size()) < BlocksForTokens(total, spec.block_size)) {
      return absl::InvalidArgumentError(absl::StrCat("sequence ", s, ": block table of ", step.block_table.size(),
                                                     " blocks cannot hold ", total, " tokens"));
    }
    for (int32_t id : step.tokens) {
      if (id < 0 || id >= c.vocab_size) {
        return absl::InvalidArgumentError(
            absl::StrCat("token id ", id, " is outside the vocabulary [0, ", c.vocab_size, ")"));
      }
    }
    for (int32_t b : step.block_table) {
      if (b < 0 || b >= spec.num_blocks) {
        return absl::InvalidArgumentError(absl::StrCat("sequence ", s, ": block id ", b, " out of range"));
      }
    }
  }
  return absl::OkStatus();
}

Model::IndexLayout Model::MakeIndexLayout(int32_t num_tokens, int32_t num_seqs, int32_t table_stride) {
  // tokens | positions | slots | query_start | context_lens | last_rows | tables
  IndexLayout l;
  l.tokens = 0;
  l.positions = l.tokens + num_tokens;
  l.slots = l.positions + num_tokens;
  l.query_start = l.slots + num_tokens;
  l.context_lens = l.query_start + num_seqs + 1;
  l.last_rows = l.context_lens + num_seqs;
  l.tables = l.last_rows + num_seqs;
  l.total = l.tables + static_cast<int64_t>(num_seqs) * table_stride;
  return l;
}

Model::Chunk Model::FillIndices(const std::vector<SequenceStep>& steps, std::span<const ChunkPiece> pieces,
                                int32_t block_size, int32_t pad_seqs, int32_t table_stride) {
  Chunk chunk;
  chunk.num_seqs = std::max<int32_t>(static_cast<int32_t>(pieces.size()), pad_seqs);
  for (const ChunkPiece& p : pieces) chunk.num_tokens += static_cast<int32_t>(p.num_tokens);
  chunk.num_tokens += chunk.num_seqs - static_cast<int32_t>(pieces.size());  // one token per padding row
  chunk.table_stride = table_stride;
  const IndexLayout l = MakeIndexLayout(chunk.num_tokens, chunk.num_seqs, table_stride);
  int32_t* host = static_cast<int32_t*>(ws_.host_indices->data());
  int32_t* tokens = host + l.tokens;
  int32_t* positions = host + l.positions;
  int32_t* slots = host + l.slots;
  int32_t* query_start = host + l.query_start;
  int32_t* context_lens = host + l.context_lens;
  int32_t* last_rows = host + l.last_rows;
  int32_t* tables = host + l.tables;
  int32_t row = 0;
  for (size_t s = 0; s < pieces.size(); ++s) {
    const ChunkPiece& piece = pieces[s];
    const SequenceStep& step = steps[piece.seq];
    const int64_t cached = step.num_cached + piece.token_begin;
    query_start[s] = row;
    for (int64_t j = 0; j < piece.num_tokens; ++j, ++row) {
      const int64_t pos = cached + j;
      tokens[row] = step.tokens[piece.token_begin + j];
      positions[row] = static_cast<int32_t>(pos);
      slots[row] = step.block_table[pos / block_size] * block_size + static_cast<int32_t>(pos % block_size);
    }
    context_lens[s] = static_cast<int32_t>(cached + piece.num_tokens);
    last_rows[s] = row - 1;
    const int32_t blocks = BlocksForTokens(context_lens[s], block_size);
    std::copy(step.block_table.begin(), step.block_table.begin() + blocks, tables + s * table_stride);
    std::fill(tables + s * table_stride + blocks, tables + (s + 1) * table_stride, 0);
    chunk.max_query = std::max<int32_t>(chunk.max_query, static_cast<int32_t>(piece.num_tokens));
    chunk.max_context = std::max(chunk.max_context, context_lens[s]);
  }
  // Padding rows: one token each, no KV stored (slot -1), no context (zero attention output).
  for (int32_t s = static_cast<int32_t>(pieces.size()); s < chunk.num_seqs; ++s, ++row) {
    query_start[s] = row;
    tokens[row] = 0;
    positions[row] = 0;
    slots[row] = -1;
    context_lens[s] = 0;
    last_rows[s] = row;
    std::fill(tables + s * table_stride, tables + (s + 1) * table_stride, 0);
  }
  query_start[chunk.num_seqs] = row;
  return chunk;
}

BatchLayout Model::MakeLayout(const Chunk& chunk, Tensor* token_ids) {
  const IndexLayout l = MakeIndexLayout(chunk.num_tokens, chunk.num_seqs, chunk.table_stride);
  int32_t* dev = static_cast<int32_t*>(ws_.indices->data());
  auto index = [&](int64_t offset, Shape shape) { return Tensor{dev + offset, DType::kI32, shape}; };
  BatchLayout layout;
  layout.num_seqs = chunk.num_seqs;
  layout.num_tokens = chunk.num_tokens;
  layout.max_blocks_per_seq = chunk.table_stride;
  layout.max_query_len = chunk.max_query;
  layout.max_context_len = chunk.max_context;
  layout.positions = index(l.positions, {chunk.num_tokens});
  layout.slot_mapping = index(l.slots, {chunk.num_tokens});
  layout.query_start = index(l.query_start, {chunk.num_seqs + 1});
  layout.context_lens = index(l.context_lens, {chunk.num_seqs});
  layout.last_token_rows = index(l.last_rows, {chunk.num_seqs});
  layout.block_tables = index(l.tables, {chunk.num_seqs, chunk.table_stride});
  *token_ids = index(l.tokens, {chunk.num_tokens});
  return layout;
}

Tensor Model::Logits(int32_t rows) const {
  return Tensor{ws_.logits->data(), DType::kF32, {rows, config_.vocab_size}};
}

absl::Status Model::RunLayers(const BatchLayout& layout, const Tensor& token_ids, KvCache& cache) {
  const ModelConfig& c = config_;
  const DType act = backend_.activation_dtype();
  const int64_t n = layout.num_tokens, h = c.hidden_size, qkv_width = c.q_size() + 2 * c.kv_size();
  auto buf = [&](const std::unique_ptr<DeviceBuffer>& b, Shape shape) { return Tensor{b->data(), act, shape}; };
  const Tensor residual = buf(ws_.residual, {n, h});
  const Tensor normed = buf(ws_.normed, {n, h});
  const Tensor qkv = buf(ws_.qkv, {n, qkv_width});
  const Tensor attn = buf(ws_.attn, {n, c.q_size()});
  const Tensor delta = buf(ws_.delta, {n, h});
  const Tensor gate_up = buf(ws_.gate_up, {n, 2 * c.intermediate_size});
  const Tensor mlp = buf(ws_.act, {n, c.intermediate_size});
  const Tensor last = buf(ws_.last, {layout.num_seqs, h});
  const Tensor logits = Logits(layout.num_seqs);

  AttentionShape shape;
  shape.num_heads = static_cast<int32_t>(c.num_attention_heads);
  shape.num_kv_heads = static_cast<int32_t>(c.num_key_value_heads);
  shape.head_dim = static_cast<int32_t>(c.head_dim);
  shape.block_size = cache.spec().block_size;
  shape.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
  const float eps = static_cast<float>(c.rms_norm_eps);

  TANDEM_RETURN_IF_ERROR(backend_.Embedding(token_ids, embed_, residual));
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    if (l == 0) {
      TANDEM_RETURN_IF_ERROR(backend_.RmsNorm(residual, layer.input_norm, eps, normed));
    } else {
      TANDEM_RETURN_IF_ERROR(backend_.AddRmsNorm(residual, delta, layer.input_norm, eps, normed));
    }
    TANDEM_RETURN_IF_ERROR(
        backend_.Linear(normed, layer.qkv, layer.qkv_bias.data ? &layer.qkv_bias : nullptr, qkv));
    TANDEM_RETURN_IF_ERROR(backend_.RopeAndStoreKv(qkv, rope_, layout, shape, cache.layer(l)));
    TANDEM_RETURN_IF_ERROR(backend_.Attention(qkv, layout, shape, cache.layer(l), attn));
    TANDEM_RETURN_IF_ERROR(backend_.Linear(attn, layer.o_proj, nullptr, delta));
    TANDEM_RETURN_IF_ERROR(backend_.AddRmsNorm(residual, delta, layer.post_norm, eps, normed));
    TANDEM_RETURN_IF_ERROR(backend_.Linear(normed, layer.gate_up, nullptr, gate_up));
    TANDEM_RETURN_IF_ERROR(backend_.SiluMul(gate_up, mlp));
    TANDEM_RETURN_IF_ERROR(backend_.Linear(mlp, layer.down, nullptr, delta));
    if (progress_hook_) progress_hook_();
  }
  TANDEM_RETURN_IF_ERROR(backend_.AddRmsNorm(residual, delta, final_norm_, eps, normed));
  TANDEM_RETURN_IF_ERROR(backend_.GatherRows(normed, layout.last_token_rows, last));
  return backend_.Linear(last, lm_head_, nullptr, logits);
}

absl::Status Model::RunChunk(const std::vector<SequenceStep>& steps, std::span<const ChunkPiece> pieces,
                             KvCache& cache) {
  const int32_t block_size = cache.spec().block_size;
  TANDEM_RETURN_IF_ERROR(EnsureIndexCapacity(block_size));
  // The host index block is about to be rewritten: the previous chunk's copy of it must be done.
  TANDEM_RETURN_IF_ERROR(backend_.Synchronize());
  const int32_t num_pieces = static_cast<int32_t>(pieces.size());
  const bool decode = std::all_of(pieces.begin(), pieces.end(), [&](const ChunkPiece& p) {
    return p.num_tokens == 1 && steps[p.seq].tokens.size() == 1;
  });
  if (graph_buckets_.empty()) {
    graph_buckets_ = GraphBuckets(static_cast<int32_t>(std::min<int64_t>(options_.max_seqs, options_.max_batch_tokens)));
  }
  int32_t bucket = decode && options_.use_graphs && graphs_supported_ ? ChooseGraphBucket(num_pieces, graph_buckets_)
                                                                      : 0;
  if (failed_buckets_.contains(bucket)) bucket = 0;
  if (bucket == 0) {
    // Eager: a compact block table as wide as the longest sequence of the chunk.
    int32_t stride = 1;
    for (const ChunkPiece& p : pieces) {
      const int64_t context = steps[p.seq].num_cached + p.token_begin + p.num_tokens;
      stride = std::max(stride, BlocksForTokens(context, block_size));
    }
    const Chunk chunk = FillIndices(steps, pieces, block_size, 0, stride);
    const IndexLayout l = MakeIndexLayout(chunk.num_tokens, chunk.num_seqs, chunk.table_stride);
    TANDEM_RETURN_IF_ERROR(backend_.CopyToDeviceAsync(ws_.indices->data(), ws_.host_indices->data(), l.total * 4));
    Tensor token_ids;
    const BatchLayout layout = MakeLayout(chunk, &token_ids);
    return RunLayers(layout, token_ids, cache);
  }

  // Graph: the bucket's padded layout, with the widest block table and the longest context the graph
  // may ever see baked in (the kernels read the exact lengths from the index block).
  std::vector<const void*> cache_pointers;
  for (int32_t l = 0; l < cache.spec().num_layers; ++l) {
    cache_pointers.push_back(cache.layer(l).k.data);
    cache_pointers.push_back(cache.layer(l).v.data);
  }
  cache_pointers.push_back(reinterpret_cast<const void*>(static_cast<intptr_t>(block_size)));
  if (cache_pointers != graph_cache_pointers_) {  // recorded against another cache: record again
    graphs_.clear();
    graph_cache_pointers_ = std::move(cache_pointers);
  }
  const int32_t stride = BlocksForTokens(max_context_, block_size);
  Chunk chunk = FillIndices(steps, pieces, block_size, bucket, stride);
  chunk.max_query = 1;
  chunk.max_context = static_cast<int32_t>(max_context_);
  const IndexLayout l = MakeIndexLayout(chunk.num_tokens, chunk.num_seqs, chunk.table_stride);
  TANDEM_RETURN_IF_ERROR(backend_.CopyToDeviceAsync(ws_.indices->data(), ws_.host_indices->data(), l.total * 4));
  Tensor token_ids;
  const BatchLayout layout = MakeLayout(chunk, &token_ids);
  auto it = graphs_.find(bucket);
  if (it != graphs_.end()) return it->second->Launch();
  // First use of the bucket: run it eagerly (which also lets the backend pick its kernels by
  // measurement outside the recording), then record it for the next steps.
  TANDEM_RETURN_IF_ERROR(RunLayers(layout, token_ids, cache));
  absl::StatusOr<std::unique_ptr<Graph>> graph =
      backend_.CaptureGraph([&]() { return RunLayers(layout, token_ids, cache); });
  if (absl::IsUnimplemented(graph.status())) {
    graphs_supported_ = false;
    return absl::OkStatus();
  }
  if (!graph.ok()) {
    // A step that cannot be recorded still ran; this bucket runs eagerly from now on.
    TANDEM_LOG(WARNING, "model") << "decode graph for batch " << bucket << " not recorded (that batch size runs "
                                 << "eagerly): " << graph.status();
    failed_buckets_.insert(bucket);
    return absl::OkStatus();
  }
  graphs_[bucket] = std::move(*graph);
  return absl::OkStatus();
}

absl::StatusOr<StepResult> Model::Step(const std::vector<SequenceStep>& steps, KvCache& cache,
                                       std::span<const SampleRow> rows, bool want_logprobs) {
  TANDEM_RETURN_IF_ERROR(Validate(steps, cache));
  if (rows.size() != steps.size()) {
    return absl::InvalidArgumentError(absl::StrCat("Step: ", rows.size(), " sampling rows for ", steps.size(),
                                                   " sequences"));
  }
  std::vector<int64_t> sizes;
  for (const SequenceStep& s : steps) sizes.push_back(static_cast<int64_t>(s.tokens.size()));
  StepResult result;
  result.tokens.assign(steps.size(), 0);
  if (want_logprobs) result.logprobs.assign(steps.size(), 0.0f);
  std::vector<SampleRow> chunk_rows;
  std::vector<int32_t> chunk_tokens;
  std::vector<float> chunk_logprobs;
  for (const std::vector<ChunkPiece>& pieces : PlanChunks(sizes, options_.max_batch_tokens, options_.max_seqs)) {
    TANDEM_RETURN_IF_ERROR(RunChunk(steps, pieces, cache));
    // Sample the rows of the sequences whose last token is in this chunk. Rows of the other sequences
    // (a prompt continued in the next chunk) are sampled too when they precede one that ends here, and
    // their tokens are dropped: sampling is per row and draws nothing for a row not asked for.
    int32_t sample_rows = 0;
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (pieces[i].last) sample_rows = static_cast<int32_t>(i) + 1;
    }
    if (sample_rows == 0) continue;
    chunk_rows.assign(sample_rows, SampleRow{});
    for (int32_t i = 0; i < sample_rows; ++i) {
      if (pieces[i].last) chunk_rows[i] = rows[pieces[i].seq];
    }
    chunk_tokens.assign(sample_rows, 0);
    chunk_logprobs.assign(sample_rows, 0.0f);
    TANDEM_RETURN_IF_ERROR(backend_.Sample(Logits(sample_rows), chunk_rows, chunk_tokens.data(),
                                           want_logprobs ? chunk_logprobs.data() : nullptr));
    for (int32_t i = 0; i < sample_rows; ++i) {
      if (!pieces[i].last) continue;
      result.tokens[pieces[i].seq] = chunk_tokens[i];
      if (want_logprobs) result.logprobs[pieces[i].seq] = chunk_logprobs[i];
    }
  }
  return result;
}

absl::StatusOr<std::vector<float>> Model::Forward(const std::vector<SequenceStep>& steps, KvCache& cache) {
  TANDEM_RETURN_IF_ERROR(Validate(steps, cache));
  std::vector<int64_t> sizes;
  for (const SequenceStep& s : steps) sizes.push_back(static_cast<int64_t>(s.tokens.size()));
  const int64_t vocab = config_.vocab_size;
  std::vector<float> out(steps.size() * vocab);
  for (const std::vector<ChunkPiece>& pieces : PlanChunks(sizes, options_.max_batch_tokens, options_.max_seqs)) {
    TANDEM_RETURN_IF_ERROR(RunChunk(steps, pieces, cache));
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (!pieces[i].last) continue;
      TANDEM_RETURN_IF_ERROR(backend_.CopyDeviceToHost(out.data() + pieces[i].seq * vocab,
                                                       static_cast<const float*>(ws_.logits->data()) + i * vocab,
                                                       vocab * 4));
    }
  }
  TANDEM_RETURN_IF_ERROR(backend_.Synchronize());
  return out;
}

}  // namespace tandem
