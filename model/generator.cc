#include "model/generator.h"

#include <algorithm>
#include <deque>
#include <memory>

#include "absl/strings/str_cat.h"
#include "batching/admission.h"
#include "common/status_macros.h"

namespace tandem {

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength: return "length";
    case FinishReason::kStopToken: return "stop";
    case FinishReason::kStopped: return "stopped";
  }
  return "?";
}

std::string_view FinishReasonAfter(int32_t token, int32_t generated, int32_t max_tokens,
                                   const std::vector<int32_t>& stop_token_ids) {
  if (std::find(stop_token_ids.begin(), stop_token_ids.end(), token) != stop_token_ids.end()) return "stop";
  return generated >= max_tokens ? "length" : "";
}

absl::Status ValidateRequest(const Model& model, const GenerationRequest& r) {
  if (r.prompt.empty()) return absl::InvalidArgumentError("prompt is empty");
  if (r.max_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_tokens must be >= 1, got ", r.max_tokens));
  }
  const int64_t total = static_cast<int64_t>(r.prompt.size()) + r.max_tokens;
  if (total > model.max_context()) {
    return absl::InvalidArgumentError(absl::StrCat("prompt of ", r.prompt.size(), " tokens + max_tokens ",
                                                   r.max_tokens, " = ", total, " exceeds the context length ",
                                                   model.max_context()));
  }
  for (size_t i = 0; i < r.prompt.size(); ++i) {
    if (r.prompt[i] < 0 || r.prompt[i] >= model.vocab_size()) {
      return absl::InvalidArgumentError(absl::StrCat("prompt token ", i, " has id ", r.prompt[i],
                                                     ", outside the vocabulary [0, ", model.vocab_size(), ")"));
    }
  }
  return ValidateSamplingParams(r.sampling, model.vocab_size());
}

namespace {

struct Sequence {
  int index = 0;
  const GenerationRequest* request = nullptr;
  std::vector<int32_t> blocks;
  std::vector<int32_t> tokens;  // prompt + generated
  int64_t num_cached = 0;
  std::unique_ptr<Sampler> sampler;
  GenerationOutput output;
};

}  // namespace

absl::StatusOr<std::vector<GenerationOutput>> Generator::Generate(
    const std::vector<GenerationRequest>& requests, const TokenCallback& on_token) {
  const int32_t block_size = cache_.spec().block_size;
  BlockAllocator& allocator = cache_.allocator();
  for (size_t i = 0; i < requests.size(); ++i) {
    absl::Status status = ValidateRequest(model_, requests[i]);
    if (!status.ok()) return absl::Status(status.code(), absl::StrCat("request ", i, ": ", status.message()));
    const int32_t need = BlocksForTokens(requests[i].prompt.size() + requests[i].max_tokens, block_size);
    if (need > allocator.num_total()) {
      return absl::ResourceExhaustedError(absl::StrCat("request ", i, " needs ", need, " KV blocks; the cache has ",
                                                       allocator.num_total()));
    }
  }

  std::vector<GenerationOutput> outputs(requests.size());
  std::deque<int> waiting;
  for (size_t i = 0; i < requests.size(); ++i) waiting.push_back(static_cast<int>(i));
  std::vector<std::unique_ptr<Sequence>> running;
  absl::Status failure;

  // Appends a sampled token; returns true when the sequence is finished.
  auto accept = [&](Sequence& seq, int32_t token) {
    seq.tokens.push_back(token);
    seq.output.tokens.push_back(token);
    const GenerationRequest& r = *seq.request;
    if (on_token && !on_token(seq.index, token)) {
      seq.output.finish = FinishReason::kStopped;
      return true;
    }
    if (std::find(r.stop_token_ids.begin(), r.stop_token_ids.end(), token) != r.stop_token_ids.end()) {
      seq.output.finish = FinishReason::kStopToken;
      return true;
    }
    if (static_cast<int32_t>(seq.output.tokens.size()) >= r.max_tokens) {
      seq.output.finish = FinishReason::kLength;
      return true;
    }
    return false;
  };
  auto release = [&](Sequence& seq) -> absl::Status {
    outputs[seq.index] = std::move(seq.output);
    return allocator.Free(seq.blocks);
  };
  auto release_all = [&]() {
    for (auto& seq : running) allocator.Free(seq->blocks).IgnoreError();
    running.clear();
  };

  while (!waiting.empty() || !running.empty()) {
    // Admit waiting prompts (FCFS) while the token budget, the batch size and free blocks allow: the
    // policy the simulator's colocated instance runs too (batching/admission.h).
    std::vector<batching::SequenceSize> sizes;
    for (int index : waiting) {
      if (static_cast<int64_t>(running.size() + sizes.size()) >= options_.max_batch) break;
      sizes.push_back({static_cast<int64_t>(requests[index].prompt.size()), requests[index].max_tokens});
    }
    const batching::Admission admission = batching::PlanPromptAdmission(
        sizes, static_cast<int64_t>(running.size()),
        {.max_batch = options_.max_batch, .max_prefill_tokens = options_.max_prefill_tokens},
        cache_.AdmissionPool());
    std::vector<std::unique_ptr<Sequence>> admitted;
    for (int64_t i = 0; i < admission.count; ++i) {
      const GenerationRequest& r = requests[waiting.front()];
      auto blocks = allocator.Allocate(BlocksForTokens(r.prompt.size() + r.max_tokens, block_size));
      if (!blocks.ok()) break;  // cannot happen: the plan counted free blocks
      auto seq = std::make_unique<Sequence>();
      seq->index = waiting.front();
      seq->request = &r;
      seq->blocks = std::move(*blocks);
      seq->tokens = r.prompt;
      seq->sampler = std::make_unique<Sampler>(r.sampling);
      admitted.push_back(std::move(seq));
      waiting.pop_front();
    }

    std::vector<Sequence*> batch;
    std::vector<SequenceStep> steps;
    if (!admitted.empty()) {
      for (auto& seq : admitted) {
        batch.push_back(seq.get());
        steps.push_back({seq->tokens, 0, seq->blocks});
      }
    } else if (!running.empty()) {
      for (auto& seq : running) {
        batch.push_back(seq.get());
        steps.push_back({std::span<const int32_t>(seq->tokens).last(1), seq->num_cached, seq->blocks});
      }
    } else {
      return absl::InternalError("generator: nothing runnable but requests are waiting");
    }

    std::vector<SampleRow> rows;
    for (Sequence* seq : batch) rows.push_back(seq->sampler->NextRow());
    absl::StatusOr<StepResult> sampled = model_.Step(steps, cache_, rows);
    if (!sampled.ok()) {
      for (auto& seq : admitted) allocator.Free(seq->blocks).IgnoreError();
      release_all();
      return sampled.status();
    }
    if (options_.on_step) {
      const int64_t sequences = static_cast<int64_t>(batch.size());
      options_.on_step(!admitted.empty(), sequences, admitted.empty() ? sequences : admission.tokens);
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      Sequence& seq = *batch[i];
      seq.num_cached += static_cast<int64_t>(steps[i].tokens.size());
      const int32_t token = sampled->tokens[i];
      if (accept(seq, token)) {
        seq.request = nullptr;  // marks finished
      }
    }
    for (auto& seq : admitted) running.push_back(std::move(seq));
    for (auto it = running.begin(); it != running.end();) {
      if ((*it)->request == nullptr) {
        absl::Status status = release(**it);
        if (!status.ok() && failure.ok()) failure = status;
        it = running.erase(it);
      } else {
        ++it;
      }
    }
  }
  TANDEM_RETURN_IF_ERROR(failure);
  return outputs;
}

}  // namespace tandem
