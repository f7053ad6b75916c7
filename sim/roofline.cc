#include "sim/roofline.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace tandem::sim {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr std::string_view kSetPrefix = "roofline-";
constexpr int kSetTensorParallel[] = {1, 2, 4, 8};

// Vendor figures (datasheets, BF16 dense, i.e. half the "with sparsity" number the sheets headline).
// Memory is the datasheet's "GB" read as GiB: HBM stacks come in binary sizes and the devices report
// about that much (an A100 80GB shows 81,920 MiB in nvidia-smi); memory_utilization absorbs the rest.
// Link bandwidth is per direction: the sheets give NVLink as the bidirectional total.
//
// Why these efficiencies (round figures chosen before comparing to anything, not fitted):
//  - mfu 0.6: cuBLAS BF16 GEMMs at LLM shapes reach about 70-80% of peak on A100/H100, but a whole
//    forward pass also runs norms, activations, rotary and softmax, and attention kernels at lower
//    efficiency; end-to-end utilisation published for large models sits around half of peak (e.g.
//    Megatron-LM, Narayanan et al. SC'21: 52% of an A100's peak training GPT-3 175B). 0.6 sits between.
//  - bandwidth 0.8: streaming kernels reach about 80-90% of HBM peak; decode GEMVs and paged-attention
//    reads of small blocks less.
//  - link 0.8: NCCL all-reduce bus bandwidth on NVLink reaches about 75-85% of the per-direction peak
//    for large messages (nccl-tests on DGX A100: roughly 230 GB/s of 300).
const GpuSpec kGpus[] = {
    // NVIDIA A100 Tensor Core GPU datasheet (80GB SXM): BF16 312 TFLOPS, 2,039 GB/s HBM2e, 80 GB,
    // NVLink 600 GB/s.
    {.name = "a100-80g",
     .peak_flops = 312e12,
     .memory_bandwidth_bytes_per_s = 2.039e12,
     .memory_bytes = 80 * kGiB,
     .link_bandwidth_bytes_per_s = 300e9},
    // NVIDIA H100 Tensor Core GPU datasheet (H100 SXM): BF16 1,979 TFLOPS with sparsity, 3.35 TB/s HBM3,
    // 80 GB, NVLink 900 GB/s.
    {.name = "h100-sxm",
     .peak_flops = 989e12,
     .memory_bandwidth_bytes_per_s = 3.35e12,
     .memory_bytes = 80 * kGiB,
     .link_bandwidth_bytes_per_s = 450e9},
    // NVIDIA H200 Tensor Core GPU datasheet (H200 SXM): BF16 1,979 TFLOPS with sparsity, 4.8 TB/s HBM3e,
    // 141 GB, NVLink 900 GB/s.
    {.name = "h200",
     .peak_flops = 989e12,
     .memory_bandwidth_bytes_per_s = 4.8e12,
     .memory_bytes = 141 * kGiB,
     .link_bandwidth_bytes_per_s = 450e9},
    // NVIDIA L40S datasheet: BF16 362.05 TFLOPS (733 with sparsity), 864 GB/s GDDR6, 48 GB, no NVLink:
    // PCIe Gen4 x16, 64 GB/s bidirectional (about 25 GB/s per direction after link_efficiency).
    {.name = "l40s",
     .peak_flops = 362e12,
     .memory_bandwidth_bytes_per_s = 0.864e12,
     .memory_bytes = 48 * kGiB,
     .link_bandwidth_bytes_per_s = 32e9},
};

constexpr double kMsPerS = 1e3;

absl::Status Invalid(const ModelShape& shape, const GpuSpec& gpu, int tp, const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat("roofline of ", shape.name, " on ", gpu.name, " at tp=", tp, ": ", what));
}

}  // namespace

absl::StatusOr<GpuSpec> BuiltinGpuSpec(std::string_view name) {
  for (const GpuSpec& gpu : kGpus) {
    if (gpu.name == name) return gpu;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown GPU \"", std::string(name), "\" (known: ",
                                                 absl::StrJoin(BuiltinGpuNames(), ", "), ")"));
}

std::vector<std::string> BuiltinGpuNames() {
  std::vector<std::string> names;
  for (const GpuSpec& gpu : kGpus) names.push_back(gpu.name);
  return names;
}

absl::StatusOr<ModelWeights> CountWeights(const ModelShape& shape) {
  if (shape.num_layers <= 0 || shape.hidden_size <= 0 || shape.num_heads <= 0 || shape.num_kv_heads <= 0 ||
      shape.head_dim <= 0 || shape.dtype_bytes <= 0 || shape.intermediate_size <= 0 || shape.vocab_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model shape ", shape.name,
                     ": layers, hidden, heads, kv_heads, head_dim, dtype_bytes, intermediate_size and "
                     "vocab_size must all be > 0"));
  }
  const double h = shape.hidden_size;
  const double q = static_cast<double>(shape.num_heads) * shape.head_dim;
  const double kv = static_cast<double>(shape.num_kv_heads) * shape.head_dim;
  const double mlp_matrices = shape.gated_mlp ? 3.0 : 2.0;
  ModelWeights w;
  // Q and O are h x q; K and V are h x kv each.
  w.non_embedding_params =
      shape.num_layers * (2.0 * h * q + 2.0 * h * kv + mlp_matrices * h * shape.intermediate_size);
  w.lm_head_params = static_cast<double>(shape.vocab_size) * h;
  w.total_params = w.non_embedding_params + w.lm_head_params * (shape.tied_embeddings ? 1.0 : 2.0);
  w.bytes = w.total_params * shape.dtype_bytes;
  return w;
}

absl::StatusOr<RooflineTerms> ComputeRooflineTerms(const ModelShape& shape, const GpuSpec& gpu, int tp,
                                                   const RooflineOptions& options) {
  if (tp < 1) return Invalid(shape, gpu, tp, "tp must be >= 1");
  absl::StatusOr<ModelWeights> weights = CountWeights(shape);
  if (!weights.ok()) return weights.status();
  if (shape.num_heads % tp != 0) {
    return Invalid(shape, gpu, tp, absl::StrCat("tp does not divide the ", shape.num_heads, " attention heads"));
  }
  if (shape.num_kv_heads % tp != 0 && tp % shape.num_kv_heads != 0) {
    return Invalid(shape, gpu, tp,
                   absl::StrCat("the ", shape.num_kv_heads, " KV heads cannot be split or replicated over tp"));
  }
  if (!(gpu.peak_flops > 0) || !(gpu.memory_bandwidth_bytes_per_s > 0) || !(gpu.memory_bytes > 0) ||
      !(gpu.mfu > 0 && gpu.mfu <= 1) || !(gpu.bandwidth_efficiency > 0 && gpu.bandwidth_efficiency <= 1) ||
      !(gpu.link_efficiency > 0 && gpu.link_efficiency <= 1) || (tp > 1 && !(gpu.link_bandwidth_bytes_per_s > 0))) {
    return Invalid(shape, gpu, tp,
                   "GPU peak FLOP/s, memory bandwidth and size (and link bandwidth when tp > 1) must be > 0, and "
                   "the efficiencies in (0, 1]");
  }
  if (!(options.memory_utilization > 0 && options.memory_utilization <= 1) || options.activation_reserve_bytes < 0 ||
      options.allreduce_latency_ms < 0 || options.kv_link_latency_ms < 0) {
    return Invalid(shape, gpu, tp,
                   "memory_utilization must be in (0, 1] and the reserve and latencies >= 0");
  }

  const double flops_per_s = gpu.peak_flops * gpu.mfu;                                  // F
  const double bytes_per_s = gpu.memory_bandwidth_bytes_per_s * gpu.bandwidth_efficiency;  // M
  const double link_bytes_per_s = gpu.link_bandwidth_bytes_per_s * gpu.link_efficiency;    // N
  const double layers = shape.num_layers;
  const double q = static_cast<double>(shape.num_heads) * shape.head_dim;
  const double dtype = shape.dtype_bytes;
  const double p = weights->non_embedding_params;
  const double e = weights->lm_head_params;

  RooflineTerms t;
  const double weight_read_ms = (p + e) * dtype / tp / bytes_per_s * kMsPerS;
  // Two all-reduces per layer, each of h * dtype bytes per token; ring: 2*(tp-1)/tp of it on the wire.
  const double allreduce_per_token_ms =
      tp > 1 ? 2.0 * layers * 2.0 * (tp - 1) / tp * shape.hidden_size * dtype / link_bytes_per_s * kMsPerS : 0.0;
  const double allreduce_per_step_ms = tp > 1 ? 2.0 * layers * options.allreduce_latency_ms : 0.0;

  t.prefill_compute.b = 2.0 * p / tp / flops_per_s * kMsPerS;
  // Causal attention of one sequence: l^2/2 (query, key) pairs, 2*head_dim FLOPs each for QK^T and
  // again for PV, per head: 2 * q * l^2 per layer.
  t.prefill_compute.c = 2.0 * layers * q / tp / flops_per_s * kMsPerS;
  t.prefill_memory.a = weight_read_ms;
  t.prefill_communication.a = allreduce_per_step_ms;
  t.prefill_communication.b = allreduce_per_token_ms;

  const double kv_heads_per_gpu = std::max(1.0, static_cast<double>(shape.num_kv_heads) / tp);
  t.kv_bytes_per_token_per_gpu = 2.0 * layers * kv_heads_per_gpu * shape.head_dim * dtype;
  t.decode_memory.a = weight_read_ms;
  t.decode_memory.b = t.kv_bytes_per_token_per_gpu / bytes_per_s * kMsPerS;
  // One query against each context token: 2*head_dim FLOPs for QK^T and 2*head_dim for PV per head.
  t.decode_compute.b = 4.0 * layers * q / tp / flops_per_s * kMsPerS;
  t.decode_compute.c = 2.0 * (p + e) / tp / flops_per_s * kMsPerS;
  t.decode_communication.a = allreduce_per_step_ms;
  t.decode_communication.c = allreduce_per_token_ms;

  t.kv_capacity_tokens = (gpu.memory_bytes * options.memory_utilization - weights->bytes / tp -
                          options.activation_reserve_bytes) /
                         t.kv_bytes_per_token_per_gpu;
  return t;
}

absl::StatusOr<policy::LatencyModelParams> RooflineProfile(const ModelShape& shape, const GpuSpec& gpu, int tp,
                                                           const RooflineOptions& options) {
  absl::StatusOr<RooflineTerms> terms = ComputeRooflineTerms(shape, gpu, tp, options);
  if (!terms.ok()) return terms.status();
  if (terms->kv_capacity_tokens < options.min_kv_capacity_tokens) {
    const ModelWeights weights = *CountWeights(shape);
    return Invalid(shape, gpu, tp,
                   absl::StrFormat("does not fit: %.1f GiB of weights per GPU plus a %.1f GiB reserve in "
                                   "%.1f GiB x %.2f usable leave room for %.0f KV tokens (need >= %.0f); use more tp",
                                   weights.bytes / tp / kGiB, options.activation_reserve_bytes / kGiB,
                                   gpu.memory_bytes / kGiB, options.memory_utilization,
                                   std::max(0.0, terms->kv_capacity_tokens), options.min_kv_capacity_tokens));
  }
  const auto sum = [](const policy::QuadraticCoefficients& x, const policy::QuadraticCoefficients& y,
                      const policy::QuadraticCoefficients& z) {
    return policy::QuadraticCoefficients{x.a + y.a + z.a, x.b + y.b + z.b, x.c + y.c + z.c};
  };
  policy::LatencyModelParams params;
  params.model = shape.name;
  params.gpu = gpu.name;
  params.engine = "roofline";
  params.tp = tp;
  params.pp = 1;
  params.prefill = sum(terms->prefill_compute, terms->prefill_memory, terms->prefill_communication);
  params.decode_small = sum(terms->decode_compute, terms->decode_memory, terms->decode_communication);
  params.decode_large = params.decode_small;
  params.prefill_overhead_ms = options.prefill_overhead_ms;
  params.decode_overhead_ms = options.decode_overhead_ms;
  params.kv_capacity_tokens = static_cast<int64_t>(terms->kv_capacity_tokens);
  params.kv_bytes_per_token = shape.KvBytesPerToken();
  // Same-node transfer over one GPU's link (conservative: a TP group's shards could move in parallel).
  params.link_bandwidth_bytes_per_s = gpu.link_bandwidth_bytes_per_s * gpu.link_efficiency;
  params.link_latency_ms = options.kv_link_latency_ms;
  return params;
}

bool IsRooflineProfileSet(std::string_view name) { return name.substr(0, kSetPrefix.size()) == kSetPrefix; }

absl::StatusOr<std::vector<policy::LatencyModel>> RooflineProfileSet(std::string_view name, std::string_view model,
                                                                     const RooflineOptions& options) {
  if (!IsRooflineProfileSet(name)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", std::string(name), "\" is not a roofline-<gpu> profile set"));
  }
  absl::StatusOr<GpuSpec> gpu = BuiltinGpuSpec(name.substr(kSetPrefix.size()));
  if (!gpu.ok()) return absl::InvalidArgumentError(absl::StrCat(std::string(name), ": ", gpu.status().message()));
  absl::StatusOr<ModelShape> shape = BuiltinModelShape(model);
  if (!shape.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(name), " needs a built-in model shape: ",
                                                   shape.status().message()));
  }
  std::vector<policy::LatencyModel> models;
  std::vector<std::string> skipped;
  for (int tp : kSetTensorParallel) {
    if (shape->num_heads % tp != 0) continue;
    absl::StatusOr<policy::LatencyModelParams> params = RooflineProfile(*shape, *gpu, tp, options);
    if (!params.ok()) {
      skipped.emplace_back(params.status().message());
      continue;
    }
    absl::StatusOr<policy::LatencyModel> latency_model = policy::LatencyModel::Create(*std::move(params));
    if (!latency_model.ok()) {
      return absl::InternalError(absl::StrCat(std::string(name), " for ", shape->name, " at tp=", tp,
                                              " is not a valid latency model: ", latency_model.status().message()));
    }
    models.push_back(*std::move(latency_model));
  }
  if (models.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(name), ": no tensor-parallel degree fits: ",
                                                   absl::StrJoin(skipped, "; ")));
  }
  return models;
}

}  // namespace tandem::sim
