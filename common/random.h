// The one pseudo-random generator of the project: xoshiro256** seeded through splitmix64. Small, fast,
// and the same sequence on every platform and standard library (std::*_distribution is not), so a seed
// means the same sampled tokens, weights and workloads everywhere. Samplers built on it live with their
// users (model/sampler.h, sim/rng.h).
//
// Thread safety: a generator is a value; use one per thread or stream.
#ifndef TANDEM_COMMON_RANDOM_H_
#define TANDEM_COMMON_RANDOM_H_

#include <cstdint>

namespace tandem {

// splitmix64 step: advances *state and returns the next output.
uint64_t SplitMix64(uint64_t* state);

class Xoshiro256 {
 public:
  // The four state words are successive splitmix64 outputs from `seed`.
  explicit Xoshiro256(uint64_t seed);

  uint64_t Next();
  // Uniform in [0, 1), 53 random bits.
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t s_[4];
};

}  // namespace tandem

#endif  // TANDEM_COMMON_RANDOM_H_
