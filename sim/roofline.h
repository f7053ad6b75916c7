// Analytic roofline latency models: step-time coefficients for a model on a GPU we cannot run here.
//
// A first-order estimate from FLOPs, bytes and the vendor's peak rates, in the DistServe coefficient
// form policy::LatencyModel uses, so the simulator and the placement search run on it unchanged. It has
// no kernel-launch, framework or scheduler overheads (they are what `tandem profile` measures on real
// hardware; prefer a measured profile whenever one exists). Each term is a sum, not a max: a step that
// is partly compute-bound and partly memory-bound is charged for both, which overestimates a little
// where the two overlap.
//
// Notation (per instance of `tp` GPUs, pp = 1, times in ms):
//   P      non-embedding weights = layers * (2*h*q + 2*h*kv + m*h*ffn)   with q = heads*head_dim,
//          kv = kv_heads*head_dim, m = 3 (gated MLP: gate, up, down) or 2 (fc1, fc2); biases and
//          norms are left out (< 0.5% of the weights)
//   E      LM-head weights = vocab * h (read every step; the input embedding is a gather)
//   W      weight bytes held = (P + vocab*h * (tied ? 1 : 2)) * dtype_bytes
//   F      peak dense tensor FLOP/s * mfu;  M  HBM bytes/s * bandwidth_efficiency
//   N      link bytes/s per direction * link_efficiency
//   kv_gpu KV bytes per token on one GPU = 2 * layers * max(kv_heads/tp, 1) * head_dim * dtype_bytes
//          (KV heads are split over TP, or replicated when tp > kv_heads)
//   AR(x)  ring all-reduce of x bytes = 2*(tp-1)/tp * x / N + allreduce_latency; 2 per layer (after
//          attention and after the MLP); none when tp = 1
//
//   prefill (a + b*sum(l) + c*sum(l^2)):
//     a = (P + E) * dtype_bytes / tp / M                  weights read once per step
//         + 2 * layers * allreduce_latency
//     b = 2 * P / tp / F                                  GEMMs, 2 FLOPs per weight per token
//         + 2 * layers * 2*(tp-1)/tp * h * dtype_bytes / N  all-reduce of each token's activation
//     c = 2 * layers * q / tp / F                         causal attention: QK^T and PV over l^2/2 pairs
//   decode (a + b*sum(ctx) + c*B), the same set below and above bs_threshold:
//     a = (P + E) * dtype_bytes / tp / M + 2 * layers * allreduce_latency
//     b = kv_gpu / M                                      KV read per context token
//         + 4 * layers * q / tp / F                       attention FLOPs per context token
//     c = 2 * (P + E) / tp / F                            GEMMs and LM head per request
//         + 2 * layers * 2*(tp-1)/tp * h * dtype_bytes / N
//   kv_capacity_tokens = (memory * memory_utilization - W/tp - activation_reserve) / kv_gpu
//   KV transfer: kv_bytes_per_token of the whole model over one GPU's link (N), kv_link_latency.
//
// The prefill LM head (one token per request) has no place in the form and is left out (~3 us/request
// on an A100 for OPT-13B).
//
// Thread safety: pure functions of their arguments.
#ifndef TANDEM_SIM_ROOFLINE_H_
#define TANDEM_SIM_ROOFLINE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "router/policy/latency_model.h"
#include "sim/profiles.h"

namespace tandem::sim {

// One GPU: vendor peak rates and the fractions of them a serving engine achieves.
struct GpuSpec {
  std::string name;                          // "h100-sxm"
  double peak_flops = 0.0;                   // dense BF16/FP16 tensor-core FLOP/s (no sparsity)
  double memory_bandwidth_bytes_per_s = 0.0;  // HBM/GDDR
  double memory_bytes = 0.0;                 // device memory
  double link_bandwidth_bytes_per_s = 0.0;   // GPU-to-GPU inside a node, per direction
  // Achievable fractions of the peaks (defaults and their justification in roofline.cc).
  double mfu = kDefaultMfu;                                    // of peak_flops, for GEMMs and attention
  double bandwidth_efficiency = kDefaultBandwidthEfficiency;  // of memory_bandwidth_bytes_per_s
  double link_efficiency = kDefaultLinkEfficiency;            // of link_bandwidth_bytes_per_s

  static constexpr double kDefaultMfu = 0.6;
  static constexpr double kDefaultBandwidthEfficiency = 0.8;
  static constexpr double kDefaultLinkEfficiency = 0.8;
};

// "a100-80g", "h100-sxm", "h200", "l40s"; InvalidArgument naming the known ones otherwise.
absl::StatusOr<GpuSpec> BuiltinGpuSpec(std::string_view name);
std::vector<std::string> BuiltinGpuNames();

struct RooflineOptions {
  double memory_utilization = 0.9;  // share of device memory the engine may use (vLLM's default)
  // Per GPU, held back from the KV cache: CUDA context, cuBLAS/NCCL workspaces, peak activations.
  double activation_reserve_bytes = 2.0 * (1 << 30);
  double allreduce_latency_ms = 0.01;  // fixed cost of one all-reduce call (NCCL, small messages)
  double kv_link_latency_ms = 0.02;    // fixed cost of one KV transfer
  // RooflineProfile refuses a tp that leaves room for fewer KV tokens than this (one long request).
  double min_kv_capacity_tokens = 2048;
  double prefill_overhead_ms = 0.0;    // per-step overheads, if the caller wants to add measured ones
  double decode_overhead_ms = 0.0;
};

// Parameter counts of a shape (the P, E and W of the file comment).
struct ModelWeights {
  double non_embedding_params = 0.0;  // P
  double lm_head_params = 0.0;        // E
  double total_params = 0.0;          // P + embeddings (+ LM head when untied)
  double bytes = 0.0;                 // W
};
absl::StatusOr<ModelWeights> CountWeights(const ModelShape& shape);

// The coefficients split by what bounds them, for inspection and tests; RooflineProfile sums them.
struct RooflineTerms {
  policy::QuadraticCoefficients prefill_compute;        // b: GEMMs, c: attention
  policy::QuadraticCoefficients prefill_memory;         // a: weight read
  policy::QuadraticCoefficients prefill_communication;  // a: all-reduce latency, b: all-reduce bytes
  policy::QuadraticCoefficients decode_compute;         // b: attention, c: GEMMs per request
  policy::QuadraticCoefficients decode_memory;          // a: weight read, b: KV read
  policy::QuadraticCoefficients decode_communication;   // a: all-reduce latency, c: all-reduce bytes
  double kv_bytes_per_token_per_gpu = 0.0;              // kv_gpu
  double kv_capacity_tokens = 0.0;                      // may be <= 0: the model does not fit
};

// InvalidArgument when tp < 1, tp does not divide the heads, the KV heads cannot be split over tp, or a
// shape/GPU field needed is not positive.
absl::StatusOr<RooflineTerms> ComputeRooflineTerms(const ModelShape& shape, const GpuSpec& gpu, int tp,
                                                   const RooflineOptions& options = {});

// The latency profile (engine "roofline", pp = 1) of `shape` on `tp` GPUs of `gpu`. InvalidArgument
// naming the model, GPU and tp when the weights and the reserve leave room for fewer than
// options.min_kv_capacity_tokens of KV (the model does not fit).
absl::StatusOr<policy::LatencyModelParams> RooflineProfile(const ModelShape& shape, const GpuSpec& gpu, int tp,
                                                           const RooflineOptions& options = {});

// The profile set named "roofline-<gpu>" (e.g. "roofline-h100-sxm"): `model` (a built-in shape) at
// every tp in {1, 2, 4, 8} that divides its heads and fits in memory, each checked by
// LatencyModel::Create. InvalidArgument for an unknown GPU or model, or when no tp fits.
bool IsRooflineProfileSet(std::string_view name);
absl::StatusOr<std::vector<policy::LatencyModel>> RooflineProfileSet(std::string_view name, std::string_view model,
                                                                     const RooflineOptions& options = {});

}  // namespace tandem::sim

#endif  // TANDEM_SIM_ROOFLINE_H_
