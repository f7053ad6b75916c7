// Test fixtures shared by the simulator's tests: DistServe's OPT-13B A100 setup (the built-in
// profiles, SLOs TTFT 200 ms / TPOT 100 ms, 90%) and ShareGPT-shaped unit-rate workloads.
#ifndef TANDEM_SIM_TESTING_DISTSERVE_SETUP_H_
#define TANDEM_SIM_TESTING_DISTSERVE_SETUP_H_

#include <vector>

#include "sim/metrics.h"
#include "sim/profiles.h"
#include "sim/search.h"
#include "sim/workload.h"

namespace tandem::sim::fixtures {

inline SimSetup DistServeSetup() {
  SimSetup setup;
  setup.model = "opt-13b";
  setup.profiles = *BuiltinProfiles("distserve-a100");
  setup.colocated_profiles = *BuiltinProfiles("vllm-a100");
  setup.kv_bytes_per_token = BuiltinModelShape("opt-13b")->KvBytesPerToken();
  setup.slo = SloSpec{.ttft_ms = 200, .tpot_ms = 100, .target = 0.9};
  return setup;
}

// `num_seeds` workloads of `n` requests, seeds 0, 1, ...
inline std::vector<Workload> ShareGptSeeds(int n, int num_seeds) {
  std::vector<Workload> seeds;
  const LengthSpec spec = *BuiltinLengthSpec("sharegpt");
  for (int s = 0; s < num_seeds; ++s) seeds.push_back(*MakeSyntheticWorkload(spec, {}, n, s));
  return seeds;
}

}  // namespace tandem::sim::fixtures

#endif  // TANDEM_SIM_TESTING_DISTSERVE_SETUP_H_
