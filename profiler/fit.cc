#include "profiler/fit.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"

namespace tandem::profiler {
namespace {

using policy::QuadraticCoefficients;

// A second decode regime must cut the mean relative error by at least this much (0.5 points).
constexpr double kMinAbsoluteImprovement = 0.005;

// Least squares of A beta ~ 1 restricted to the columns in `mask` (bit j = coefficient j). Columns are
// scaled to unit norm first: sum(l^2) is ~1e6 times sum(l), and the normal equations square the
// condition number. Returns false when the restricted system is singular.
bool SolveSubset(const std::vector<std::array<double, 3>>& rows, unsigned mask, std::array<double, 3>* beta) {
  std::vector<int> columns;
  for (int j = 0; j < 3; ++j) {
    if (mask & (1u << j)) columns.push_back(j);
  }
  const int k = static_cast<int>(columns.size());
  std::array<double, 3> scale{};
  for (int c = 0; c < k; ++c) {
    double norm = 0;
    for (const auto& row : rows) norm += row[columns[c]] * row[columns[c]];
    if (norm <= 0) return false;
    scale[c] = 1.0 / std::sqrt(norm);
  }
  // Normal equations M x = v over the scaled columns, solved by Gaussian elimination with pivoting.
  double m[3][4] = {};
  for (const auto& row : rows) {
    for (int r = 0; r < k; ++r) {
      const double xr = row[columns[r]] * scale[r];
      for (int c = 0; c < k; ++c) m[r][c] += xr * row[columns[c]] * scale[c];
      m[r][k] += xr;  // target is 1
    }
  }
  for (int p = 0; p < k; ++p) {
    int pivot = p;
    for (int r = p + 1; r < k; ++r) {
      if (std::abs(m[r][p]) > std::abs(m[pivot][p])) pivot = r;
    }
    if (std::abs(m[pivot][p]) < 1e-12) return false;
    for (int c = 0; c <= k; ++c) std::swap(m[p][c], m[pivot][c]);
    for (int r = 0; r < k; ++r) {
      if (r == p) continue;
      const double f = m[r][p] / m[p][p];
      for (int c = p; c <= k; ++c) m[r][c] -= f * m[p][c];
    }
  }
  *beta = {0, 0, 0};
  for (int c = 0; c < k; ++c) (*beta)[columns[c]] = m[c][k] / m[c][c] * scale[c];
  return true;
}

double RelativeResidual(const std::vector<std::array<double, 3>>& rows, const std::array<double, 3>& beta) {
  double sum = 0;
  for (const auto& row : rows) {
    const double e = row[0] * beta[0] + row[1] * beta[1] + row[2] * beta[2] - 1.0;
    sum += e * e;
  }
  return sum;
}

void AddError(double predicted, double measured, FitQuality* q) {
  const double e = std::abs(predicted - measured) / measured;
  q->max_rel_err = std::max(q->max_rel_err, e);
  q->mean_rel_err += e;
  ++q->num_samples;
}

void Finish(FitQuality* q) {
  if (q->num_samples > 0) q->mean_rel_err /= q->num_samples;
}

double Decode(const QuadraticCoefficients& q, double batch, double context) {
  return q.a + q.b * context + q.c * batch;
}

absl::StatusOr<QuadraticCoefficients> FitDecodeRegime(std::span<const DecodeSample> samples) {
  std::vector<double> x1, x2, t;
  for (const DecodeSample& s : samples) {
    x1.push_back(static_cast<double>(s.sum_context_tokens));
    x2.push_back(static_cast<double>(s.batch_size));
    t.push_back(s.ms);
  }
  return FitRelativeNonNegative(x1, x2, t);
}

}  // namespace

absl::StatusOr<QuadraticCoefficients> FitRelativeNonNegative(std::span<const double> x1, std::span<const double> x2,
                                                             std::span<const double> t) {
  if (x1.size() != t.size() || x2.size() != t.size()) {
    return absl::InvalidArgumentError(absl::StrCat("fit: ", x1.size(), ", ", x2.size(), " and ", t.size(),
                                                   " values for x1, x2 and t differ in length"));
  }
  if (t.size() < 3) return absl::InvalidArgumentError(absl::StrCat("fit: ", t.size(), " samples; need >= 3"));
  std::vector<std::array<double, 3>> rows;
  rows.reserve(t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    if (!(t[i] > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("fit: sample ", i, " has measured time ", t[i], " ms; must be > 0"));
    }
    rows.push_back({1.0 / t[i], x1[i] / t[i], x2[i] / t[i]});
  }
  // Non-negative least squares with three unknowns: the optimum is the unconstrained optimum on its
  // support, so the best feasible solution over the 7 non-empty supports is the answer.
  double best_residual = std::numeric_limits<double>::infinity();
  std::array<double, 3> best{};
  for (unsigned mask = 1; mask < 8; ++mask) {
    std::array<double, 3> beta;
    if (!SolveSubset(rows, mask, &beta)) continue;
    if (beta[0] < 0 || beta[1] < 0 || beta[2] < 0) continue;
    const double residual = RelativeResidual(rows, beta);
    if (residual < best_residual) {
      best_residual = residual;
      best = beta;
    }
  }
  if (!std::isfinite(best_residual) || (best[0] <= 0 && best[1] <= 0 && best[2] <= 0)) {
    return absl::FailedPreconditionError("fit: no non-negative coefficients fit the samples");
  }
  return QuadraticCoefficients{best[0], best[1], best[2]};
}

double PredictPrefill(const QuadraticCoefficients& q, const PrefillSample& s) {
  return q.a + q.b * static_cast<double>(s.sum_len) + q.c * s.sum_len_squared;
}

double PredictDecode(const DecodeFit& fit, const DecodeSample& s) {
  const QuadraticCoefficients& q = s.batch_size < fit.bs_threshold ? fit.small : fit.large;
  return Decode(q, static_cast<double>(s.batch_size), static_cast<double>(s.sum_context_tokens));
}

FitQuality PrefillQuality(std::span<const PrefillSample> samples, const QuadraticCoefficients& q) {
  FitQuality quality;
  for (const PrefillSample& s : samples) AddError(PredictPrefill(q, s), s.ms, &quality);
  Finish(&quality);
  return quality;
}

FitQuality DecodeQuality(std::span<const DecodeSample> samples, const DecodeFit& fit) {
  FitQuality quality;
  for (const DecodeSample& s : samples) AddError(PredictDecode(fit, s), s.ms, &quality);
  Finish(&quality);
  return quality;
}

absl::StatusOr<PrefillFit> FitPrefill(std::span<const PrefillSample> samples) {
  std::vector<double> x1, x2, t;
  for (const PrefillSample& s : samples) {
    x1.push_back(static_cast<double>(s.sum_len));
    x2.push_back(s.sum_len_squared);
    t.push_back(s.ms);
  }
  absl::StatusOr<QuadraticCoefficients> q = FitRelativeNonNegative(x1, x2, t);
  if (!q.ok()) return absl::Status(q.status().code(), absl::StrCat("prefill ", q.status().message()));
  return PrefillFit{*q, PrefillQuality(samples, *q)};
}

absl::StatusOr<DecodeFit> FitDecode(std::span<const DecodeSample> samples, double min_improvement) {
  absl::StatusOr<QuadraticCoefficients> one = FitDecodeRegime(samples);
  if (!one.ok()) return absl::Status(one.status().code(), absl::StrCat("decode ", one.status().message()));
  std::set<int64_t> batch_sizes;
  int64_t max_context = 0;
  for (const DecodeSample& s : samples) {
    batch_sizes.insert(s.batch_size);
    max_context = std::max(max_context, s.sum_context_tokens);
  }
  DecodeFit best;
  best.small = best.large = *one;
  best.bs_threshold = batch_sizes.empty() ? 1 : *batch_sizes.rbegin() + 1;
  best.quality = DecodeQuality(samples, best);
  const FitQuality single = best.quality;

  const std::vector<int64_t> sizes(batch_sizes.begin(), batch_sizes.end());
  // A regime may hold a single batch size (split 1: batch 1 alone, as on a CPU whose batch-1 step takes a
  // matrix-vector path and larger batches a GEMM); its fit then has no batch term (c = 0).
  for (size_t split = 1; split + 2 <= sizes.size(); ++split) {
    const int64_t threshold = sizes[split];
    std::vector<DecodeSample> below, above;
    for (const DecodeSample& s : samples) (s.batch_size < threshold ? below : above).push_back(s);
    absl::StatusOr<QuadraticCoefficients> small = FitDecodeRegime(below);
    absl::StatusOr<QuadraticCoefficients> large = FitDecodeRegime(above);
    if (!small.ok() || !large.ok()) continue;
    // Non-decreasing across the threshold, at no context and at the most measured.
    const double b0 = static_cast<double>(threshold - 1), b1 = static_cast<double>(threshold);
    const double c = static_cast<double>(max_context);
    if (Decode(*large, b1, 0) < Decode(*small, b0, 0) || Decode(*large, b1, c) < Decode(*small, b0, c)) continue;
    // And past the measured contexts, when every sequence brings the same context x: b1 sequences' step
    // must grow with x at least as fast as b0 sequences' (large.b * b1 >= small.b * b0), or a long enough
    // context makes one more sequence cheaper (seen: batch 2 at 10,000 tokens each below batch 1).
    if (large->b * b1 < small->b * b0) continue;
    DecodeFit candidate{*small, *large, threshold, true, {}};
    candidate.quality = DecodeQuality(samples, candidate);
    // Relative and absolute: a split of an already exact fit is noise, not a second regime.
    if (candidate.quality.mean_rel_err > (1.0 - min_improvement) * single.mean_rel_err ||
        single.mean_rel_err - candidate.quality.mean_rel_err < kMinAbsoluteImprovement) {
      continue;
    }
    if (candidate.quality.max_rel_err > single.max_rel_err) continue;
    if (candidate.quality.mean_rel_err < best.quality.mean_rel_err) best = candidate;
  }
  return best;
}

}  // namespace tandem::profiler
