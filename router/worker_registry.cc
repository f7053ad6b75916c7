#include "router/worker_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/blocking_counter.h"
#include "common/dns.h"
#include "common/logging.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "proto/grpc_status.h"
#include "server/cluster_secret.h"

namespace tandem::router {

namespace wv1 = ::tandem::worker::v1;

struct WorkerRegistry::Worker {
  WorkerRole role;
  int index;
  std::string address;
  std::string target;  // the "dns:NAME:PORT" that lists it; empty for a fixed address
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<wv1::PrefillWorker::Stub> prefill_stub;  // set for prefill workers
  std::unique_ptr<wv1::DecodeWorker::Stub> decode_stub;    // set for decode workers
  std::unique_ptr<wv1::ColocatedWorker::Stub> colocated_stub;  // set for colocated workers
  std::unique_ptr<HealthClient> health;
  // Guarded by the registry's mu_.
  bool member = true;
  std::string incompatible;  // why its load report does not match the router's model; empty: it does
  bool healthy = false;
  int consecutive_failures = 0;
  bool have_load = false;
  wv1::LoadReport load;
  // The last batch a load report caught running: what recent_step_ms describes (online correction).
  int64_t last_batch_requests = 0;
  int64_t last_batch_tokens = 0;
  int64_t report_seq = 0;  // load reports received
  // Its load reports say its engine is stalled and its calls were abandoned for it (once per stall: a
  // NOT_SERVING health check may have taken it out of the pool first, which abandons nothing).
  bool stall_abandoned = false;
};

namespace {

constexpr int kMaxReceiveBytes = 64 << 20;

constexpr WorkerRole kRoles[] = {WorkerRole::kPrefill, WorkerRole::kDecode, WorkerRole::kColocated};

absl::Status CheckAddress(absl::string_view flag, absl::string_view address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": '", address, "' is not host:port with a port in [1, 65535]"));
  }
  return absl::OkStatus();
}

// host:port, or dns:NAME:PORT.
absl::Status CheckEntry(absl::string_view flag, absl::string_view entry) {
  if (IsDnsTarget(entry)) return ParseDnsTarget(flag, entry).status();
  return CheckAddress(flag, entry);
}

}  // namespace

const char* RoleName(WorkerRole role) {
  switch (role) {
    case WorkerRole::kPrefill: return "prefill";
    case WorkerRole::kDecode: return "decode";
    case WorkerRole::kColocated: return "colocated";
  }
  return "unknown";
}

absl::StatusOr<std::vector<std::string>> ParseWorkerAddresses(absl::string_view flag,
                                                              absl::string_view text) {
  std::vector<std::string> addresses;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::Status s = CheckEntry(flag, part); !s.ok()) return s;
    addresses.emplace_back(part);
  }
  if (addresses.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": at least one worker address is required"));
  }
  return addresses;
}

absl::StatusOr<std::unique_ptr<WorkerRegistry>> WorkerRegistry::Create(WorkerRegistryOptions options) {
  // Prefill and decode workers come in pairs; colocated workers serve alone.
  if (options.prefill_addresses.empty() != options.decode_addresses.empty()) {
    return absl::InvalidArgumentError(options.prefill_addresses.empty() ? "prefill worker list is empty"
                                                                          : "decode worker list is empty");
  }
  if (options.prefill_addresses.empty() && options.colocated_addresses.empty()) {
    return absl::InvalidArgumentError("no workers: give prefill and decode workers, colocated workers, or both");
  }
  for (const std::string& a : options.colocated_addresses) {
    if (absl::Status s = CheckEntry("colocated", a); !s.ok()) return s;
  }
  for (const std::string& a : options.prefill_addresses) {
    if (absl::Status s = CheckEntry("prefill", a); !s.ok()) return s;
  }
  for (const std::string& a : options.decode_addresses) {
    if (absl::Status s = CheckEntry("decode", a); !s.ok()) return s;
  }
  if (options.unhealthy_after_failures < 1) {
    return absl::InvalidArgumentError("unhealthy_after_failures must be >= 1");
  }
  return std::unique_ptr<WorkerRegistry>(new WorkerRegistry(std::move(options)));
}

WorkerRegistry::WorkerRegistry(WorkerRegistryOptions options) : options_(std::move(options)) {
  for (WorkerRole role : kRoles) {
    const std::vector<std::string>& entries = role == WorkerRole::kPrefill  ? options_.prefill_addresses
                                              : role == WorkerRole::kDecode ? options_.decode_addresses
                                                                            : options_.colocated_addresses;
    for (const std::string& entry : entries) {
      if (IsDnsTarget(entry)) {
        const DnsTarget target = *ParseDnsTarget("", entry);  // checked by Create
        targets_.push_back({role, target.host, target.port, target.ToString()});
      } else {
        AddWorker(role, entry, "");
      }
    }
  }
}

int WorkerRegistry::AddWorker(WorkerRole role, const std::string& address, const std::string& target) {
  auto w = std::make_unique<Worker>();
  w->role = role;
  w->address = address;
  w->target = target;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxReceiveBytes);
  w->channel = CreateClusterChannel(address, args);
  switch (role) {
    case WorkerRole::kPrefill: w->prefill_stub = wv1::PrefillWorker::NewStub(w->channel); break;
    case WorkerRole::kDecode: w->decode_stub = wv1::DecodeWorker::NewStub(w->channel); break;
    case WorkerRole::kColocated: w->colocated_stub = wv1::ColocatedWorker::NewStub(w->channel); break;
  }
  w->health = std::make_unique<HealthClient>(w->channel, address);
  int index;
  {
    absl::MutexLock lock(&list_mu_);
    auto& list = lists_[static_cast<int>(role)];
    index = static_cast<int>(list.size());
    w->index = index;
    list.push_back(std::move(w));
  }
  NotifyAdded();
  return index;
}

void WorkerRegistry::NotifyAdded() {
  absl::MutexLock lock(&added_mu_);
  if (!added_) return;
  for (WorkerRole role : kRoles) {
    int& notified = notified_[static_cast<int>(role)];
    for (const int n = num_workers(role); notified < n; ++notified) added_(role, notified);
  }
}

void WorkerRegistry::SetWorkerAdded(std::function<void(WorkerRole, int)> added) {
  {
    absl::MutexLock lock(&added_mu_);
    added_ = std::move(added);
  }
  NotifyAdded();
}

void WorkerRegistry::ResolveNow() {
  const WorkerResolver& resolve = options_.resolver ? options_.resolver : WorkerResolver(ResolveHostPorts);
  for (Target& target : targets_) {
    absl::StatusOr<std::vector<std::string>> listed = resolve(target.host, target.port);
    if (!listed.ok()) {
      // Keep the last answer: a DNS hiccup must not empty the pool.
      if (!target.failing) {
        TANDEM_LOG(WARNING, "router") << target.name << ": " << listed.status().message()
                                      << "; keeping its " << RoleName(target.role) << " workers as they were";
      }
      target.failing = true;
      continue;
    }
    target.failing = false;
    std::vector<std::string> fresh;
    {
      absl::MutexLock lock(&mu_);
      absl::MutexLock list_lock(&list_mu_);
      auto& list = lists_[static_cast<int>(target.role)];
      for (auto& w : list) {
        const bool listed_now = std::find(listed->begin(), listed->end(), w->address) != listed->end();
        if (w->target == target.name && w->member && !listed_now) {
          w->member = false;
          w->healthy = false;
          TANDEM_LOG(INFO, "router") << RoleName(target.role) << " worker " << w->address << " left "
                                     << target.name << "; out of the pool (calls in flight finish)";
        } else if (w->target == target.name && !w->member && listed_now) {
          w->member = true;
          w->consecutive_failures = 0;
          TANDEM_LOG(INFO, "router") << RoleName(target.role) << " worker " << w->address << " is back in "
                                     << target.name;
        }
      }
      for (const std::string& address : *listed) {
        const bool known = std::any_of(list.begin(), list.end(),
                                       [&](const std::unique_ptr<Worker>& w) { return w->address == address; });
        if (!known) fresh.push_back(address);
      }
    }
    for (const std::string& address : fresh) {
      TANDEM_LOG(INFO, "router") << RoleName(target.role) << " worker " << address << " joined through "
                                 << target.name << " (in the pool once its health check passes)";
      AddWorker(target.role, address, target.name);
    }
  }
}

std::vector<WorkerRegistry::Worker*> WorkerRegistry::Members() const {
  std::vector<Worker*> members;
  absl::MutexLock lock(&mu_);
  absl::MutexLock list_lock(&list_mu_);
  for (const auto& list : lists_) {
    for (const auto& w : list) {
      if (w->member) members.push_back(w.get());
    }
  }
  return members;
}

WorkerRegistry::~WorkerRegistry() { Shutdown(); }

void WorkerRegistry::Start() {
  ResolveNow();
  CheckHealthNow();
  PollLoadNow();
  poller_ = std::thread([this] { PollLoop(); });
}

void WorkerRegistry::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (poller_.joinable()) poller_.join();
}

void WorkerRegistry::PollLoop() {
  absl::Time next_health = absl::Now() + options_.health_interval;
  absl::Time next_load = absl::Now() + options_.load_interval;
  absl::Time next_resolve = targets_.empty() ? absl::InfiniteFuture() : absl::Now() + options_.resolve_interval;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const absl::Time wake = std::min({next_health, next_load, next_resolve});
      // Wakes early only to stop.
      mu_.AwaitWithDeadline(absl::Condition(&stopping_), wake);
      if (stopping_) return;
    }
    const absl::Time now = absl::Now();
    if (now >= next_resolve) {
      ResolveNow();
      next_resolve = absl::Now() + options_.resolve_interval;
    }
    if (now >= next_health) {
      CheckHealthNow();
      if (options_.after_health_round) options_.after_health_round();
      next_health = absl::Now() + options_.health_interval;
    }
    if (now >= next_load) {
      PollLoadNow();
      next_load = absl::Now() + options_.load_interval;
    }
  }
}

void WorkerRegistry::CheckHealthNow() {
  const std::vector<Worker*> members = Members();
  absl::BlockingCounter pending(static_cast<int>(members.size()));
  for (Worker* worker : members) {
    worker->health->Check("", options_.health_timeout, [this, worker, &pending](absl::Status status) {
      RecordHealth(*worker, status);
      pending.DecrementCount();
    });
  }
  pending.Wait();
}

void WorkerRegistry::RecordHealth(Worker& worker, const absl::Status& status) {
  bool unresponsive = false;
  {
    absl::MutexLock lock(&mu_);
    unresponsive = RecordHealthLocked(worker, status);
  }
  if (unresponsive && options_.on_unresponsive) options_.on_unresponsive(worker.role, worker.index);
}

bool WorkerRegistry::RecordHealthLocked(Worker& worker, const absl::Status& status) {
  if (!worker.member) return false;  // left its DNS target while the check was in flight
  if (status.ok() && !worker.incompatible.empty()) return false;  // answers, but serves another model
  if (status.ok()) {
    if (!worker.healthy) {
      TANDEM_LOG(INFO, "router") << RoleName(worker.role) << " worker " << worker.address
                                 << " is healthy";
    }
    worker.healthy = true;
    worker.consecutive_failures = 0;
    return false;
  }
  ++worker.consecutive_failures;
  // A worker that answers NOT_SERVING says it is draining: out at once, not after a few misses.
  if (IsNotServing(status)) worker.consecutive_failures = std::max(worker.consecutive_failures, options_.unhealthy_after_failures);
  if (worker.healthy && worker.consecutive_failures >= options_.unhealthy_after_failures) {
    worker.healthy = false;
    TANDEM_LOG(WARNING, "router") << RoleName(worker.role) << " worker " << worker.address
                                  << " is unhealthy after " << worker.consecutive_failures
                                  << " failed health checks: " << status.message();
    return !IsNotServing(status);
  }
  return false;
}

void WorkerRegistry::CheckModelLocked(Worker& worker, const wv1::LoadReport& report) {
  const ExpectedModel& want = options_.expected_model;
  std::string why;
  const auto check = [&](const char* what, int64_t expected, int64_t got) {
    if (expected > 0 && got > 0 && expected != got && why.empty()) {
      why = absl::StrCat(what, " ", got, " where the router's model has ", expected);
    }
  };
  check("num_layers", want.num_layers, report.layout().num_layers());
  check("num_kv_heads", want.num_kv_heads, report.layout().num_kv_heads());
  check("head_dim", want.head_dim, report.layout().head_dim());
  check("vocab_size", want.vocab_size, report.vocab_size());
  if (why == worker.incompatible) return;
  if (!why.empty()) {
    TANDEM_LOG(ERROR, "router") << RoleName(worker.role) << " worker " << worker.address
                                << " serves another model (" << why << "); kept out of the pool";
    worker.healthy = false;
  } else {
    TANDEM_LOG(INFO, "router") << RoleName(worker.role) << " worker " << worker.address
                               << " now serves the router's model";
  }
  worker.incompatible = why;
}

void WorkerRegistry::MarkUnavailable(Worker& worker, const absl::Status& status) {
  worker.consecutive_failures = std::max(worker.consecutive_failures, options_.unhealthy_after_failures);
  if (worker.healthy) {
    worker.healthy = false;
    TANDEM_LOG(WARNING, "router") << RoleName(worker.role) << " worker " << worker.address
                                  << " is unhealthy (transport error: " << status.message() << ")";
  }
}

void WorkerRegistry::PollLoadNow() {
  struct LoadCall {
    grpc::ClientContext context;
    wv1::LoadRequest request;
    wv1::LoadReport report;
  };
  const std::vector<Worker*> members = Members();
  absl::BlockingCounter pending(static_cast<int>(members.size()));
  {
    for (Worker* worker : members) {
      auto* call = new LoadCall;
      call->context.set_deadline(absl::ToChronoTime(absl::Now() + options_.load_timeout));
      auto done = [this, worker, call, &pending](grpc::Status status) {
        bool abandon = false;
        {
          absl::MutexLock lock(&mu_);
          if (status.ok() && call->report.engine_stalled()) {
            // Its engine stopped moving while the process still answers (its progress watchdog): out of
            // the pool, and its calls are abandoned so that their streams resume elsewhere.
            worker->healthy = false;
            if (!worker->stall_abandoned) {
              worker->stall_abandoned = true;
              abandon = true;
              TANDEM_LOG(WARNING, "router") << RoleName(worker->role) << " worker " << worker->address
                                            << " reports its engine stalled; abandoning its calls";
            }
          } else if (status.ok()) {
            worker->stall_abandoned = false;
            CheckModelLocked(*worker, call->report);
            worker->load = std::move(call->report);
            worker->have_load = true;
            ++worker->report_seq;
            if (worker->load.running_requests() > 0) {
              worker->last_batch_requests = worker->load.running_requests();
              worker->last_batch_tokens = worker->load.running_context_tokens();
            }
          } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                     status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
            // A worker that refuses our cluster secret belongs to another cluster (or is misconfigured):
            // it answers health checks, but every real call would fail.
            MarkUnavailable(*worker, FromGrpcStatus(status));
          }
        }
        if (abandon && options_.on_unresponsive) options_.on_unresponsive(worker->role, worker->index);
        delete call;
        pending.DecrementCount();
      };
      switch (worker->role) {
        case WorkerRole::kPrefill:
          worker->prefill_stub->async()->GetLoad(&call->context, &call->request, &call->report, done);
          break;
        case WorkerRole::kDecode:
          worker->decode_stub->async()->GetLoad(&call->context, &call->request, &call->report, done);
          break;
        case WorkerRole::kColocated:
          worker->colocated_stub->async()->GetLoad(&call->context, &call->request, &call->report, done);
          break;
      }
    }
  }
  pending.Wait();
}

policy::ClusterSnapshot WorkerRegistry::Snapshot() const {
  policy::ClusterSnapshot snapshot;
  absl::MutexLock lock(&mu_);
  absl::MutexLock list_lock(&list_mu_);
  for (const auto& w : lists_[static_cast<int>(WorkerRole::kPrefill)]) {
    policy::PrefillWorkerState state;
    state.id = w->address;
    state.healthy = w->healthy;
    if (w->have_load) {
      state.queued_requests = w->load.queued_requests();
      state.queued_prompt_tokens = w->load.queued_tokens();
      state.running_tokens = w->load.running_context_tokens();
      // A rough queue-drain estimate; the SLO-aware policy uses its latency model instead.
      state.predicted_free_ms = w->load.recent_step_ms() * static_cast<double>(w->load.queued_requests());
      state.running_requests = w->load.running_requests();
      state.recent_step_ms = w->load.recent_step_ms();
      state.recent_batch_requests = w->last_batch_requests;
      state.recent_batch_tokens = w->last_batch_tokens;
    }
    state.report_seq = w->report_seq;
    snapshot.prefill.push_back(std::move(state));
  }
  for (const auto& w : lists_[static_cast<int>(WorkerRole::kDecode)]) {
    policy::DecodeWorkerState state;
    state.id = w->address;
    state.healthy = w->healthy;
    if (w->have_load) {
      state.running_batch_size = w->load.running_requests();
      state.total_context_tokens = w->load.running_context_tokens();
      state.free_kv_blocks = w->load.kv_blocks_free();
      state.total_kv_blocks = w->load.kv_blocks_total();
      if (w->load.block_size() > 0) state.block_size = w->load.block_size();
      state.queued_requests = w->load.queued_requests();
      state.recent_step_ms = w->load.recent_step_ms();
      state.recent_batch_size = w->last_batch_requests;
      state.recent_batch_context_tokens = w->last_batch_tokens;
    }
    state.report_seq = w->report_seq;
    snapshot.decode.push_back(std::move(state));
  }
  for (const auto& w : lists_[static_cast<int>(WorkerRole::kColocated)]) {
    policy::ColocatedWorkerState state;
    state.id = w->address;
    state.healthy = w->healthy;
    if (w->have_load) {
      state.queued_requests = w->load.queued_requests();
      state.queued_prompt_tokens = w->load.queued_tokens();
      state.prefilling_requests = w->load.prefilling_requests();
      state.running_batch_size = w->load.running_requests();
      state.total_context_tokens = w->load.running_context_tokens();
      state.free_kv_blocks = w->load.kv_blocks_free();
      state.total_kv_blocks = w->load.kv_blocks_total();
      if (w->load.block_size() > 0) state.block_size = w->load.block_size();
      if (w->load.step_token_budget() > 0) state.step_token_budget = w->load.step_token_budget();
      state.recent_step_ms = w->load.recent_step_ms();
    }
    state.report_seq = w->report_seq;
    snapshot.colocated.push_back(std::move(state));
  }
  return snapshot;
}

WorkerRegistry::Worker& WorkerRegistry::worker(WorkerRole role, int index) const {
  absl::MutexLock lock(&list_mu_);
  return *lists_[static_cast<int>(role)].at(static_cast<size_t>(index));
}

int WorkerRegistry::num_workers(WorkerRole role) const {
  absl::MutexLock lock(&list_mu_);
  return static_cast<int>(lists_[static_cast<int>(role)].size());
}

bool WorkerRegistry::member(WorkerRole role, int index) const {
  absl::MutexLock lock(&mu_);
  return worker(role, index).member;
}

const std::string& WorkerRegistry::address(WorkerRole role, int index) const {
  return worker(role, index).address;
}

bool WorkerRegistry::healthy(WorkerRole role, int index) const {
  absl::MutexLock lock(&mu_);
  return worker(role, index).healthy;
}

std::optional<wv1::LoadReport> WorkerRegistry::last_load(WorkerRole role, int index) const {
  absl::MutexLock lock(&mu_);
  const Worker& w = worker(role, index);
  if (!w.have_load) return std::nullopt;
  return w.load;
}

wv1::PrefillWorker::Stub& WorkerRegistry::prefill_stub(int index) const {
  return *worker(WorkerRole::kPrefill, index).prefill_stub;
}

wv1::DecodeWorker::Stub& WorkerRegistry::decode_stub(int index) const {
  return *worker(WorkerRole::kDecode, index).decode_stub;
}

wv1::ColocatedWorker::Stub& WorkerRegistry::colocated_stub(int index) const {
  return *worker(WorkerRole::kColocated, index).colocated_stub;
}

void WorkerRegistry::ReportCallFailure(WorkerRole role, int index, const absl::Status& status) {
  if (status.code() != absl::StatusCode::kUnavailable) return;
  absl::MutexLock lock(&mu_);
  MarkUnavailable(worker(role, index), status);
}

}  // namespace tandem::router
