// Profiler: measures this machine's engine (Model::Forward on a Backend) and fits the LatencyModel the
// router's goodput policy and `tandem sim` predict with (`tandem profile`).
//
//   prefill grid: single prompts of 16..max_prompt tokens and batches of equal prompts (2..8 of them),
//                 so sum(l) and sum(l^2) vary independently; sum(l) <= 2 * max_prompt.
//   decode grid:  batch sizes 1, 2, 4, ... max_batch x per-sequence context 16 .. max_prompt; one new
//                 token per sequence over a cache already holding `context` tokens.
// Each point runs once to warm up, then `repeats` times; the median is the sample. The KV cache is
// zeroed first (its content does not change the work; garbage could hold denormals that would).
// KV transfer: kv_bytes_per_token comes from the model shape and the backend's KV dtype; the link
// bandwidth is options.kv_bandwidth_bytes_per_s when set, else an in-process memcpy of 64 MiB (the
// cost of the host-staged copy; a network is slower: pass the measured figure).
//
// Thread safety: one Profile() at a time per process is sensible (it saturates the backend).
#ifndef TANDEM_PROFILER_PROFILER_H_
#define TANDEM_PROFILER_PROFILER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "profiler/fit.h"
#include "router/policy/latency_model.h"

namespace tandem::profiler {

struct ProfileOptions {
  std::string model_dir;
  std::string backend = "cpu";
  int num_threads = 0;             // CPU backends: 0 = one per hardware thread
  int device = 0;                  // CUDA device ordinal
  std::string dtype;               // CUDA compute dtype ("" = bfloat16)
  int64_t max_prompt = 1024;       // longest prompt and longest decode context measured (tokens)
  int64_t max_batch = 32;          // largest decode batch measured
  int repeats = 3;                 // timed runs per grid point (after one warm-up)
  int32_t block_size = 16;
  double kv_bandwidth_bytes_per_s = 0.0;  // > 0: use it instead of measuring memcpy
  double kv_latency_ms = 0.0;
};

struct MeasuredPrefill {
  PrefillSample sample;
  double fitted_ms = 0.0;
};

struct MeasuredDecode {
  DecodeSample sample;
  double fitted_ms = 0.0;
};

struct ProfileResult {
  policy::LatencyModel model;
  PrefillFit prefill;
  DecodeFit decode;
  std::vector<MeasuredPrefill> prefill_samples;
  std::vector<MeasuredDecode> decode_samples;
  double kv_bytes_per_token = 0.0;
  double kv_bandwidth_bytes_per_s = 0.0;
  bool kv_bandwidth_measured = false;  // false: taken from the options
  double seconds = 0.0;                // wall time of the whole profile
};

// The grid Profile measures, for --help and tests: (sequences, prompt length) and (batch, context).
std::vector<std::pair<int64_t, int64_t>> PrefillGrid(int64_t max_prompt);
std::vector<std::pair<int64_t, int64_t>> DecodeGrid(int64_t max_batch, int64_t max_context);

// Loads the model, measures, fits. `progress` (may be empty) gets one line per grid point.
// InvalidArgument naming the option for a bad range; the model loader's errors as they come.
absl::StatusOr<ProfileResult> Profile(const ProfileOptions& options,
                                      const std::function<void(const std::string&)>& progress = {});

// The JSON the router and `tandem sim` load (LatencyModel::ToJson) plus "fit_stats" (max/mean
// relative error per form) and "profiled" (how it was measured); the loaders ignore the extra keys.
std::string ProfileJson(const ProfileResult& result, const ProfileOptions& options);

}  // namespace tandem::profiler

#endif  // TANDEM_PROFILER_PROFILER_H_
