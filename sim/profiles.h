// Built-in latency profiles and model shapes.
//
// DistServe's published A100-80G coefficient fits (simdistserve/estimators/profile_data/
// profiler-a100-80g.{distserve,vllm}.json, reproduced in SLO_SIM.md section 2.6) with the KV capacities
// of its max_num_tokens.csv, and the shapes needed for KV bytes per token. The step overheads
// (+3 ms per prefill step, +2 ms per decode step, and for the distserve engine 1e-4 ms per context
// token) are the ray overhead DistServe's simulator adds on the first pipeline stage (2 ms + 1e-4 ms per
// context token); without the per-token term, P90 TPOT of DistServe's measured runs below capacity is
// 16-20% above the simulated one, with it 8-10%.
#ifndef TANDEM_SIM_PROFILES_H_
#define TANDEM_SIM_PROFILES_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "router/policy/latency_model.h"

namespace tandem::sim {

// A decoder-only transformer's shape: what KV bytes per token and the roofline (sim/roofline.h) need.
struct ModelShape {
  std::string name;
  int num_layers = 0;
  int hidden_size = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int dtype_bytes = 2;
  int intermediate_size = 0;     // MLP inner width (OPT: ffn_dim; LLaMA: intermediate_size)
  int vocab_size = 0;
  bool gated_mlp = false;        // true: gate, up and down matrices (LLaMA SwiGLU); false: fc1, fc2 (OPT)
  bool tied_embeddings = false;  // the LM head shares the input embedding matrix (OPT) or not (LLaMA-3)

  // 2 (K and V) * layers * kv_heads * head_dim * dtype_bytes.
  double KvBytesPerToken() const;
};

// "opt-13b", "opt-66b", "opt-175b", "llama-3-8b", "llama-3-70b". Sources of the figures in profiles.cc.
absl::StatusOr<ModelShape> BuiltinModelShape(std::string_view name);

// The built-in profile set: "distserve-a100" (engine distserve, OPT-13B TP1/2/4, OPT-66B TP2/4/8),
// "vllm-a100" (engine vllm, OPT-13B TP1; the colocated baseline: DistServe's published vLLM fit with its
// prefill and a per-sequence decode cost calibrated on DistServe's measured vLLM runs, see profiles.cc)
// or "vllm-a100-published" (the published fit as it is).
absl::StatusOr<std::vector<policy::LatencyModel>> BuiltinProfiles(std::string_view name);
// Whether `name` is one of those sets.
bool IsBuiltinProfileSet(std::string_view name);

// The profile for (model, tp, pp = 1) in `profiles`, or NotFound naming what is missing.
absl::StatusOr<policy::LatencyModel> FindProfile(const std::vector<policy::LatencyModel>& profiles,
                                                 std::string_view model, int tp);

// The profile of one pipeline stage of a (model, tp, pp) instance: the (tp, pp) profile in `profiles`
// when there is one; else the (tp, pp = 1) profile with its pp set, so that a step takes 1/pp of the
// coefficient time (DistServe's estimator divides by pp the same way), and the KV capacity of the
// (tp * pp, pp = 1) profile: each stage holds 1/pp of the layers, so the instance holds about the KV
// of tp * pp GPUs in tensor parallel (DistServe's max_num_tokens.csv: OPT-13B tp1 pp2 163008 = tp2 pp1
// 163008; tp2 pp2 356752 vs tp4 pp1 356736). NotFound naming what is missing.
absl::StatusOr<policy::LatencyModel> FindStageProfile(const std::vector<policy::LatencyModel>& profiles,
                                                      std::string_view model, int tp, int pp);

// `model` with every prefill step time multiplied by `prefill` and every decode step time by `decode`
// (coefficients and per-step constants; the per-context-token overhead, shared by both phases, is
// left as is): the correction factors observed / predicted step time of a running worker, as
// Dynamo's planner applies them. InvalidArgument unless both are > 0.
absl::StatusOr<policy::LatencyModel> WithCorrection(const policy::LatencyModel& model, double prefill, double decode);

}  // namespace tandem::sim

#endif  // TANDEM_SIM_PROFILES_H_
