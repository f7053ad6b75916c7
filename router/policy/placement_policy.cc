#include "router/policy/placement_policy.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "router/policy/goodput_policy.h"
#include "router/policy/least_loaded_policy.h"
#include "router/policy/round_robin_policy.h"

namespace tandem::policy {

std::vector<std::string> PlacementPolicyNames() { return {"round_robin", "least_loaded", "goodput"}; }

absl::StatusOr<std::unique_ptr<PlacementPolicy>> MakePlacementPolicy(std::string_view name) {
  return MakePlacementPolicy(name, PlacementPolicyOptions{});
}

absl::StatusOr<std::unique_ptr<PlacementPolicy>> MakePlacementPolicy(std::string_view name,
                                                                     const PlacementPolicyOptions& options) {
  if (name == "round_robin") return std::make_unique<RoundRobinPolicy>();
  if (name == "least_loaded") return std::make_unique<LeastLoadedPolicy>();
  if (name == "goodput") {
    if (!options.latency_model.has_value()) {
      return absl::InvalidArgumentError(
          "--latency-model: the goodput policy needs a latency model file (write one with `tandem profile`)");
    }
    return std::make_unique<GoodputPolicy>(GoodputModels{.prefill = *options.latency_model,
                                                         .decode = *options.latency_model,
                                                         .by_worker_id = options.worker_latency_models});
  }
  return absl::InvalidArgumentError(absl::StrCat("--placement_policy: unknown policy \"", std::string(name),
                                                 "\" (known: ",
                                                 absl::StrJoin(PlacementPolicyNames(), ", "), ")"));
}

}  // namespace tandem::policy
