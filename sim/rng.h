// Deterministic random numbers for the simulator: xoshiro256** seeded through splitmix64, with
// in-house samplers (uniform, exponential, normal, gamma), so a seed gives the same workload on every
// platform and standard library (std::*_distribution sequences differ between libstdc++, libc++ and
// MSVC). The samplers use only +, -, *, /, sqrt (correctly rounded everywhere) and log/cos/sin/erfc,
// whose last-bit results could in principle differ across libm versions.
//
// Thread safety: an Rng is a value; use one per thread or stream.
#ifndef TANDEM_SIM_RNG_H_
#define TANDEM_SIM_RNG_H_

#include <cstdint>

#include "common/random.h"

namespace tandem::sim {

using ::tandem::SplitMix64;

class Rng {
 public:
  // stream separates independent sequences drawn from one seed (arrivals, lengths, ...).
  explicit Rng(uint64_t seed, uint64_t stream = 0);

  uint64_t NextU64() { return core_.Next(); }
  // Uniform in [0, 1), 53 random bits.
  double Uniform() { return core_.NextDouble(); }
  // Uniform in (0, 1): never 0, for log().
  double UniformOpen();
  // Exponential with mean 1 (inverse CDF).
  double Exponential();
  // Standard normal (Box-Muller; the second value is cached).
  double Normal();
  // Gamma(shape, scale = 1), Marsaglia-Tsang; shape < 1 uses the U^(1/shape) boost.
  double Gamma(double shape);

 private:
  Xoshiro256 core_;
  bool has_cached_normal_ = false;
  double cached_normal_ = 0.0;
};

// Standard normal CDF.
double NormalCdf(double z);

}  // namespace tandem::sim

#endif  // TANDEM_SIM_RNG_H_
