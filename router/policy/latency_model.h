// LatencyModel: predicted step times of one prefill or decode instance (a TP x PP group of devices),
// and KV transfer time between instances. All times are milliseconds.
//
//   prefill step  = (a + b*sum(l) + c*sum(l^2)) / pp + prefill_overhead + per_ctx_token*sum(l)
//   decode step   = (a + b*sum(ctx) + c*B) / pp + decode_overhead + per_ctx_token*sum(ctx)
//                   with (a, b, c) = decode_small when B < bs_threshold, else decode_large
//   KV transfer   = link_latency + bytes / link_bandwidth
//
// This is the DistServe coefficient form (simdistserve/estimators/time_estimator.py). The JSON file it
// is read from and written to is the one `tandem profile` writes and the router loads (SLO_SIM.md
// section 1.1(b)): one object per (model, gpu, engine, tp, pp), or {"profiles": [ ... ]}.
//
// Thread safety: immutable after construction; const methods may be called from any thread.
#ifndef TANDEM_ROUTER_POLICY_LATENCY_MODEL_H_
#define TANDEM_ROUTER_POLICY_LATENCY_MODEL_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tandem::policy {

struct QuadraticCoefficients {
  double a = 0.0;  // ms
  double b = 0.0;  // ms per token (prefill: per prompt token; decode: per context token)
  double c = 0.0;  // prefill: ms per token^2; decode: ms per request in the batch
};

struct LatencyModelParams {
  std::string model;   // "opt-13b"
  std::string gpu;     // "a100-80g"
  std::string engine;  // "distserve", "vllm", "tandem"
  int tp = 1;
  int pp = 1;
  QuadraticCoefficients prefill;
  QuadraticCoefficients decode_small;  // batch < bs_threshold
  QuadraticCoefficients decode_large;  // batch >= bs_threshold
  int64_t bs_threshold = 95;
  double prefill_overhead_ms = 0.0;        // constant added to every prefill step
  double decode_overhead_ms = 0.0;         // constant added to every decode step
  double overhead_per_ctx_token_ms = 0.0;  // added per context token to every step
  int64_t kv_capacity_tokens = 0;          // tokens of KV the instance holds; 0 = unknown
  // KV transfer out of this instance.
  double kv_bytes_per_token = 0.0;          // 0 = unknown (the simulator derives it from the model shape)
  double link_bandwidth_bytes_per_s = 0.0;  // 0 = unlimited
  double link_latency_ms = 0.0;
  // Range over which Validate() checks positivity and monotonicity.
  int64_t validate_max_tokens = 16384;
  int64_t validate_max_batch = 512;
};

class LatencyModel {
 public:
  // Validates params (see Validate) and returns the model, or InvalidArgument naming the field.
  static absl::StatusOr<LatencyModel> Create(LatencyModelParams params);
  // One profile object (the format in the file comment).
  static absl::StatusOr<LatencyModel> FromJson(std::string_view json_text);
  static absl::StatusOr<LatencyModel> FromFile(const std::string& path);
  // A file holding one profile object or {"profiles": [...]}.
  static absl::StatusOr<std::vector<LatencyModel>> ListFromFile(const std::string& path);
  static absl::StatusOr<std::vector<LatencyModel>> ListFromJson(std::string_view json_text);

  // Checks: tp, pp >= 1; bs_threshold >= 1; every step time positive and non-decreasing in the number
  // of tokens and the batch size over [1, validate_max_tokens] x [1, validate_max_batch]; bandwidth and
  // latency non-negative.
  static absl::Status Validate(const LatencyModelParams& params);

  std::string ToJson() const;
  absl::Status SaveToFile(const std::string& path) const;

  const LatencyModelParams& params() const { return params_; }

  // Prefill step for a batch with prompt lengths `prompt_lens` (tokens).
  double PrefillMs(std::span<const int64_t> prompt_lens) const;
  // The same from the sums, for callers that keep running totals.
  double PrefillMsFromSums(double sum_len, double sum_len_squared) const;
  // Decode step for `batch_size` requests whose context lengths sum to `sum_context_tokens`; with pp > 1,
  // one pipeline stage's step.
  double DecodeStepMs(int64_t batch_size, int64_t sum_context_tokens) const;
  // Time between one request's tokens: DecodeStepMs when pp = 1; with pp > 1 the running requests are
  // pp micro-batches taking turns through the stages (sim/simulator.h), so a request waits pp stage steps
  // of its micro-batch, ceil(batch / pp) of them with their share of the context.
  double DecodeTokenMs(int64_t batch_size, int64_t sum_context_tokens) const;
  // Moving `bytes` of KV over this instance's link.
  double KvTransferMs(double bytes) const;

 private:
  explicit LatencyModel(LatencyModelParams params) : params_(std::move(params)) {}
  LatencyModelParams params_;
};

}  // namespace tandem::policy

#endif  // TANDEM_ROUTER_POLICY_LATENCY_MODEL_H_
