#include "router/worker_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/blocking_counter.h"
#include "common/logging.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "proto/grpc_status.h"

namespace tandem::router {

namespace wv1 = ::tandem::worker::v1;

struct WorkerRegistry::Worker {
  WorkerRole role;
  int index;
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<wv1::PrefillWorker::Stub> prefill_stub;  // set for prefill workers
  std::unique_ptr<wv1::DecodeWorker::Stub> decode_stub;    // set for decode workers
  std::unique_ptr<HealthClient> health;
  // Guarded by the registry's mu_.
  bool healthy = false;
  int consecutive_failures = 0;
  bool have_load = false;
  wv1::LoadReport load;
  // The last batch a load report caught running: what recent_step_ms describes (online correction).
  int64_t last_batch_requests = 0;
  int64_t last_batch_tokens = 0;
};

namespace {

constexpr int kMaxReceiveBytes = 64 << 20;

const char* RoleName(WorkerRole role) { return role == WorkerRole::kPrefill ? "prefill" : "decode"; }

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

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseWorkerAddresses(absl::string_view flag,
                                                              absl::string_view text) {
  std::vector<std::string> addresses;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::Status s = CheckAddress(flag, part); !s.ok()) return s;
    addresses.emplace_back(part);
  }
  if (addresses.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": at least one worker address is required"));
  }
  return addresses;
}

absl::StatusOr<std::unique_ptr<WorkerRegistry>> WorkerRegistry::Create(WorkerRegistryOptions options) {
  if (options.prefill_addresses.empty()) {
    return absl::InvalidArgumentError("prefill worker list is empty");
  }
  if (options.decode_addresses.empty()) {
    return absl::InvalidArgumentError("decode worker list is empty");
  }
  for (const std::string& a : options.prefill_addresses) {
    if (absl::Status s = CheckAddress("prefill", a); !s.ok()) return s;
  }
  for (const std::string& a : options.decode_addresses) {
    if (absl::Status s = CheckAddress("decode", a); !s.ok()) return s;
  }
  if (options.unhealthy_after_failures < 1) {
    return absl::InvalidArgumentError("unhealthy_after_failures must be >= 1");
  }
  return std::unique_ptr<WorkerRegistry>(new WorkerRegistry(std::move(options)));
}

WorkerRegistry::WorkerRegistry(WorkerRegistryOptions options) : options_(std::move(options)) {
  auto open = [](WorkerRole role, int index, const std::string& address) {
    auto w = std::make_unique<Worker>();
    w->role = role;
    w->index = index;
    w->address = address;
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxReceiveBytes);
    w->channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    if (role == WorkerRole::kPrefill) {
      w->prefill_stub = wv1::PrefillWorker::NewStub(w->channel);
    } else {
      w->decode_stub = wv1::DecodeWorker::NewStub(w->channel);
    }
    w->health = std::make_unique<HealthClient>(w->channel, address);
    return w;
  };
  for (size_t i = 0; i < options_.prefill_addresses.size(); ++i) {
    prefill_.push_back(open(WorkerRole::kPrefill, static_cast<int>(i), options_.prefill_addresses[i]));
  }
  for (size_t i = 0; i < options_.decode_addresses.size(); ++i) {
    decode_.push_back(open(WorkerRole::kDecode, static_cast<int>(i), options_.decode_addresses[i]));
  }
}

WorkerRegistry::~WorkerRegistry() { Shutdown(); }

void WorkerRegistry::Start() {
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
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const absl::Time wake = std::min(next_health, next_load);
      // Wakes early only to stop.
      mu_.AwaitWithDeadline(absl::Condition(&stopping_), wake);
      if (stopping_) return;
    }
    const absl::Time now = absl::Now();
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
  absl::BlockingCounter pending(static_cast<int>(prefill_.size() + decode_.size()));
  for (auto* list : {&prefill_, &decode_}) {
    for (auto& w : *list) {
      Worker* worker = w.get();
      worker->health->Check("", options_.health_timeout, [this, worker, &pending](absl::Status status) {
        RecordHealth(*worker, status);
        pending.DecrementCount();
      });
    }
  }
  pending.Wait();
}

void WorkerRegistry::RecordHealth(Worker& worker, const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (status.ok()) {
    if (!worker.healthy) {
      TANDEM_LOG(INFO, "router") << RoleName(worker.role) << " worker " << worker.address
                                 << " is healthy";
    }
    worker.healthy = true;
    worker.consecutive_failures = 0;
    return;
  }
  ++worker.consecutive_failures;
  if (worker.healthy && worker.consecutive_failures >= options_.unhealthy_after_failures) {
    worker.healthy = false;
    TANDEM_LOG(WARNING, "router") << RoleName(worker.role) << " worker " << worker.address
                                  << " is unhealthy after " << worker.consecutive_failures
                                  << " failed health checks: " << status.message();
  }
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
  absl::BlockingCounter pending(static_cast<int>(prefill_.size() + decode_.size()));
  for (auto* list : {&prefill_, &decode_}) {
    for (auto& w : *list) {
      Worker* worker = w.get();
      auto* call = new LoadCall;
      call->context.set_deadline(absl::ToChronoTime(absl::Now() + options_.load_timeout));
      auto done = [this, worker, call, &pending](grpc::Status status) {
        {
          absl::MutexLock lock(&mu_);
          if (status.ok()) {
            worker->load = std::move(call->report);
            worker->have_load = true;
            if (worker->load.running_requests() > 0) {
              worker->last_batch_requests = worker->load.running_requests();
              worker->last_batch_tokens = worker->load.running_context_tokens();
            }
          } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
            MarkUnavailable(*worker, FromGrpcStatus(status));
          }
        }
        delete call;
        pending.DecrementCount();
      };
      if (worker->role == WorkerRole::kPrefill) {
        worker->prefill_stub->async()->GetLoad(&call->context, &call->request, &call->report, done);
      } else {
        worker->decode_stub->async()->GetLoad(&call->context, &call->request, &call->report, done);
      }
    }
  }
  pending.Wait();
}

policy::ClusterSnapshot WorkerRegistry::Snapshot() const {
  policy::ClusterSnapshot snapshot;
  absl::MutexLock lock(&mu_);
  for (const auto& w : prefill_) {
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
    snapshot.prefill.push_back(std::move(state));
  }
  for (const auto& w : decode_) {
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
    snapshot.decode.push_back(std::move(state));
  }
  return snapshot;
}

WorkerRegistry::Worker& WorkerRegistry::worker(WorkerRole role, int index) const {
  const auto& list = role == WorkerRole::kPrefill ? prefill_ : decode_;
  return *list.at(static_cast<size_t>(index));
}

int WorkerRegistry::num_workers(WorkerRole role) const {
  return static_cast<int>(role == WorkerRole::kPrefill ? prefill_.size() : decode_.size());
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

void WorkerRegistry::ReportCallFailure(WorkerRole role, int index, const absl::Status& status) {
  if (status.code() != absl::StatusCode::kUnavailable) return;
  absl::MutexLock lock(&mu_);
  MarkUnavailable(worker(role, index), status);
}

}  // namespace tandem::router
