#include "decode/decode_engine.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "batching/admission.h"
#include "common/kv_source_failure.h"
#include "common/logging.h"
#include "model/generator.h"

namespace tandem {

struct DecodeEngine::Sequence {
  DecodeJob job;
  std::vector<int32_t> blocks;
  std::vector<int32_t> tokens;  // prompt + generated
  int64_t num_cached = 0;       // tokens whose KV is in the cache
  int32_t generated = 0;
  std::unique_ptr<Sampler> sampler;
  absl::Time submitted, admitted, joined;
  double transfer_ms = 0;
  std::string finish_reason;
};

namespace {

// Writes pulled KV into a sequence's reserved blocks.
class BlockSink : public KvSink {
 public:
  BlockSink(KvCache& cache, const KvLayout& layout, const std::vector<int32_t>& blocks, int32_t num_tokens)
      : cache_(cache), layout_(layout), blocks_(blocks), num_tokens_(num_tokens) {}
  const KvLayout& layout() const override { return layout_; }
  int32_t num_tokens() const override { return num_tokens_; }
  absl::Status WriteTokens(int32_t layer, int32_t token_begin, int32_t num_tokens, const void* k,
                           const void* v) override {
    if (token_begin < 0 || num_tokens < 0 || token_begin + num_tokens > num_tokens_) {
      return absl::InvalidArgumentError(absl::StrCat("KV chunk tokens [", token_begin, ", ",
                                                     token_begin + num_tokens, ") outside the prompt's ",
                                                     num_tokens_));
    }
    return cache_.WriteTokens(blocks_, layer, token_begin, num_tokens, k, v);
  }

 private:
  KvCache& cache_;
  const KvLayout& layout_;
  const std::vector<int32_t>& blocks_;
  int32_t num_tokens_;
};

}  // namespace

DecodeEngine::DecodeEngine(Model& model, KvCache& cache, KvLayout layout, KvTransport& transport,
                           ReleaseFn release, const DecodeEngineOptions& options)
    : model_(model),
      cache_(cache),
      layout_(std::move(layout)),
      transport_(transport),
      release_(std::move(release)),
      options_(options) {
  model_.set_progress_hook([this] { heartbeat_.Beat(); });  // a long prompt step still beats, per layer
  thread_ = std::thread([this] { Loop(); });
  for (int i = 0; i < std::max(1, options_.transfer_threads); ++i) {
    transfer_threads_.emplace_back([this] { TransferLoop(); });
  }
}

DecodeEngine::~DecodeEngine() { Shutdown(); }

absl::Status DecodeEngine::Submit(DecodeJob job) {
  GenerationRequest check;
  check.prompt = job.prompt;
  check.sampling = job.sampling;
  check.max_tokens = job.max_tokens;
  if (absl::Status s = ValidateRequest(model_, check); !s.ok()) return s;
  if (job.first_token < 0 || job.first_token >= model_.vocab_size()) {
    return absl::InvalidArgumentError(absl::StrCat("first_token ", job.first_token, " is outside the vocabulary [0, ",
                                                   model_.vocab_size(), ")"));
  }
  if (job.rng_draws_used < 1 || job.rng_draws_used > static_cast<int32_t>(job.prompt.size()) + 1) {
    return absl::InvalidArgumentError(absl::StrCat("rng_draws_used ", job.rng_draws_used, " is outside [1, prompt length + 1]"));
  }
  if (job.kv.num_tokens != static_cast<int32_t>(job.prompt.size())) {
    return absl::InvalidArgumentError(absl::StrCat("kv.num_tokens ", job.kv.num_tokens, " != prompt length ",
                                                   job.prompt.size()));
  }
  if (absl::Status s = CheckSameLayout(layout_, job.kv.layout); !s.ok()) return s;
  if (absl::Status s = cache_.CheckCanHold(static_cast<int64_t>(job.prompt.size()) + job.max_tokens, "request",
                                           "decode worker");
      !s.ok()) {
    return s;
  }
  auto seq = std::make_unique<Sequence>();
  seq->job = std::move(job);
  seq->submitted = absl::Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return absl::UnavailableError("decode worker is shutting down");
    const size_t queued = waiting_.size() + to_transfer_.size() + transferring_;
    if (queued >= static_cast<size_t>(options_.max_queue)) {
      return absl::ResourceExhaustedError(absl::StrCat("decode queue is full (", queued, " requests queued)"));
    }
    waiting_.push_back(std::move(seq));
    ++wake_;
  }
  cv_.notify_all();
  return absl::OkStatus();
}

DecodeLoad DecodeEngine::Load() const {
  std::lock_guard<std::mutex> lock(mu_);
  DecodeLoad load;
  load.queued_requests = static_cast<int32_t>(waiting_.size() + to_transfer_.size() + ready_.size()) + transferring_;
  load.running_requests = running_count_;
  load.running_context_tokens = running_context_;
  load.blocks_free = cache_.allocator().num_free();
  load.blocks_total = cache_.allocator().num_total();
  load.recent_step_ms = recent_step_ms_;
  return load;
}

void DecodeEngine::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  transfer_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  model_.set_progress_hook(nullptr);
  for (auto& t : transfer_threads_) {
    if (t.joinable()) t.join();
  }
  std::deque<std::unique_ptr<Sequence>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto* q : {&waiting_, &to_transfer_, &ready_}) {
      for (auto& s : *q) left.push_back(std::move(s));
      q->clear();
    }
  }
  for (auto& s : left) Finish(std::move(s), absl::UnavailableError("decode worker is shutting down"));
}

void DecodeEngine::Finish(std::unique_ptr<Sequence> seq, absl::Status status) {
  if (!seq->blocks.empty()) {
    absl::Status freed = cache_.allocator().Free(seq->blocks);
    if (!freed.ok()) TANDEM_LOG_REQ(ERROR, "decode", seq->job.request_id) << "freeing blocks: " << freed;
    seq->blocks.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++wake_;  // blocks came back: a waiting job may fit now
    }
    cv_.notify_all();
  }
  DecodeSummary summary;
  summary.finish_reason = seq->finish_reason;
  summary.generated = seq->generated;
  const absl::Time now = absl::Now();
  if (seq->admitted != absl::Time()) summary.queue_ms = absl::ToDoubleMilliseconds(seq->admitted - seq->submitted);
  summary.transfer_ms = seq->transfer_ms;
  if (seq->joined != absl::Time()) summary.compute_ms = absl::ToDoubleMilliseconds(now - seq->joined);
  if (status.ok()) {
    TANDEM_LOG_REQ(INFO, "decode", seq->job.request_id)
        << "finished (" << summary.finish_reason << "): " << summary.generated << " tokens, queue "
        << summary.queue_ms << " ms, transfer " << summary.transfer_ms << " ms, decode " << summary.compute_ms << " ms";
  } else {
    TANDEM_LOG_REQ(INFO, "decode", seq->job.request_id) << "ended: " << status;
  }
  seq->job.on_done(std::move(status), summary);
}

void DecodeEngine::TransferLoop() {
  for (;;) {
    std::unique_ptr<Sequence> seq;
    {
      std::unique_lock<std::mutex> lock(mu_);
      transfer_cv_.wait(lock, [&] { return stop_ || !to_transfer_.empty(); });
      if (stop_) return;
      seq = std::move(to_transfer_.front());
      to_transfer_.pop_front();
      ++transferring_;
    }
    const absl::Time start = absl::Now();
    absl::Status status;
    if (seq->job.cancelled->load()) {
      status = absl::CancelledError("cancelled before its KV transfer");
    } else {
      BlockSink sink(cache_, layout_, seq->blocks, static_cast<int32_t>(seq->job.prompt.size()));
      absl::StatusOr<PullStats> stats =
          transport_.Pull(seq->job.kv, sink, start + options_.transfer_timeout);
      status = stats.status();
      if (options_.on_transfer) options_.on_transfer(stats, absl::Now() - start);
      if (stats.ok()) {
        TANDEM_LOG_REQ(INFO, "decode", seq->job.request_id)
            << "pulled " << stats->bytes << " bytes of KV in " << stats->chunks << " chunks over "
            << transport_.name();
      }
    }
    seq->transfer_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    // The source may free its lease now, whatever happened: the request no longer needs it there.
    release_(seq->job.kv);
    {
      std::lock_guard<std::mutex> lock(mu_);
      --transferring_;
      if (status.ok()) {
        seq->num_cached = static_cast<int64_t>(seq->job.prompt.size());
        ready_.push_back(std::move(seq));
      }
    }
    if (!status.ok()) {
      Finish(std::move(seq),
             MarkKvSourceFailure(absl::Status(status.code(), absl::StrCat("KV transfer: ", status.message()))));
    }
    cv_.notify_all();
  }
}

void DecodeEngine::Loop() {
  const int32_t block_size = cache_.spec().block_size;
  std::vector<std::unique_ptr<Sequence>> running;
  uint64_t seen_wake = 0;
  for (;;) {
    std::vector<std::unique_ptr<Sequence>> cancelled;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Sleep until there is a step to run or something changed that may let a waiting job in.
      cv_.wait_for(lock, std::chrono::milliseconds(50),
                   [&] { return stop_ || !ready_.empty() || !running.empty() || wake_ != seen_wake; });
      seen_wake = wake_;
      heartbeat_.Beat();
      if (stop_) break;
      // Cancelled requests leave the queue first; the rest are admitted FCFS by the policy the simulator
      // runs too (batching/admission.h): each reserves its worst case (prompt + max_tokens) or waits.
      std::vector<batching::SequenceSize> sizes;
      for (auto it = waiting_.begin(); it != waiting_.end();) {
        if ((*it)->job.cancelled->load()) {
          cancelled.push_back(std::move(*it));
          it = waiting_.erase(it);
          continue;
        }
        sizes.push_back({static_cast<int64_t>((*it)->job.prompt.size()), (*it)->job.max_tokens});
        ++it;
      }
      const batching::Admission admission =
          batching::PlanDecodeAdmission(sizes, cache_.AdmissionPool());
      for (int64_t i = 0; i < admission.count; ++i) {
        Sequence& head = *waiting_.front();
        auto blocks = cache_.allocator().Allocate(
            BlocksForTokens(head.job.prompt.size() + head.job.max_tokens, block_size));
        if (!blocks.ok()) {  // cannot happen: only this thread allocates
          TANDEM_LOG(ERROR, "decode") << "planned blocks were not free: " << blocks.status();
          break;
        }
        head.blocks = std::move(*blocks);
        head.admitted = absl::Now();
        to_transfer_.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
        transfer_cv_.notify_one();
      }
      const int64_t joins = batching::DecodeJoins(static_cast<int64_t>(ready_.size()),
                                                  static_cast<int64_t>(running.size()), options_.max_batch);
      for (int64_t i = 0; i < joins; ++i) {
        ready_.front()->joined = absl::Now();
        running.push_back(std::move(ready_.front()));
        ready_.pop_front();
      }
    }
    for (auto& seq : cancelled) Finish(std::move(seq), absl::CancelledError("cancelled while waiting for KV blocks"));

    // Sequences that just joined: the first token may already end them.
    std::vector<SequenceStep> steps;
    std::vector<Sequence*> batch;
    for (auto it = running.begin(); it != running.end();) {
      Sequence& seq = **it;
      if (seq.job.cancelled->load()) {
        Finish(std::move(*it), absl::CancelledError("cancelled"));
        it = running.erase(it);
        continue;
      }
      if (seq.generated == 0) {
        seq.tokens = seq.job.prompt;
        seq.tokens.push_back(seq.job.first_token);
        seq.generated = 1;
        seq.sampler = std::make_unique<Sampler>(seq.job.sampling);
        // The prefill worker's draw for the first token, or every draw before it for a resumed request.
        for (int32_t i = 0; i < seq.job.rng_draws_used; ++i) seq.sampler->SkipOne();
        seq.finish_reason = FinishReasonAfter(seq.job.first_token, seq.generated, seq.job.max_tokens,
                                              seq.job.stop_token_ids);
        if (!seq.finish_reason.empty()) {
          Finish(std::move(*it), absl::OkStatus());
          it = running.erase(it);
          continue;
        }
      }
      batch.push_back(&seq);
      steps.push_back({std::span<const int32_t>(seq.tokens).last(1), seq.num_cached, seq.blocks});
      ++it;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_count_ = static_cast<int32_t>(running.size());
      running_context_ = 0;
      for (auto& seq : running) running_context_ += static_cast<int64_t>(seq->tokens.size());
    }
    if (batch.empty()) continue;

    const absl::Time start = absl::Now();
    std::vector<SampleRow> rows;
    bool logprobs = false;
    for (Sequence* seq : batch) {
      rows.push_back(seq->sampler->NextRow());
      logprobs = logprobs || seq->job.logprobs;
    }
    absl::StatusOr<StepResult> sampled = model_.Step(steps, cache_, rows, logprobs);
    heartbeat_.Beat();
    const double step_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    {
      std::lock_guard<std::mutex> lock(mu_);
      recent_step_ms_ = recent_step_ms_ == 0 ? step_ms : 0.8 * recent_step_ms_ + 0.2 * step_ms;
    }
    if (options_.on_step && sampled.ok()) {
      options_.on_step(absl::Milliseconds(step_ms), static_cast<int32_t>(batch.size()));
    }
    if (!sampled.ok()) {
      TANDEM_LOG(ERROR, "decode") << "step failed: " << sampled.status();
      for (auto& seq : running) Finish(std::move(seq), sampled.status());
      running.clear();
      continue;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      Sequence& seq = *batch[i];
      seq.num_cached += 1;
      const int32_t token = sampled->tokens[i];
      seq.tokens.push_back(token);
      seq.generated += 1;
      seq.job.on_tokens({token}, seq.job.logprobs ? std::vector<float>{sampled->logprobs[i]} : std::vector<float>{});
      seq.finish_reason = FinishReasonAfter(token, seq.generated, seq.job.max_tokens, seq.job.stop_token_ids);
    }
    for (auto it = running.begin(); it != running.end();) {
      if (!(*it)->finish_reason.empty()) {
        Finish(std::move(*it), absl::OkStatus());
        it = running.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& seq : running) Finish(std::move(seq), absl::UnavailableError("decode worker is shutting down"));
}

}  // namespace tandem
