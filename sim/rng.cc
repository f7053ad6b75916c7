#include "sim/rng.h"

#include <cmath>
#include <numbers>

namespace tandem::sim {
namespace {

// Mixes the stream in through a second splitmix pass so (seed, stream) pairs do not overlap.
uint64_t StreamSeed(uint64_t seed, uint64_t stream) {
  return SplitMix64(&seed) ^ (stream * 0xd1b54a32d192ed03ULL + 0x8cb92ba72f3d8dd7ULL);
}

}  // namespace

Rng::Rng(uint64_t seed, uint64_t stream) : core_(StreamSeed(seed, stream)) {}

double Rng::UniformOpen() { return (static_cast<double>(NextU64() >> 11) + 0.5) * 0x1.0p-53; }

double Rng::Exponential() { return -std::log(UniformOpen()); }

double Rng::Normal() {
  if (has_cached_normal_) {
    has_cached_normal_ = false;
    return cached_normal_;
  }
  const double radius = std::sqrt(-2.0 * std::log(UniformOpen()));
  const double angle = 2.0 * std::numbers::pi * Uniform();
  cached_normal_ = radius * std::sin(angle);
  has_cached_normal_ = true;
  return radius * std::cos(angle);
}

double Rng::Gamma(double shape) {
  if (shape < 1.0) {
    // Gamma(a) = Gamma(a + 1) * U^(1/a).
    const double boost = std::pow(UniformOpen(), 1.0 / shape);
    return Gamma(shape + 1.0) * boost;
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x, v;
    do {
      x = Normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = UniformOpen();
    if (u < 1.0 - 0.0331 * (x * x) * (x * x)) return d * v;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}

double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

}  // namespace tandem::sim
