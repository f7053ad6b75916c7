// Token sampling on the host: a request's random stream and the CPU reference of one sampling step.
//
// Every backend samples on the device (Backend::Sample) from SampleRows whose `uniform` the engine draws
// here, from the request's own generator, so a seeded request consumes the same stream of random numbers
// on every backend (an in-house xoshiro256** generator, not std::random: the same on every platform).
//
// Thread safety: a Sampler belongs to one sequence; not shared.
#ifndef TANDEM_MODEL_SAMPLER_H_
#define TANDEM_MODEL_SAMPLER_H_

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "common/random.h"
#include "types/sampling.h"

namespace tandem {

// InvalidArgument naming the field: temperature < 0 or not finite, top_k < 0 or > vocab_size,
// top_p outside (0, 1] or not finite.
absl::Status ValidateSamplingParams(const SamplingParams& params, int64_t vocab_size);

// Sampling draws from the project's one generator (common/random.h).
using Rng = Xoshiro256;

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

  // The row for the next token: the parameters plus the next draw of this request's stream (greedy
  // requests draw nothing).
  SampleRow NextRow();
  // Samples the next token from host logits (NextRow + SampleRowReference).
  int32_t Sample(std::span<const float> logits);
  // Consumes the random draw Sample would have used, without sampling: a decode worker continuing a
  // sequence whose first token was sampled elsewhere keeps the same random stream as one process would.
  void SkipOne() { NextRow(); }

 private:
  SamplingParams params_;
  Rng rng_;
};

// Index of the largest value; the lowest index wins a tie. NaN never wins.
int32_t Argmax(std::span<const float> values);

}  // namespace tandem

#endif  // TANDEM_MODEL_SAMPLER_H_
