#include "colocated/colocated_engine.h"

#include <algorithm>
#include <chrono>
#include <span>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "model/generator.h"

namespace tandem {

struct ColocatedEngine::Sequence {
  ColocatedJob job;
  std::vector<int32_t> blocks;
  std::vector<int32_t> tokens;  // prompt + generated
  int64_t num_cached = 0;       // tokens whose KV is in the cache
  int32_t generated = 0;
  int32_t prefill_steps = 0;
  std::unique_ptr<Sampler> sampler;
  absl::Time submitted, admitted, first_token;
  std::string finish_reason;
  int64_t prompt_len() const { return static_cast<int64_t>(job.prompt.size()); }
};

absl::StatusOr<std::unique_ptr<ColocatedEngine>> ColocatedEngine::Create(Model& model, KvCache& cache,
                                                                         const ColocatedEngineOptions& options) {
  const batching::ColocatedBatchOptions batch = {.step_token_budget = options.step_token_budget,
                                                 .max_batch = options.max_batch,
                                                 .block_size = cache.spec().block_size};
  if (absl::Status s = batch.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("colocated engine: ", s.message()));
  }
  if (options.max_queue < 0) return absl::InvalidArgumentError("colocated engine: max_queue must be >= 0");
  return std::unique_ptr<ColocatedEngine>(new ColocatedEngine(model, cache, options, batch));
}

ColocatedEngine::ColocatedEngine(Model& model, KvCache& cache, const ColocatedEngineOptions& options,
                                 const batching::ColocatedBatchOptions& batch_options)
    : model_(model), cache_(cache), options_(options), batch_options_(batch_options), paused_(options.start_paused) {
  model_.set_progress_hook([this] { heartbeat_.Beat(); });  // a long prompt step still beats, per layer
  thread_ = std::thread([this] { Loop(); });
}

ColocatedEngine::~ColocatedEngine() { Shutdown(); }

absl::Status ColocatedEngine::Submit(ColocatedJob job) {
  GenerationRequest check;
  check.prompt = job.prompt;
  check.sampling = job.sampling;
  check.max_tokens = job.max_tokens;
  if (absl::Status s = ValidateRequest(model_, check); !s.ok()) return s;
  if (job.rng_draws_used < 0 || job.rng_draws_used > static_cast<int32_t>(job.prompt.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("rng_draws_used ", job.rng_draws_used, " is outside [0, prompt length]"));
  }
  if (absl::Status s = cache_.CheckCanHold(static_cast<int64_t>(job.prompt.size()) + job.max_tokens, "request",
                                           "colocated worker");
      !s.ok()) {
    return s;
  }
  auto seq = std::make_unique<Sequence>();
  seq->job = std::move(job);
  seq->submitted = absl::Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return absl::UnavailableError("colocated worker is shutting down");
    if (waiting_.size() >= static_cast<size_t>(options_.max_queue)) {
      return absl::ResourceExhaustedError(absl::StrCat("queue is full (", waiting_.size(), " requests queued)"));
    }
    waiting_tokens_ += seq->prompt_len();
    waiting_.push_back(std::move(seq));
  }
  cv_.notify_all();
  return absl::OkStatus();
}

ColocatedLoad ColocatedEngine::Load() const {
  std::lock_guard<std::mutex> lock(mu_);
  ColocatedLoad load;
  load.queued_requests = static_cast<int32_t>(waiting_.size());
  load.queued_tokens = waiting_tokens_ + prefill_left_tokens_;
  load.prefilling_requests = prefilling_count_;
  load.running_requests = running_count_;
  load.running_context_tokens = running_context_;
  load.blocks_free = cache_.allocator().num_free();
  load.blocks_total = cache_.allocator().num_total();
  load.recent_step_ms = recent_step_ms_;
  load.step_token_budget = options_.step_token_budget;
  return load;
}

void ColocatedEngine::Resume() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    paused_ = false;
  }
  cv_.notify_all();
}

void ColocatedEngine::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  model_.set_progress_hook(nullptr);
  std::deque<std::unique_ptr<Sequence>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(waiting_);
    waiting_tokens_ = 0;
  }
  for (auto& s : left) Finish(std::move(s), absl::UnavailableError("colocated worker is shutting down"));
}

void ColocatedEngine::CheckFinished(Sequence& seq) {
  seq.finish_reason = FinishReasonAfter(seq.tokens.back(), seq.generated, seq.job.max_tokens, seq.job.stop_token_ids);
}

void ColocatedEngine::Finish(std::unique_ptr<Sequence> seq, absl::Status status) {
  if (!seq->blocks.empty()) {
    absl::Status freed = cache_.allocator().Free(seq->blocks);
    if (!freed.ok()) TANDEM_LOG_REQ(ERROR, "colocated", seq->job.request_id) << "freeing blocks: " << freed;
    seq->blocks.clear();
  }
  ColocatedSummary summary;
  summary.finish_reason = seq->finish_reason;
  summary.generated = seq->generated;
  summary.prefill_steps = seq->prefill_steps;
  const absl::Time now = absl::Now();
  if (seq->admitted != absl::Time()) {
    summary.queue_ms = absl::ToDoubleMilliseconds(seq->admitted - seq->submitted);
    const absl::Time prefill_end = seq->first_token != absl::Time() ? seq->first_token : now;
    summary.prefill_ms = absl::ToDoubleMilliseconds(prefill_end - seq->admitted);
  }
  if (seq->first_token != absl::Time()) summary.decode_ms = absl::ToDoubleMilliseconds(now - seq->first_token);
  if (status.ok()) {
    TANDEM_LOG_REQ(INFO, "colocated", seq->job.request_id)
        << "finished (" << summary.finish_reason << "): " << summary.generated << " tokens, queue "
        << summary.queue_ms << " ms, prefill " << summary.prefill_ms << " ms in " << summary.prefill_steps
        << " steps, decode " << summary.decode_ms << " ms";
  } else {
    TANDEM_LOG_REQ(INFO, "colocated", seq->job.request_id) << "ended: " << status;
  }
  seq->job.on_done(std::move(status), summary);
}

void ColocatedEngine::Loop() {
  // Engine-thread state: prompts being prefilled and sequences decoding, each in admission order.
  std::vector<std::unique_ptr<Sequence>> prefilling, decoding;
  int64_t step_index = 0;
  for (;;) {
    std::vector<std::unique_ptr<Sequence>> cancelled;
    // Cancelled sequences leave before the step is planned, and free their blocks.
    for (auto* list : {&prefilling, &decoding}) {
      for (auto it = list->begin(); it != list->end();) {
        if ((*it)->job.cancelled->load()) {
          cancelled.push_back(std::move(*it));
          it = list->erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& seq : cancelled) Finish(std::move(seq), absl::CancelledError("cancelled"));
    cancelled.clear();

    batching::ColocatedStepPlan plan;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(50), [&] {
        return stop_ || (!paused_ && (!waiting_.empty() || !prefilling.empty() || !decoding.empty()));
      });
      heartbeat_.Beat();
      if (stop_) break;
      if (paused_) continue;
      for (auto it = waiting_.begin(); it != waiting_.end();) {
        if ((*it)->job.cancelled->load()) {
          waiting_tokens_ -= (*it)->prompt_len();
          cancelled.push_back(std::move(*it));
          it = waiting_.erase(it);
        } else {
          ++it;
        }
      }
      batching::ColocatedBatchState state;
      state.decoding = static_cast<int64_t>(decoding.size());
      for (const auto& seq : prefilling) state.prefilling.push_back({seq->prompt_len(), seq->num_cached});
      for (const auto& seq : waiting_) {
        state.waiting.push_back({seq->prompt_len(), seq->job.max_tokens});
        if (static_cast<int64_t>(state.waiting.size()) >= batch_options_.max_batch) break;  // enough to plan
      }
      state.free_blocks = cache_.allocator().num_free();
      plan = batching::PlanColocatedStep(state, batch_options_);
      for (int64_t i = 0; i < plan.admit; ++i) {
        std::unique_ptr<Sequence>& head = waiting_.front();
        const int64_t need = batching::BlocksFor(head->prompt_len() + head->job.max_tokens, batch_options_.block_size);
        absl::StatusOr<std::vector<int32_t>> blocks = cache_.allocator().Allocate(static_cast<int32_t>(need));
        if (!blocks.ok()) {  // cannot happen: this thread is the pool's only user and planned on its count
          TANDEM_LOG(ERROR, "colocated") << "admission: " << blocks.status();
          plan.chunks.resize(prefilling.size());
          plan.admit = i;
          break;
        }
        head->blocks = *std::move(blocks);
        head->admitted = absl::Now();
        head->tokens = head->job.prompt;
        head->sampler = std::make_unique<Sampler>(head->job.sampling);
        for (int32_t d = 0; d < head->job.rng_draws_used; ++d) head->sampler->SkipOne();
        waiting_tokens_ -= head->prompt_len();
        prefilling.push_back(std::move(head));
        waiting_.pop_front();
      }
      // Load() reads these.
      prefilling_count_ = static_cast<int32_t>(prefilling.size());
      prefill_left_tokens_ = 0;
      for (const auto& seq : prefilling) prefill_left_tokens_ += seq->prompt_len() - seq->num_cached;
      running_count_ = static_cast<int32_t>(decoding.size());
      running_context_ = 0;
      for (const auto& seq : decoding) running_context_ += static_cast<int64_t>(seq->tokens.size());
    }
    for (auto& seq : cancelled) Finish(std::move(seq), absl::CancelledError("cancelled while queued"));
    if (plan.tokens() == 0) continue;

    // The step: decodes first, then prompt chunks (the plan's order).
    std::vector<SequenceStep> steps;
    std::vector<SampleRow> rows;
    std::vector<Sequence*> decode_batch;
    struct Chunk {
      Sequence* seq;
      int64_t tokens;
      bool last;
    };
    std::vector<Chunk> chunks;
    bool logprobs = false;
    for (int64_t i = 0; i < plan.decode; ++i) {
      Sequence& seq = *decoding[i];
      decode_batch.push_back(&seq);
      steps.push_back({std::span<const int32_t>(seq.tokens).last(1), seq.num_cached, seq.blocks});
      rows.push_back(seq.sampler->NextRow());
      logprobs = logprobs || seq.job.logprobs;
    }
    for (size_t i = 0; i < prefilling.size() && i < plan.chunks.size(); ++i) {
      if (plan.chunks[i] == 0) continue;
      Sequence& seq = *prefilling[i];
      const bool last = seq.num_cached + plan.chunks[i] == seq.prompt_len();
      chunks.push_back({&seq, plan.chunks[i], last});
      steps.push_back({std::span<const int32_t>(seq.tokens).subspan(seq.num_cached, plan.chunks[i]),
                       seq.num_cached, seq.blocks});
      // A chunk that does not end the prompt samples nothing: its row is a greedy placeholder whose
      // token is dropped, and the request's random stream is not touched.
      rows.push_back(last ? seq.sampler->NextRow() : SampleRow{});
      logprobs = logprobs || (last && seq.job.logprobs);
    }

    const absl::Time start = absl::Now();
    absl::StatusOr<StepResult> sampled = model_.Step(steps, cache_, rows, logprobs);
    heartbeat_.Beat();
    const absl::Duration elapsed = absl::Now() - start;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const double ms = absl::ToDoubleMilliseconds(elapsed);
      recent_step_ms_ = recent_step_ms_ == 0 ? ms : 0.8 * recent_step_ms_ + 0.2 * ms;
    }
    if (!sampled.ok()) {
      TANDEM_LOG(ERROR, "colocated") << "step failed: " << sampled.status();
      for (auto* list : {&prefilling, &decoding}) {
        for (auto& seq : *list) Finish(std::move(seq), sampled.status());
        list->clear();
      }
      continue;
    }
    ++step_index;
    if (options_.on_step) {
      ColocatedStepInfo info;
      info.index = step_index;
      info.elapsed = elapsed;
      info.decode = static_cast<int32_t>(decode_batch.size());
      info.prefill_seqs = static_cast<int32_t>(chunks.size());
      for (const Sequence* seq : decode_batch) info.decode_ids.push_back(seq->job.request_id);
      for (const Chunk& c : chunks) {
        info.prefill_tokens += c.tokens;
        info.first_tokens += c.last ? 1 : 0;
        info.prefill_ids.push_back(c.seq->job.request_id);
      }
      options_.on_step(info);
    }

    size_t row = 0;
    for (Sequence* seq : decode_batch) {
      const int32_t token = sampled->tokens[row];
      seq->num_cached += 1;
      seq->tokens.push_back(token);
      seq->generated += 1;
      seq->job.on_tokens({token}, seq->job.logprobs ? std::vector<float>{sampled->logprobs[row]} : std::vector<float>{});
      CheckFinished(*seq);
      ++row;
    }
    for (const Chunk& c : chunks) {
      Sequence& seq = *c.seq;
      seq.num_cached += c.tokens;
      seq.prefill_steps += 1;
      if (c.last) {
        const int32_t token = sampled->tokens[row];
        seq.tokens.push_back(token);
        seq.generated = 1;
        seq.first_token = absl::Now();
        seq.job.on_tokens({token}, seq.job.logprobs ? std::vector<float>{sampled->logprobs[row]} : std::vector<float>{});
        CheckFinished(seq);
      }
      ++row;
    }
    // Finished sequences leave; prompts whose first token was sampled start decoding next step.
    std::vector<std::unique_ptr<Sequence>> done;
    for (auto it = decoding.begin(); it != decoding.end();) {
      if (!(*it)->finish_reason.empty()) {
        done.push_back(std::move(*it));
        it = decoding.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = prefilling.begin(); it != prefilling.end();) {
      if ((*it)->generated == 0) {
        ++it;
        continue;
      }
      if ((*it)->finish_reason.empty()) {
        decoding.push_back(std::move(*it));
      } else {
        done.push_back(std::move(*it));
      }
      it = prefilling.erase(it);
    }
    for (auto& seq : done) Finish(std::move(seq), absl::OkStatus());
  }
  for (auto* list : {&prefilling, &decoding}) {
    for (auto& seq : *list) Finish(std::move(seq), absl::UnavailableError("colocated worker is shutting down"));
  }
}

}  // namespace tandem
