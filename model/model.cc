#include "model/model.h"

#include <cmath>
#include <numbers>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/safetensors.h"

namespace tandem {
namespace {

// Reads one checkpoint tensor with the expected shape as float32.
absl::Status ReadF32(const Checkpoint& ckpt, const std::string& name, const std::vector<int64_t>& shape,
                     std::vector<float>& out, int64_t offset = 0) {
  TANDEM_ASSIGN_OR_RETURN(TensorView view, ckpt.FindWithShape(name, shape));
  const int64_t count = view.num_elements();
  if (static_cast<int64_t>(out.size()) < offset + count) out.resize(offset + count);
  ConvertToF32(view.dtype, view.data, count, out.data() + offset);
  return absl::OkStatus();
}

// HF _compute_llama3_parameters: long wavelengths are slowed by `factor`, short ones kept, the band
// between blended smoothly.
double ScaleLlama3(double inv_freq, const RopeScaling& s) {
  const double old_len = static_cast<double>(s.original_max_position_embeddings);
  const double low_freq_wavelen = old_len / s.low_freq_factor;
  const double high_freq_wavelen = old_len / s.high_freq_factor;
  const double wavelen = 2.0 * std::numbers::pi / inv_freq;
  if (wavelen < high_freq_wavelen) return inv_freq;
  if (wavelen > low_freq_wavelen) return inv_freq / s.factor;
  const double smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  return (1.0 - smooth) * inv_freq / s.factor + smooth * inv_freq;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& model_dir, Backend& backend,
                                                   const ModelLoadOptions& options) {
  TANDEM_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  if (config.head_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(model_dir, "/config.json: head_dim ", config.head_dim, " must be even for RoPE"));
  }
  std::unique_ptr<Model> model(new Model(config, backend));
  model->max_context_ = options.max_context > 0
                            ? std::min<int64_t>(options.max_context, config.max_position_embeddings)
                            : config.max_position_embeddings;
  TANDEM_RETURN_IF_ERROR(model->LoadWeights(model_dir));
  TANDEM_RETURN_IF_ERROR(model->BuildRopeTable());
  return model;
}

absl::StatusOr<Tensor> Model::Upload(const std::vector<float>& host, std::vector<int64_t> shape,
                                      std::optional<DType> dtype_override) {
  // The CPU backend keeps float32; a backend that wants another weight dtype gets converted bytes.
  const DType dtype = dtype_override.value_or(backend_.weight_dtype());
  Tensor t{nullptr, dtype, std::move(shape)};
  TANDEM_ASSIGN_OR_RETURN(auto buffer, backend_.Allocate(t.num_bytes()));
  if (dtype == DType::kF32) {
    TANDEM_RETURN_IF_ERROR(backend_.CopyHostToDevice(buffer->data(), host.data(), t.num_bytes()));
  } else {
    std::vector<uint16_t> converted(host.size());
    ConvertFromF32(dtype, host.data(), static_cast<int64_t>(host.size()), converted.data());
    TANDEM_RETURN_IF_ERROR(backend_.CopyHostToDevice(buffer->data(), converted.data(), t.num_bytes()));
  }
  t.data = buffer->data();
  weight_bytes_ += t.num_bytes();
  weight_buffers_.push_back(std::move(buffer));
  return t;
}

absl::Status Model::LoadWeights(const std::string& model_dir) {
  TANDEM_ASSIGN_OR_RETURN(auto ckpt, Checkpoint::Open(model_dir));
  const ModelConfig& c = config_;
  const int64_t h = c.hidden_size, q = c.q_size(), kv = c.kv_size(), inter = c.intermediate_size;
  std::vector<float> host;

  TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, "model.embed_tokens.weight", {c.vocab_size, h}, host));
  TANDEM_ASSIGN_OR_RETURN(embed_, Upload(host, {c.vocab_size, h}));
  host.clear();
  TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, "model.norm.weight", {h}, host));
  TANDEM_ASSIGN_OR_RETURN(final_norm_, Upload(host, {h}));
  if (c.tie_word_embeddings && !ckpt->Has("lm_head.weight")) {
    lm_head_ = embed_;
  } else {
    host.clear();
    TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, "lm_head.weight", {c.vocab_size, h}, host));
    TANDEM_ASSIGN_OR_RETURN(lm_head_, Upload(host, {c.vocab_size, h}));
  }

  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    Layer layer;
    host.clear();
    TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, p + "input_layernorm.weight", {h}, host));
    TANDEM_ASSIGN_OR_RETURN(layer.input_norm, Upload(host, {h}));
    host.clear();
    TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, p + "post_attention_layernorm.weight", {h}, host));
    TANDEM_ASSIGN_OR_RETURN(layer.post_norm, Upload(host, {h}));

    host.clear();
    TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, p + "self_attn.q_proj.weight", {q, h}, host, 0));
    TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, p + "self_attn.k_proj.weight", {kv, h}, host, q * h));
    TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, p + "self_attn.v_proj.weight", {kv, h}, host, (q + kv) * h));
    TANDEM_ASSIGN_OR_RETURN(layer.qkv, Upload(host, {q + 2 * kv, h}));
    if (c.attention_bias) {
      host.clear();
      TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, p + "self_attn.q_proj.bias", {q}, host, 0));
      TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, p + "self_attn.k_proj.bias", {kv}, host, q));
      TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, p + "self_attn.v_proj.bias", {kv}, host, q + kv));
      // Biases stay float32 on every backend: they are added to float32 accumulators.
      TANDEM_ASSIGN_OR_RETURN(layer.qkv_bias, Upload(host, {q + 2 * kv}, DType::kF32));
    }
    host.clear();
    TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, p + "self_attn.o_proj.weight", {h, q}, host));
    TANDEM_ASSIGN_OR_RETURN(layer.o_proj, Upload(host, {h, q}));
    host.clear();
    TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, p + "mlp.gate_proj.weight", {inter, h}, host, 0));
    TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, p + "mlp.up_proj.weight", {inter, h}, host, inter * h));
    TANDEM_ASSIGN_OR_RETURN(layer.gate_up, Upload(host, {2 * inter, h}));
    host.clear();
    TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, p + "mlp.down_proj.weight", {h, inter}, host));
    TANDEM_ASSIGN_OR_RETURN(layer.down, Upload(host, {h, inter}));
    layers_.push_back(std::move(layer));
  }
  return absl::OkStatus();
}

absl::Status Model::BuildRopeTable() {
  const int64_t hd = config_.head_dim, half = hd / 2;
  std::vector<double> inv_freq(half);
  for (int64_t d = 0; d < half; ++d) {
    inv_freq[d] = 1.0 / std::pow(config_.rope_theta, static_cast<double>(2 * d) / hd);
    if (config_.rope_scaling.enabled) inv_freq[d] = ScaleLlama3(inv_freq[d], config_.rope_scaling);
  }
  std::vector<float> table(max_context_ * hd);
  for (int64_t pos = 0; pos < max_context_; ++pos) {
    for (int64_t d = 0; d < half; ++d) {
      // HF computes the angle in float32 (pos * inv_freq); double here is at least as accurate.
      const double angle = static_cast<double>(pos) * inv_freq[d];
      table[pos * hd + d] = static_cast<float>(std::cos(angle));
      table[pos * hd + half + d] = static_cast<float>(std::sin(angle));
    }
  }
  // The RoPE table is read in float32 by every backend.
  Tensor t{nullptr, DType::kF32, {max_context_, hd}};
  TANDEM_ASSIGN_OR_RETURN(auto buffer, backend_.Allocate(t.num_bytes()));
  TANDEM_RETURN_IF_ERROR(backend_.CopyHostToDevice(buffer->data(), table.data(), t.num_bytes()));
  t.data = buffer->data();
  rope_ = t;
  weight_buffers_.push_back(std::move(buffer));
  return absl::OkStatus();
}

int64_t Model::weight_bytes_per_step() const {
  int64_t bytes = weight_bytes_ - rope_.num_bytes();
  if (lm_head_.data != embed_.data) bytes -= embed_.num_bytes();
  return bytes;
}

KvCacheSpec Model::MakeKvSpec(int32_t block_size, int32_t num_blocks) const {
  KvCacheSpec spec;
  spec.num_layers = static_cast<int32_t>(config_.num_hidden_layers);
  spec.num_kv_heads = static_cast<int32_t>(config_.num_key_value_heads);
  spec.head_dim = static_cast<int32_t>(config_.head_dim);
  spec.block_size = block_size;
  spec.num_blocks = num_blocks;
  spec.dtype = backend_.activation_dtype();
  return spec;
}

absl::Status Model::EnsureWorkspace(int64_t num_tokens, int64_t num_seqs, int64_t num_indices) {
  const ModelConfig& c = config_;
  const int64_t act = DTypeSize(backend_.activation_dtype());
  auto grow = [&](std::unique_ptr<DeviceBuffer>& buffer, int64_t bytes) -> absl::Status {
    if (buffer && buffer->size() >= bytes) return absl::OkStatus();
    buffer.reset();
    TANDEM_ASSIGN_OR_RETURN(buffer, backend_.Allocate(bytes));
    return absl::OkStatus();
  };
  if (num_tokens > ws_.token_capacity) {
    const int64_t n = std::max<int64_t>(num_tokens, 2 * ws_.token_capacity);
    TANDEM_RETURN_IF_ERROR(grow(ws_.residual, n * c.hidden_size * act));
    TANDEM_RETURN_IF_ERROR(grow(ws_.normed, n * c.hidden_size * act));
    TANDEM_RETURN_IF_ERROR(grow(ws_.qkv, n * (c.q_size() + 2 * c.kv_size()) * act));
    TANDEM_RETURN_IF_ERROR(grow(ws_.attn, n * c.q_size() * act));
    TANDEM_RETURN_IF_ERROR(grow(ws_.delta, n * c.hidden_size * act));
    TANDEM_RETURN_IF_ERROR(grow(ws_.gate_up, n * 2 * c.intermediate_size * act));
    TANDEM_RETURN_IF_ERROR(grow(ws_.act, n * c.intermediate_size * act));
    ws_.token_capacity = n;
  }
  if (num_seqs > ws_.seq_capacity) {
    const int64_t n = std::max<int64_t>(num_seqs, 2 * ws_.seq_capacity);
    TANDEM_RETURN_IF_ERROR(grow(ws_.last, n * c.hidden_size * act));
    TANDEM_RETURN_IF_ERROR(grow(ws_.logits, n * c.vocab_size * 4));
    ws_.seq_capacity = n;
  }
  if (num_indices > ws_.index_capacity) {
    const int64_t n = std::max<int64_t>(num_indices, 2 * ws_.index_capacity);
    TANDEM_RETURN_IF_ERROR(grow(ws_.indices, n * 4));
    ws_.index_capacity = n;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> Model::Forward(const std::vector<SequenceStep>& steps, KvCache& cache) {
  const ModelConfig& c = config_;
  const KvCacheSpec& spec = cache.spec();
  if (steps.empty()) return absl::InvalidArgumentError("Forward: no sequences");
  if (spec.num_layers != c.num_hidden_layers || spec.num_kv_heads != c.num_key_value_heads ||
      spec.head_dim != c.head_dim) {
    return absl::FailedPreconditionError("Forward: the KV cache was made for another model shape");
  }
  // Validate and lay out the batch on the host.
  const int32_t num_seqs = static_cast<int32_t>(steps.size());
  int32_t num_tokens = 0, max_blocks = 1, max_query = 0, max_context = 0;
  for (int32_t s = 0; s < num_seqs; ++s) {
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
    num_tokens += static_cast<int32_t>(step.tokens.size());
    max_blocks = std::max<int32_t>(max_blocks, static_cast<int32_t>(step.block_table.size()));
    max_query = std::max<int32_t>(max_query, static_cast<int32_t>(step.tokens.size()));
    max_context = std::max<int32_t>(max_context, static_cast<int32_t>(total));
  }

  // Host index block: tokens | positions | slots | query_start | context_lens | last_rows | tables.
  const int64_t num_indices = 3LL * num_tokens + (num_seqs + 1) + 2LL * num_seqs +
                              static_cast<int64_t>(num_seqs) * max_blocks;
  std::vector<int32_t> host(num_indices, 0);
  int32_t* tokens = host.data();
  int32_t* positions = tokens + num_tokens;
  int32_t* slots = positions + num_tokens;
  int32_t* query_start = slots + num_tokens;
  int32_t* context_lens = query_start + num_seqs + 1;
  int32_t* last_rows = context_lens + num_seqs;
  int32_t* tables = last_rows + num_seqs;
  int32_t row = 0;
  for (int32_t s = 0; s < num_seqs; ++s) {
    const SequenceStep& step = steps[s];
    query_start[s] = row;
    for (size_t j = 0; j < step.tokens.size(); ++j, ++row) {
      const int64_t pos = step.num_cached + static_cast<int64_t>(j);
      tokens[row] = step.tokens[j];
      positions[row] = static_cast<int32_t>(pos);
      slots[row] = step.block_table[pos / spec.block_size] * spec.block_size +
                   static_cast<int32_t>(pos % spec.block_size);
    }
    context_lens[s] = static_cast<int32_t>(step.num_cached + step.tokens.size());
    last_rows[s] = row - 1;
    std::copy(step.block_table.begin(), step.block_table.end(), tables + s * max_blocks);
  }
  query_start[num_seqs] = row;

  TANDEM_RETURN_IF_ERROR(EnsureWorkspace(num_tokens, num_seqs, num_indices));
  int32_t* dev = static_cast<int32_t*>(ws_.indices->data());
  TANDEM_RETURN_IF_ERROR(backend_.CopyHostToDevice(dev, host.data(), num_indices * 4));
  auto index = [&](int32_t* host_ptr, std::vector<int64_t> shape) {
    return Tensor{dev + (host_ptr - host.data()), DType::kF32 /* unused for int32 */, std::move(shape)};
  };
  BatchLayout layout;
  layout.num_seqs = num_seqs;
  layout.num_tokens = num_tokens;
  layout.max_blocks_per_seq = max_blocks;
  layout.max_query_len = max_query;
  layout.max_context_len = max_context;
  layout.positions = index(positions, {num_tokens});
  layout.slot_mapping = index(slots, {num_tokens});
  layout.query_start = index(query_start, {num_seqs + 1});
  layout.context_lens = index(context_lens, {num_seqs});
  layout.last_token_rows = index(last_rows, {num_seqs});
  layout.block_tables = index(tables, {num_seqs, max_blocks});
  const Tensor token_ids = index(tokens, {num_tokens});

  const DType act = backend_.activation_dtype();
  const int64_t h = c.hidden_size, qkv_width = c.q_size() + 2 * c.kv_size();
  auto buf = [&](std::unique_ptr<DeviceBuffer>& b, std::vector<int64_t> shape) {
    return Tensor{b->data(), act, std::move(shape)};
  };
  const Tensor residual = buf(ws_.residual, {num_tokens, h});
  const Tensor normed = buf(ws_.normed, {num_tokens, h});
  const Tensor qkv = buf(ws_.qkv, {num_tokens, qkv_width});
  const Tensor attn = buf(ws_.attn, {num_tokens, c.q_size()});
  const Tensor delta = buf(ws_.delta, {num_tokens, h});
  const Tensor gate_up = buf(ws_.gate_up, {num_tokens, 2 * c.intermediate_size});
  const Tensor mlp = buf(ws_.act, {num_tokens, c.intermediate_size});
  const Tensor last = buf(ws_.last, {num_seqs, h});
  const Tensor logits{ws_.logits->data(), DType::kF32, {num_seqs, c.vocab_size}};

  AttentionShape shape;
  shape.num_heads = static_cast<int32_t>(c.num_attention_heads);
  shape.num_kv_heads = static_cast<int32_t>(c.num_key_value_heads);
  shape.head_dim = static_cast<int32_t>(c.head_dim);
  shape.block_size = spec.block_size;
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
  }
  TANDEM_RETURN_IF_ERROR(backend_.AddRmsNorm(residual, delta, final_norm_, eps, normed));
  TANDEM_RETURN_IF_ERROR(backend_.GatherRows(normed, layout.last_token_rows, last));
  TANDEM_RETURN_IF_ERROR(backend_.Linear(last, lm_head_, nullptr, logits));
  std::vector<float> out(static_cast<size_t>(num_seqs) * c.vocab_size);
  TANDEM_RETURN_IF_ERROR(backend_.CopyDeviceToHost(out.data(), logits.data, out.size() * 4));
  TANDEM_RETURN_IF_ERROR(backend_.Synchronize());
  return out;
}

}  // namespace tandem
