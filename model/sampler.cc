#include "model/sampler.h"

namespace tandem {

absl::Status ValidateSamplingParams(const SamplingParams& p, int64_t vocab_size) {
  const std::string error = SamplingParamsError(p, vocab_size);
  return error.empty() ? absl::OkStatus() : absl::InvalidArgumentError(error);
}

int32_t Argmax(std::span<const float> values) {
  return SampleRowReference(values.data(), static_cast<int64_t>(values.size()), SampleRow{});
}

SampleRow Sampler::NextRow() {
  SampleRow row;
  row.temperature = params_.temperature;
  row.top_k = params_.top_k;
  row.top_p = params_.top_p;
  if (params_.temperature != 0.0f) row.uniform = rng_.NextDouble();
  return row;
}

int32_t Sampler::Sample(std::span<const float> logits) {
  const SampleRow row = NextRow();
  return SampleRowReference(logits.data(), static_cast<int64_t>(logits.size()), row);
}

}  // namespace tandem
