#include "prefill/prefill_engine.h"

#include <chrono>
#include <mutex>
#include <random>

#include "absl/strings/str_cat.h"
#include "batching/admission.h"
#include "common/logging.h"
#include "model/generator.h"

namespace tandem {
namespace {

double MillisSince(absl::Time start, absl::Time end) { return absl::ToDoubleMilliseconds(end - start); }

// "lease-" and 32 hex digits from the operating system's random source.
std::string NewLeaseId() {
  static std::mutex mu;
  static std::random_device device;  // /dev/urandom on Linux
  std::lock_guard<std::mutex> lock(mu);
  std::string id = "lease-";
  for (int i = 0; i < 4; ++i) absl::StrAppend(&id, absl::Hex(device(), absl::kZeroPad8));
  return id;
}

}  // namespace

PrefillEngine::PrefillEngine(Model& model, KvCache& cache, KvLayout layout, const PrefillEngineOptions& options)
    : model_(model), cache_(cache), layout_(std::move(layout)), options_(options) {
  model_.set_progress_hook([this] { heartbeat_.Beat(); });  // a long prompt step still beats, per layer
  thread_ = std::thread([this] { Loop(); });
}

PrefillEngine::~PrefillEngine() { Shutdown(); }

void PrefillEngine::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  model_.set_progress_hook(nullptr);
  std::deque<Queued> orphans;
  {
    std::lock_guard<std::mutex> lock(mu_);
    orphans.swap(queue_);
    queued_tokens_ = 0;
    for (auto& [id, lease] : leases_) FreeBlocks(lease.blocks);
    leases_.clear();
  }
  for (Queued& q : orphans) q.job.done(absl::UnavailableError("prefill worker is shutting down"));
}

absl::Status PrefillEngine::Submit(PrefillJob job) {
  GenerationRequest check;
  check.prompt = job.prompt;
  check.sampling = job.sampling;
  check.max_tokens = 1;
  if (absl::Status s = ValidateRequest(model_, check); !s.ok()) return s;
  if (job.lease < absl::ZeroDuration() || job.lease > options_.max_lease) {
    return absl::InvalidArgumentError(absl::StrCat("lease_ms must be in [0, ", absl::ToInt64Milliseconds(options_.max_lease),
                                                   "] (0: the worker's default), got ",
                                                   absl::ToInt64Milliseconds(job.lease)));
  }
  if (absl::Status s = cache_.CheckCanHold(static_cast<int64_t>(job.prompt.size()),
                                           absl::StrCat("prompt of ", job.prompt.size(), " tokens"), "prefill worker");
      !s.ok()) {
    return s;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return absl::UnavailableError("prefill worker is shutting down");
    if (static_cast<int32_t>(queue_.size()) >= options_.max_queue) {
      return absl::ResourceExhaustedError(
          absl::StrCat("prefill queue is full (", queue_.size(), " requests queued)"));
    }
    queued_tokens_ += static_cast<int64_t>(job.prompt.size());
    queue_.push_back({std::move(job), absl::Now()});
  }
  cv_.notify_all();
  return absl::OkStatus();
}

bool PrefillEngine::Release(const std::string& lease_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return false;
  FreeBlocks(it->second.blocks);
  leases_.erase(it);
  cv_.notify_all();  // blocks came back: a waiting prompt may now fit
  return true;
}

void PrefillEngine::FreeBlocks(const std::vector<int32_t>& blocks) {
  absl::Status s = cache_.allocator().Free(blocks);
  if (!s.ok()) TANDEM_LOG(ERROR, "prefill") << "freeing blocks: " << s;
}

PrefillLoad PrefillEngine::Load() const {
  std::lock_guard<std::mutex> lock(mu_);
  PrefillLoad load;
  load.queued_requests = static_cast<int32_t>(queue_.size());
  load.queued_tokens = queued_tokens_;
  load.running_requests = running_requests_;
  load.running_tokens = running_tokens_;
  load.leases_held = static_cast<int32_t>(leases_.size());
  load.blocks_free = cache_.allocator().num_free();
  load.blocks_total = cache_.allocator().num_total();
  load.recent_step_ms = recent_step_ms_;
  return load;
}

absl::StatusOr<int32_t> PrefillEngine::LeaseTokens(const std::string& lease_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) {
    return absl::NotFoundError(absl::StrCat("KV lease ", lease_id, " is unknown (released or expired)"));
  }
  it->second.expires = absl::Now() + it->second.duration;  // a pull under way renews the lease
  return it->second.num_tokens;
}

absl::Status PrefillEngine::ReadTokens(const std::string& lease_id, int32_t layer, int32_t token_begin,
                                       int32_t num_tokens, void* k_out, void* v_out) {
  // The lock keeps the lease (and so its blocks) alive for the copy; copies are short (one chunk).
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) {
    return absl::NotFoundError(absl::StrCat("KV lease ", lease_id, " is unknown (released or expired)"));
  }
  if (token_begin < 0 || num_tokens < 0 || token_begin + num_tokens > it->second.num_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("KV lease ", lease_id, " holds ", it->second.num_tokens,
                                                   " tokens; asked for [", token_begin, ", ",
                                                   token_begin + num_tokens, ")"));
  }
  it->second.expires = absl::Now() + it->second.duration;
  return cache_.ReadTokens(it->second.blocks, layer, token_begin, num_tokens, k_out, v_out);
}

void PrefillEngine::ExpireLeases(absl::Time now) {
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.expires <= now) {
      TANDEM_LOG(WARNING, "prefill") << "KV lease " << it->first << " expired; freeing "
                                      << it->second.blocks.size() << " blocks";
      FreeBlocks(it->second.blocks);
      it = leases_.erase(it);
    } else {
      ++it;
    }
  }
}

void PrefillEngine::Loop() {
  const int32_t block_size = cache_.spec().block_size;
  for (;;) {
    std::vector<Queued> batch;
    std::vector<std::vector<int32_t>> blocks;
    std::vector<Queued> cancelled;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Wake at least every 100 ms to expire leases.
      cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stop_ || !queue_.empty(); });
      heartbeat_.Beat();
      if (stop_) return;
      ExpireLeases(absl::Now());
      // Cancelled prompts leave the queue before the batch is planned; they are never batched.
      std::vector<int64_t> lens;
      for (auto it = queue_.begin(); it != queue_.end() && static_cast<int32_t>(lens.size()) < options_.max_batch;) {
        if (it->job.cancelled->load()) {
          queued_tokens_ -= static_cast<int64_t>(it->job.prompt.size());
          cancelled.push_back(std::move(*it));
          it = queue_.erase(it);
          continue;
        }
        lens.push_back(static_cast<int64_t>(it->job.prompt.size()));
        ++it;
      }
      // The batch policy the simulator runs too (batching/admission.h); short of blocks, the head waits
      // for leases to be released or to expire.
      const batching::Admission plan = batching::PlanPrefillBatch(
          lens, {.max_batch = options_.max_batch, .max_batch_tokens = options_.max_batch_tokens},
          cache_.AdmissionPool());
      for (int64_t i = 0; i < plan.count; ++i) {
        Queued& head = queue_.front();
        const int64_t len = static_cast<int64_t>(head.job.prompt.size());
        auto got = cache_.allocator().Allocate(BlocksForTokens(len, block_size));
        if (!got.ok()) {  // cannot happen: only this thread allocates, under mu_
          TANDEM_LOG(ERROR, "prefill") << "planned blocks were not free: " << got.status();
          break;
        }
        blocks.push_back(std::move(*got));
        queued_tokens_ -= len;
        batch.push_back(std::move(head));
        queue_.pop_front();
      }
      const int64_t tokens = plan.tokens;
      running_requests_ = static_cast<int32_t>(batch.size());
      running_tokens_ = tokens;
    }
    for (Queued& q : cancelled) q.job.done(absl::CancelledError("cancelled while queued for prefill"));
    if (batch.empty()) continue;

    const absl::Time start = absl::Now();
    std::vector<SequenceStep> steps;
    for (size_t i = 0; i < batch.size(); ++i) steps.push_back({batch[i].job.prompt, 0, blocks[i]});
    std::vector<SampleRow> rows;
    bool logprobs = false;
    for (const Queued& q : batch) {
      rows.push_back(Sampler(q.job.sampling).NextRow());
      logprobs = logprobs || q.job.logprobs;
    }
    absl::StatusOr<StepResult> sampled = model_.Step(steps, cache_, rows, logprobs);
    heartbeat_.Beat();
    const absl::Time end = absl::Now();
    const double compute_ms = MillisSince(start, end);
    if (options_.on_step && sampled.ok()) {
      int64_t batch_tokens = 0;
      for (const Queued& q : batch) batch_tokens += static_cast<int64_t>(q.job.prompt.size());
      options_.on_step(end - start, static_cast<int32_t>(batch.size()), batch_tokens);
    }

    std::vector<std::pair<std::function<void(absl::StatusOr<PrefillResult>)>, absl::StatusOr<PrefillResult>>> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_requests_ = 0;
      running_tokens_ = 0;
      recent_step_ms_ = recent_step_ms_ == 0 ? compute_ms : 0.8 * recent_step_ms_ + 0.2 * compute_ms;
      for (size_t i = 0; i < batch.size(); ++i) {
        PrefillJob& job = batch[i].job;
        if (!sampled.ok() || job.cancelled->load()) {
          FreeBlocks(blocks[i]);
          done.emplace_back(std::move(job.done),
                            sampled.ok() ? absl::CancelledError("cancelled during prefill") : sampled.status());
          continue;
        }
        PrefillResult result;
        result.first_token = sampled->tokens[i];
        if (job.logprobs) result.first_logprob = sampled->logprobs[i];
        // 128 random bits: a lease id is a capability (whoever knows it can pull or release the KV),
        // so it must not be guessable from a counter or the request id (issue 11, item 1).
        result.lease_id = NewLeaseId();
        result.num_tokens = static_cast<int32_t>(job.prompt.size());
        const absl::Duration duration = job.lease > absl::ZeroDuration() ? job.lease : options_.default_lease;
        result.lease_ms = absl::ToInt64Milliseconds(duration);
        result.queue_ms = MillisSince(batch[i].enqueued, start);
        result.compute_ms = compute_ms;
        leases_[result.lease_id] = Lease{std::move(blocks[i]), result.num_tokens, duration, end + duration};
        TANDEM_LOG_REQ(INFO, "prefill", job.request_id)
            << "prefilled " << result.num_tokens << " tokens in a batch of " << batch.size() << " ("
            << compute_ms << " ms); lease " << result.lease_id;
        done.emplace_back(std::move(job.done), std::move(result));
      }
    }
    for (auto& [callback, result] : done) callback(std::move(result));
  }
}

}  // namespace tandem
