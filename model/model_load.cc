// Loading a Model: weights from a checkpoint directory or drawn at random on the device, the RoPE
// table, and the fixed workspaces.
#include "model/model.h"

#include <algorithm>
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

absl::StatusOr<std::unique_ptr<Model>> Model::Create(const ModelConfig& config, Backend& backend,
                                                     const ModelLoadOptions& options) {
  if (config.head_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: head_dim ", config.head_dim, " must be even for RoPE"));
  }
  if (options.max_batch_tokens < 1 || options.max_seqs < 1) {
    return absl::InvalidArgumentError(absl::StrCat("model options: max_batch_tokens ", options.max_batch_tokens,
                                                   " and max_seqs ", options.max_seqs, " must be >= 1"));
  }
  std::unique_ptr<Model> model(new Model(config, backend, options));
  model->max_context_ = options.max_context > 0
                            ? std::min<int64_t>(options.max_context, config.max_position_embeddings)
                            : config.max_position_embeddings;
  return model;
}

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& model_dir, Backend& backend,
                                                   const ModelLoadOptions& options) {
  TANDEM_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  auto model = Create(config, backend, options);
  if (!model.ok()) {
    return absl::Status(model.status().code(), absl::StrCat(model_dir, "/", model.status().message()));
  }
  TANDEM_RETURN_IF_ERROR((*model)->LoadWeights(model_dir));
  TANDEM_RETURN_IF_ERROR((*model)->BuildRopeTable());
  TANDEM_RETURN_IF_ERROR((*model)->AllocateWorkspace());
  return model;
}

absl::StatusOr<std::unique_ptr<Model>> Model::CreateRandom(const ModelConfig& config, Backend& backend,
                                                           const ModelLoadOptions& options, uint64_t seed) {
  TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Create(config, backend, options));
  TANDEM_RETURN_IF_ERROR(model->RandomWeights(seed));
  TANDEM_RETURN_IF_ERROR(model->BuildRopeTable());
  TANDEM_RETURN_IF_ERROR(model->AllocateWorkspace());
  return model;
}

absl::StatusOr<Tensor> Model::AllocateWeight(Shape shape, DType dtype) {
  Tensor t{nullptr, dtype, shape};
  TANDEM_ASSIGN_OR_RETURN(auto buffer, backend_.Allocate(t.num_bytes()));
  t.data = buffer->data();
  weight_bytes_ += t.num_bytes();
  weight_buffers_.push_back(std::move(buffer));
  return t;
}

absl::StatusOr<Tensor> Model::Upload(const std::vector<float>& host, Shape shape,
                                      std::optional<DType> dtype_override) {
  // The CPU backend keeps float32; a backend that wants another weight dtype gets converted bytes.
  const DType dtype = dtype_override.value_or(backend_.weight_dtype());
  TANDEM_ASSIGN_OR_RETURN(Tensor t, AllocateWeight(shape, dtype));
  if (dtype == DType::kF32) {
    TANDEM_RETURN_IF_ERROR(backend_.CopyHostToDevice(t.data, host.data(), t.num_bytes()));
  } else {
    std::vector<uint16_t> converted(host.size());
    ConvertFromF32(dtype, host.data(), static_cast<int64_t>(host.size()), converted.data());
    TANDEM_RETURN_IF_ERROR(backend_.CopyHostToDevice(t.data, converted.data(), t.num_bytes()));
  }
  return t;
}

absl::StatusOr<Tensor> Model::LoadMatrix(const Checkpoint& ckpt, const std::vector<MatrixPart>& parts,
                                         int64_t cols, DType dtype) {
  std::vector<TensorView> views;
  int64_t rows = 0;
  for (const MatrixPart& part : parts) {
    TANDEM_ASSIGN_OR_RETURN(TensorView view, ckpt.FindWithShape(part.name, {part.rows, cols}));
    views.push_back(std::move(view));
    rows += part.rows;
  }
  const Shape shape{rows, cols};
  const TensorView& first = views[0];
  if (options_.map_weights && backend_.host_memory() && views.size() == 1 && first.dtype == dtype &&
      reinterpret_cast<uintptr_t>(first.data) % DTypeSize(dtype) == 0) {
    // The kernels only read weights, and read them unaligned: the mapping serves as is.
    Tensor t{const_cast<void*>(first.data), dtype, shape};
    weight_bytes_ += t.num_bytes();
    mapped_weight_bytes_ += t.num_bytes();
    return t;
  }
  TANDEM_ASSIGN_OR_RETURN(Tensor t, AllocateWeight(shape, dtype));
  // Host-memory backends are written in place; others through one staging copy in the target dtype.
  std::vector<char> staging(backend_.host_memory() ? 0 : static_cast<size_t>(t.num_bytes()));
  char* dst = backend_.host_memory() ? static_cast<char*>(t.data) : staging.data();
  for (const TensorView& view : views) {
    const int64_t count = view.num_elements();
    ConvertDType(view.dtype, view.data, count, dtype, dst);
    dst += count * DTypeSize(dtype);
    ReleasePages(view);
  }
  if (!backend_.host_memory()) {
    TANDEM_RETURN_IF_ERROR(backend_.CopyHostToDevice(t.data, staging.data(), t.num_bytes()));
  }
  return t;
}

absl::Status Model::LoadWeights(const std::string& model_dir) {
  TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<Checkpoint> opened, Checkpoint::Open(model_dir));
  std::shared_ptr<const Checkpoint> ckpt = std::move(opened);
  const ModelConfig& c = config_;
  const int64_t h = c.hidden_size, q = c.q_size(), kv = c.kv_size(), inter = c.intermediate_size;
  std::vector<float> host;

  // Weight matrices are held in one dtype, chosen by the backend from the checkpoint's (the embedding
  // table's) dtype.
  TANDEM_ASSIGN_OR_RETURN(TensorView embed_view, ckpt->FindWithShape("model.embed_tokens.weight", {c.vocab_size, h}));
  const DType matrix_dtype = backend_.matrix_dtype(embed_view.dtype);
  TANDEM_ASSIGN_OR_RETURN(embed_, LoadMatrix(*ckpt, {{"model.embed_tokens.weight", c.vocab_size}}, h, matrix_dtype));
  TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, "model.norm.weight", {h}, host));
  TANDEM_ASSIGN_OR_RETURN(final_norm_, Upload(host, {h}));
  if (c.tie_word_embeddings && !ckpt->Has("lm_head.weight")) {
    lm_head_ = embed_;
  } else {
    TANDEM_ASSIGN_OR_RETURN(lm_head_, LoadMatrix(*ckpt, {{"lm_head.weight", c.vocab_size}}, h, matrix_dtype));
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

    TANDEM_ASSIGN_OR_RETURN(layer.qkv, LoadMatrix(*ckpt, {{p + "self_attn.q_proj.weight", q},
                                                         {p + "self_attn.k_proj.weight", kv},
                                                         {p + "self_attn.v_proj.weight", kv}},
                                                  h, matrix_dtype));
    if (c.attention_bias) {
      host.clear();
      TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, p + "self_attn.q_proj.bias", {q}, host, 0));
      TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, p + "self_attn.k_proj.bias", {kv}, host, q));
      TANDEM_RETURN_IF_ERROR(ReadF32(*ckpt, p + "self_attn.v_proj.bias", {kv}, host, q + kv));
      // Biases stay float32 on every backend: they are added to float32 accumulators.
      TANDEM_ASSIGN_OR_RETURN(layer.qkv_bias, Upload(host, {q + 2 * kv}, DType::kF32));
    }
    TANDEM_ASSIGN_OR_RETURN(layer.o_proj, LoadMatrix(*ckpt, {{p + "self_attn.o_proj.weight", h}}, q, matrix_dtype));
    TANDEM_ASSIGN_OR_RETURN(layer.gate_up, LoadMatrix(*ckpt, {{p + "mlp.gate_proj.weight", inter},
                                                             {p + "mlp.up_proj.weight", inter}},
                                                      h, matrix_dtype));
    TANDEM_ASSIGN_OR_RETURN(layer.down, LoadMatrix(*ckpt, {{p + "mlp.down_proj.weight", h}}, inter, matrix_dtype));
    layers_.push_back(std::move(layer));
  }
  if (mapped_weight_bytes_ > 0) mapped_checkpoint_ = std::move(ckpt);
  return absl::OkStatus();
}

absl::Status Model::RandomWeights(uint64_t seed) {
  const ModelConfig& c = config_;
  const int64_t h = c.hidden_size, q = c.q_size(), kv = c.kv_size(), inter = c.intermediate_size;
  const DType w = backend_.weight_dtype();
  uint64_t next_seed = seed;
  // Uniform in +-1/sqrt(fan_in) keeps activations O(1) through the layers; norms are exactly 1.
  auto random = [&](Shape shape, DType dtype, float offset, float scale) -> absl::StatusOr<Tensor> {
    TANDEM_ASSIGN_OR_RETURN(Tensor t, AllocateWeight(shape, dtype));
    TANDEM_RETURN_IF_ERROR(backend_.FillUniform(t, ++next_seed, offset, scale));
    return t;
  };
  auto inv_sqrt = [](int64_t n) { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(n))); };
  TANDEM_ASSIGN_OR_RETURN(embed_, random({c.vocab_size, h}, w, 0.0f, 1.0f));
  TANDEM_ASSIGN_OR_RETURN(final_norm_, random({h}, w, 1.0f, 0.0f));
  if (c.tie_word_embeddings) {
    lm_head_ = embed_;
  } else {
    TANDEM_ASSIGN_OR_RETURN(lm_head_, random({c.vocab_size, h}, w, 0.0f, inv_sqrt(h)));
  }
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    Layer layer;
    TANDEM_ASSIGN_OR_RETURN(layer.input_norm, random({h}, w, 1.0f, 0.0f));
    TANDEM_ASSIGN_OR_RETURN(layer.post_norm, random({h}, w, 1.0f, 0.0f));
    TANDEM_ASSIGN_OR_RETURN(layer.qkv, random({q + 2 * kv, h}, w, 0.0f, inv_sqrt(h)));
    if (c.attention_bias) {
      TANDEM_ASSIGN_OR_RETURN(layer.qkv_bias, random({q + 2 * kv}, DType::kF32, 0.0f, 0.1f));
    }
    TANDEM_ASSIGN_OR_RETURN(layer.o_proj, random({h, q}, w, 0.0f, inv_sqrt(q)));
    TANDEM_ASSIGN_OR_RETURN(layer.gate_up, random({2 * inter, h}, w, 0.0f, inv_sqrt(h)));
    TANDEM_ASSIGN_OR_RETURN(layer.down, random({h, inter}, w, 0.0f, inv_sqrt(inter)));
    layers_.push_back(std::move(layer));
  }
  return backend_.Synchronize();
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
  // The RoPE table is read in float32 by every backend; it is not a weight of the checkpoint.
  Tensor t{nullptr, DType::kF32, {max_context_, hd}};
  TANDEM_ASSIGN_OR_RETURN(auto buffer, backend_.Allocate(t.num_bytes()));
  TANDEM_RETURN_IF_ERROR(backend_.CopyHostToDevice(buffer->data(), table.data(), t.num_bytes()));
  t.data = buffer->data();
  rope_ = t;
  workspace_bytes_ += t.num_bytes();
  weight_buffers_.push_back(std::move(buffer));
  return absl::OkStatus();
}

absl::Status Model::AllocateWorkspace() {
  const ModelConfig& c = config_;
  const int64_t act = DTypeSize(backend_.activation_dtype());
  const int64_t n = options_.max_batch_tokens, s = options_.max_seqs;
  auto allocate = [&](std::unique_ptr<DeviceBuffer>& buffer, int64_t bytes) -> absl::Status {
    TANDEM_ASSIGN_OR_RETURN(buffer, backend_.Allocate(bytes));
    workspace_bytes_ += bytes;
    return absl::OkStatus();
  };
  TANDEM_RETURN_IF_ERROR(allocate(ws_.residual, n * c.hidden_size * act));
  TANDEM_RETURN_IF_ERROR(allocate(ws_.normed, n * c.hidden_size * act));
  TANDEM_RETURN_IF_ERROR(allocate(ws_.qkv, n * (c.q_size() + 2 * c.kv_size()) * act));
  TANDEM_RETURN_IF_ERROR(allocate(ws_.attn, n * c.q_size() * act));
  TANDEM_RETURN_IF_ERROR(allocate(ws_.delta, n * c.hidden_size * act));
  TANDEM_RETURN_IF_ERROR(allocate(ws_.gate_up, n * 2 * c.intermediate_size * act));
  TANDEM_RETURN_IF_ERROR(allocate(ws_.act, n * c.intermediate_size * act));
  TANDEM_RETURN_IF_ERROR(allocate(ws_.last, s * c.hidden_size * act));
  TANDEM_RETURN_IF_ERROR(allocate(ws_.logits, s * c.vocab_size * 4));
  // The index block for the default block size of 16; a cache with smaller blocks grows it once.
  TANDEM_RETURN_IF_ERROR(EnsureIndexCapacity(16));

  WorkspaceLimits limits;
  limits.max_tokens = n;
  limits.max_seqs = static_cast<int32_t>(s);
  limits.max_context = static_cast<int32_t>(max_context_);
  limits.num_heads = static_cast<int32_t>(c.num_attention_heads);
  limits.num_kv_heads = static_cast<int32_t>(c.num_key_value_heads);
  limits.head_dim = static_cast<int32_t>(c.head_dim);
  limits.vocab_size = c.vocab_size;
  limits.max_linear_out = std::max({c.vocab_size, c.q_size() + 2 * c.kv_size(), 2 * c.intermediate_size});
  return backend_.Reserve(limits);
}

absl::Status Model::EnsureIndexCapacity(int32_t block_size) {
  const int32_t stride = static_cast<int32_t>((max_context_ + block_size - 1) / block_size);
  if (ws_.indices && stride <= ws_.table_stride) return absl::OkStatus();
  const IndexLayout capacity =
      MakeIndexLayout(static_cast<int32_t>(options_.max_batch_tokens), options_.max_seqs, stride);
  if (ws_.indices) {
    // Recorded graphs point into the old block: they go with it.
    TANDEM_RETURN_IF_ERROR(backend_.Synchronize());
    graphs_.clear();
    failed_buckets_.clear();
    workspace_bytes_ -= 2 * ws_.indices->size();
  }
  const int64_t bytes = capacity.total * 4;
  TANDEM_ASSIGN_OR_RETURN(ws_.indices, backend_.Allocate(bytes));
  TANDEM_ASSIGN_OR_RETURN(ws_.host_indices, backend_.AllocateHost(bytes));
  workspace_bytes_ += 2 * bytes;
  ws_.table_stride = stride;
  return absl::OkStatus();
}

int64_t Model::weight_bytes_per_step() const {
  int64_t bytes = weight_bytes_;
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

}  // namespace tandem
