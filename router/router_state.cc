#include "router/router_state.h"

#include <algorithm>

#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "router/front_door.h"
#include "router/router_metrics.h"

namespace tandem::router {
namespace {

std::string RandomPrefix() {
  std::random_device device;
  return absl::StrFormat("r%08x", device());
}

template <typename Workers>
bool AnyHealthy(const Workers& workers) {
  return std::any_of(workers.begin(), workers.end(), [](const auto& w) { return w.healthy; });
}

}  // namespace

RouterState::RouterState(ServedModel model, std::unique_ptr<Tokenizer> tokenizer,
                         std::unique_ptr<WorkerRegistry> registry,
                         std::unique_ptr<policy::PlacementPolicy> policy, int max_in_flight)
    : model_(std::move(model)),
      tokenizer_(std::move(tokenizer)),
      registry_(std::move(registry)),
      max_in_flight_(max_in_flight),
      id_prefix_(RandomPrefix()),
      policy_(std::move(policy)) {}

std::string RouterState::NewRequestId() { return absl::StrCat(id_prefix_, "-", next_id_.fetch_add(1)); }

absl::StatusOr<Placement> RouterState::Place(const policy::PlacementRequest& request) {
  const policy::ClusterSnapshot snapshot = registry_->Snapshot();
  policy::PlacementDecision decision;
  {
    absl::MutexLock lock(&policy_mu_);
    decision = policy_->Place(request, snapshot);
  }
  if (!decision.accepted) {
    const bool pair = AnyHealthy(snapshot.prefill) && AnyHealthy(snapshot.decode);
    if (!pair && !AnyHealthy(snapshot.colocated)) {
      return absl::UnavailableError(absl::StrCat("no worker can take the request: ", decision.reject_reason));
    }
    return absl::ResourceExhaustedError(absl::StrCat("request refused: ", decision.reject_reason));
  }
  return Placement{decision.prefill_index, decision.decode_index, decision.colocated_index};
}

int RouterState::PickReplacement(WorkerRole role, const policy::PlacementRequest& request, int exclude,
                                 int partner_index) {
  policy::ClusterSnapshot snapshot = registry_->Snapshot();
  // Only the failed worker's side is chosen: the partner side is pinned to the worker in use. A
  // colocated worker is replaced by another colocated worker.
  if (role == WorkerRole::kColocated) {
    snapshot.prefill.clear();
    snapshot.decode.clear();
    snapshot.colocated.at(static_cast<size_t>(exclude)).healthy = false;
  } else if (role == WorkerRole::kDecode) {
    policy::PrefillWorkerState partner = snapshot.prefill.at(static_cast<size_t>(partner_index));
    partner.healthy = true;
    snapshot.prefill = {partner};
    snapshot.decode.at(static_cast<size_t>(exclude)).healthy = false;
  } else {
    policy::DecodeWorkerState partner = snapshot.decode.at(static_cast<size_t>(partner_index));
    partner.healthy = true;
    snapshot.decode = {partner};
    snapshot.prefill.at(static_cast<size_t>(exclude)).healthy = false;
  }
  if (role != WorkerRole::kColocated) snapshot.colocated.clear();
  absl::MutexLock lock(&policy_mu_);
  const policy::PlacementDecision decision = policy_->Place(request, snapshot);
  if (!decision.accepted) return -1;
  switch (role) {
    case WorkerRole::kPrefill: return decision.prefill_index;
    case WorkerRole::kDecode: return decision.decode_index;
    case WorkerRole::kColocated: return decision.colocated_index;
  }
  return -1;
}

bool RouterState::TryAdmit() {
  if (in_flight_.fetch_add(1) >= max_in_flight_) {
    in_flight_.fetch_sub(1);
    return false;
  }
  return true;
}

void RouterState::ReleaseAdmission() { in_flight_.fetch_sub(1); }

absl::StatusOr<std::string> RouterState::Authenticate(absl::string_view authorization) const {
  absl::StatusOr<int> key = api_keys_.Match(authorization);
  if (!key.ok()) {
    if (metrics_ != nullptr) metrics_->RecordEnd(key.status(), /*admitted=*/false, /*placed=*/false);
    return key.status();
  }
  return *key < 0 ? std::string() : absl::StrCat("api-key-", *key + 1);
}

bool RouterState::TryAdmitClient(const std::string& client) {
  if (max_in_flight_per_client_ <= 0) return true;
  absl::MutexLock lock(&clients_mu_);
  int& n = client_in_flight_[client];
  if (n >= max_in_flight_per_client_) return false;
  ++n;
  return true;
}

void RouterState::ReleaseClient(const std::string& client) {
  if (max_in_flight_per_client_ <= 0) return;
  absl::MutexLock lock(&clients_mu_);
  auto it = client_in_flight_.find(client);
  if (it != client_in_flight_.end() && --it->second <= 0) client_in_flight_.erase(it);
}

void RouterState::Register(FrontDoorSession* session) {
  absl::MutexLock lock(&live_mu_);
  live_.insert(session);
}

void RouterState::Unregister(FrontDoorSession* session) {
  absl::MutexLock lock(&live_mu_);
  live_.erase(session);
}

void RouterState::AbandonCallsOn(WorkerRole role, int index) {
  std::vector<FrontDoorSession*> referenced;
  {
    absl::MutexLock lock(&live_mu_);
    for (FrontDoorSession* session : live_) {
      if (session->TryRef()) referenced.push_back(session);
    }
  }
  for (FrontDoorSession* session : referenced) {
    session->AbandonWorker(role, index);
    session->Unref();
  }
}

void RouterState::CancelAllAndWait() {
  std::vector<FrontDoorSession*> referenced;
  {
    absl::MutexLock lock(&live_mu_);
    // A session whose count already reached zero is being destroyed; it is skipped (and its
    // destructor blocks on live_mu_ until we let go).
    for (FrontDoorSession* session : live_) {
      if (session->TryRef()) referenced.push_back(session);
    }
  }
  for (FrontDoorSession* session : referenced) {
    session->CancelWorkerCalls();
    session->Unref();
  }
  absl::MutexLock lock(&live_mu_);
  live_mu_.Await(absl::Condition(
      +[](absl::flat_hash_set<FrontDoorSession*>* live) { return live->empty(); }, &live_));
}

}  // namespace tandem::router
