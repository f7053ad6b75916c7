// Token sampling: greedy, temperature, top-k, top-p, with a seeded generator so that the same seed
// gives the same output on every platform (an in-house xoshiro256** generator, not std::random).
//
// Thread safety: a Sampler belongs to one sequence; not shared.
#ifndef TANDEM_MODEL_SAMPLER_H_
#define TANDEM_MODEL_SAMPLER_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "common/random.h"

namespace tandem {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy (argmax; the lowest id wins a tie)
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off; otherwise the smallest set whose probability reaches top_p
  uint64_t seed = 0;
};

// InvalidArgument naming the field: temperature < 0 or not finite, top_k < 0 or > vocab_size,
// top_p outside (0, 1] or not finite.
absl::Status ValidateSamplingParams(const SamplingParams& params, int64_t vocab_size);

// Sampling draws from the project's one generator (common/random.h).
using Rng = Xoshiro256;

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}
  int32_t Sample(std::span<const float> logits);
  // Consumes the random draw Sample would have used, without sampling: a decode worker continuing a
  // sequence whose first token was sampled elsewhere keeps the same random stream as one process would.
  void SkipOne();

 private:
  SamplingParams params_;
  Rng rng_;
  std::vector<std::pair<float, int32_t>> scratch_;
};

// Index of the largest value; the lowest index wins a tie. NaN never wins.
int32_t Argmax(std::span<const float> values);

}  // namespace tandem

#endif  // TANDEM_MODEL_SAMPLER_H_
