// Fitting LatencyModel coefficients to measured step times (pure functions: no I/O, no clock).
//
// Both forms are linear in their three coefficients:
//   prefill  t = a + b * sum(l) + c * sum(l^2)
//   decode   t = a + b * sum(ctx) + c * B      (one set, or two split at a batch-size threshold)
// The fit minimises the RELATIVE error, sum_i ((prediction_i - t_i) / t_i)^2 — each row of the
// least-squares system is divided by its measured time, as DistServe's fit does — so a 2 ms step
// counts as much as a 200 ms one. Coefficients are constrained to be >= 0 (a non-negative least squares
// over the 2^3 active sets), which keeps the fitted model positive and monotone as
// LatencyModel::Validate requires.
//
// Thread safety: stateless functions.
#ifndef TANDEM_PROFILER_FIT_H_
#define TANDEM_PROFILER_FIT_H_

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "router/policy/latency_model.h"

namespace tandem::profiler {

// One measured prefill step.
struct PrefillSample {
  int64_t num_sequences = 1;
  int64_t sum_len = 0;            // prompt tokens in the batch
  double sum_len_squared = 0.0;   // sum of each prompt's length squared
  double ms = 0.0;                // measured step time
};

// One measured decode step.
struct DecodeSample {
  int64_t batch_size = 1;
  int64_t sum_context_tokens = 0;  // context of every sequence in the batch, summed
  double ms = 0.0;
};

struct FitQuality {
  double max_rel_err = 0.0;   // max |predicted - measured| / measured
  double mean_rel_err = 0.0;
  int num_samples = 0;
};

struct PrefillFit {
  policy::QuadraticCoefficients coefficients;
  FitQuality quality;
};

struct DecodeFit {
  policy::QuadraticCoefficients small;  // batch < bs_threshold
  policy::QuadraticCoefficients large;  // batch >= bs_threshold (== small with one regime)
  int64_t bs_threshold = 1;             // with one regime: larger than any measured batch
  bool two_regimes = false;
  FitQuality quality;
};

// Non-negative least squares on relative error of t ~ a + b*x1 + c*x2 over `n` rows. InvalidArgument
// when there are fewer than 3 rows or a measured time is not positive; FailedPrecondition when no
// non-zero non-negative solution exists (all times would be 0).
absl::StatusOr<policy::QuadraticCoefficients> FitRelativeNonNegative(std::span<const double> x1,
                                                                     std::span<const double> x2,
                                                                     std::span<const double> t);

absl::StatusOr<PrefillFit> FitPrefill(std::span<const PrefillSample> samples);

// Tries one regime and every split at a measured batch size that leaves >= 1 distinct batch size below
// and >= 2 above (a regime of one batch size has no batch term); keeps a split only when it cuts the mean relative error by >= 30% (`min_improvement`)
// and by >= 0.5 points, does not raise the max error, and keeps step time non-decreasing across the
// threshold.
absl::StatusOr<DecodeFit> FitDecode(std::span<const DecodeSample> samples, double min_improvement = 0.3);

// Relative error statistics of `predict(sample)` against each sample's `ms`.
FitQuality PrefillQuality(std::span<const PrefillSample> samples, const policy::QuadraticCoefficients& q);
FitQuality DecodeQuality(std::span<const DecodeSample> samples, const DecodeFit& fit);

double PredictPrefill(const policy::QuadraticCoefficients& q, const PrefillSample& sample);
double PredictDecode(const DecodeFit& fit, const DecodeSample& sample);

}  // namespace tandem::profiler

#endif  // TANDEM_PROFILER_FIT_H_
