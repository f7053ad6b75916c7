#include "router/policy/placement_policy.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "router/policy/least_loaded_policy.h"
#include "router/policy/round_robin_policy.h"

namespace tandem::policy {

std::vector<std::string> PlacementPolicyNames() { return {"round_robin", "least_loaded"}; }

absl::StatusOr<std::unique_ptr<PlacementPolicy>> MakePlacementPolicy(std::string_view name) {
  if (name == "round_robin") return std::make_unique<RoundRobinPolicy>();
  if (name == "least_loaded") return std::make_unique<LeastLoadedPolicy>();
  return absl::InvalidArgumentError(absl::StrCat("--placement_policy: unknown policy \"", std::string(name),
                                                 "\" (known: ",
                                                 absl::StrJoin(PlacementPolicyNames(), ", "), ")"));
}

}  // namespace tandem::policy
