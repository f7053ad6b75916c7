#include "types/sampling.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>
#include <vector>

namespace tandem {

std::string SamplingParamsError(const SamplingParams& p, int64_t vocab_size) {
  std::ostringstream out;
  if (!std::isfinite(p.temperature) || p.temperature < 0) {
    out << "temperature must be a finite number >= 0, got " << p.temperature;
  } else if (p.top_k < 0 || p.top_k > vocab_size) {
    out << "top_k must be in [0, " << vocab_size << "] (0 = off), got " << p.top_k;
  } else if (!std::isfinite(p.top_p) || p.top_p <= 0 || p.top_p > 1) {
    out << "top_p must be in (0, 1], got " << p.top_p;
  }
  return out.str();
}

namespace {

int32_t Argmax(const float* values, int64_t n) {
  int32_t best = 0;
  float best_value = -INFINITY;
  bool found = false;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isnan(values[i]) && (!found || values[i] > best_value)) {
      best = static_cast<int32_t>(i);
      best_value = values[i];
      found = true;
    }
  }
  return best;
}

}  // namespace

int32_t SampleRowReference(const float* logits, int64_t vocab, const SampleRow& row) {
  if (row.temperature == 0.0f) return Argmax(logits, vocab);
  // Candidates sorted by logit, descending; ties by id so the order is deterministic.
  std::vector<std::pair<float, int32_t>> candidates;
  candidates.reserve(vocab);
  for (int64_t i = 0; i < vocab; ++i) {
    if (!std::isnan(logits[i])) candidates.emplace_back(logits[i], static_cast<int32_t>(i));
  }
  if (candidates.empty()) return 0;
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = candidates.size();
  if (row.top_k > 0 && static_cast<size_t>(row.top_k) < keep) {
    keep = row.top_k;
    std::partial_sort(candidates.begin(), candidates.begin() + keep, candidates.end(), by_logit);
    candidates.resize(keep);
  } else {
    std::sort(candidates.begin(), candidates.end(), by_logit);
  }
  // Softmax at the temperature, in double for a stable cumulative sum.
  const double max_logit = candidates[0].first;
  std::vector<double> probs(keep);
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    probs[i] = std::exp((candidates[i].first - max_logit) / row.temperature);
    total += probs[i];
  }
  if (row.top_p < 1.0f) {
    double cumulative = 0.0;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      cumulative += probs[i] / total;
      if (cumulative >= row.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    total = 0.0;
    for (size_t i = 0; i < keep; ++i) total += probs[i];
  }
  const double target = row.uniform * total;
  double cumulative = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    cumulative += probs[i];
    if (target < cumulative) return candidates[i].second;
  }
  return candidates[keep - 1].second;
}

double TokenLogprob(const float* logits, int64_t vocab, int32_t token) {
  double max_logit = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) {
    if (!std::isnan(logits[i])) max_logit = std::max(max_logit, static_cast<double>(logits[i]));
  }
  const float chosen = logits[token];
  if (std::isnan(chosen) || std::isinf(max_logit)) return -INFINITY;
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (!std::isnan(logits[i])) sum += std::exp(static_cast<double>(logits[i]) - max_logit);
  }
  return static_cast<double>(chosen) - max_logit - std::log(sum);
}

}  // namespace tandem
