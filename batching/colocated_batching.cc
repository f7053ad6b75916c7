#include "batching/colocated_batching.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tandem::batching {

absl::Status ColocatedBatchOptions::Validate() const {
  if (step_token_budget < 1) {
    return absl::InvalidArgumentError(absl::StrCat("step_token_budget ", step_token_budget, " must be >= 1"));
  }
  if (max_batch < 1) return absl::InvalidArgumentError(absl::StrCat("max_batch ", max_batch, " must be >= 1"));
  if (block_size < 1) return absl::InvalidArgumentError(absl::StrCat("block_size ", block_size, " must be >= 1"));
  return absl::OkStatus();
}

int64_t ColocatedStepPlan::prefill_tokens() const {
  int64_t sum = 0;
  for (int64_t c : chunks) sum += c;
  return sum;
}

std::string ColocatedStepPlan::DebugString() const {
  return absl::StrCat("decode ", decode, ", prefill [", absl::StrJoin(chunks, " "), "], admit ", admit);
}

ColocatedStepPlan PlanColocatedStep(const ColocatedBatchState& state, const ColocatedBatchOptions& options) {
  ColocatedStepPlan plan;
  int64_t budget = options.step_token_budget;
  // Decodes first: one token each, never more sequences than the batch holds.
  plan.decode = std::min({state.decoding, budget, options.max_batch});
  budget -= plan.decode;
  // Then the admitted prompts, oldest first.
  for (const PrefillingSequence& seq : state.prefilling) {
    const int64_t chunk = std::min(seq.prompt_len - seq.prefilled, budget);
    plan.chunks.push_back(std::max<int64_t>(chunk, 0));
    budget -= plan.chunks.back();
  }
  // Then admission, FCFS, while the step has budget left to start the head's prompt.
  int64_t in_batch = state.decoding + static_cast<int64_t>(state.prefilling.size());
  int64_t free_blocks = state.free_blocks;
  for (const WaitingSequence& head : state.waiting) {
    if (budget <= 0 || in_batch >= options.max_batch) break;
    const int64_t need = BlocksFor(head.prompt_len + head.max_tokens, options.block_size);
    if (need > free_blocks) break;
    free_blocks -= need;
    plan.blocks_reserved += need;
    ++plan.admit;
    ++in_batch;
    const int64_t chunk = std::min(head.prompt_len, budget);
    plan.chunks.push_back(chunk);
    budget -= chunk;
  }
  return plan;
}

}  // namespace tandem::batching
