#include "batching/admission.h"

#include <algorithm>

namespace tandem::batching {

int64_t BlocksFor(int64_t tokens, int64_t block_size) { return (tokens + block_size - 1) / block_size; }

int64_t KvPool::BlocksFor(int64_t tokens) const {
  return std::min(batching::BlocksFor(tokens, block_size), total_blocks);
}

Admission AdmitFcfs(std::span<const Candidate> queue, const AdmissionLimits& limits) {
  Admission admitted;
  for (const Candidate& head : queue) {
    if (admitted.count >= limits.max_requests) break;
    if (admitted.count > 0 && admitted.tokens + head.tokens > limits.max_tokens) break;
    if (admitted.blocks + head.blocks > limits.free_blocks) break;
    ++admitted.count;
    admitted.tokens += head.tokens;
    admitted.blocks += head.blocks;
  }
  return admitted;
}

Admission PlanPrefillBatch(std::span<const int64_t> prompt_lens, const PrefillBatchOptions& options, const KvPool& pool) {
  std::vector<Candidate> queue;
  for (int64_t len : prompt_lens) {
    if (static_cast<int64_t>(queue.size()) >= options.max_batch) break;
    queue.push_back({len, pool.BlocksFor(len)});
  }
  return AdmitFcfs(queue, {.max_requests = options.max_batch,
                           .max_tokens = options.max_batch_tokens,
                           .free_blocks = pool.free_blocks});
}

Admission PlanDecodeAdmission(std::span<const SequenceSize> waiting, const KvPool& pool) {
  std::vector<Candidate> queue;
  queue.reserve(waiting.size());
  for (const SequenceSize& s : waiting) queue.push_back({0, pool.BlocksFor(s.prompt_len + s.max_tokens)});
  return AdmitFcfs(queue, {.free_blocks = pool.free_blocks});
}

int64_t DecodeJoins(int64_t ready, int64_t running, int64_t max_batch) {
  return std::clamp<int64_t>(max_batch - running, 0, ready);
}

Admission PlanPromptAdmission(std::span<const SequenceSize> waiting, int64_t running,
                              const PromptAdmissionOptions& options, const KvPool& pool) {
  const int64_t slots = std::max<int64_t>(options.max_batch - running, 0);
  if (options.padded) {
    // vLLM 0.2.x's scheduler: num_batched_tokens = len(seq_lens) * max(seq_lens) within the budget,
    // num_paddings = that minus sum(seq_lens) within max_paddings; the head that fails closes the batch.
    Admission admitted;
    int64_t longest = 0, sum = 0;
    for (const SequenceSize& s : waiting) {
      if (admitted.count >= slots) break;
      const int64_t new_longest = std::max(longest, s.prompt_len);
      const int64_t padded_tokens = (admitted.count + 1) * new_longest;
      if (admitted.count > 0 && padded_tokens > options.max_prefill_tokens) break;
      if (padded_tokens - (sum + s.prompt_len) > options.max_paddings) break;
      const int64_t blocks = pool.BlocksFor(s.prompt_len + s.max_tokens);
      if (admitted.blocks + blocks > pool.free_blocks) break;
      ++admitted.count;
      admitted.blocks += blocks;
      longest = new_longest;
      sum += s.prompt_len;
      admitted.tokens = padded_tokens;
    }
    return admitted;
  }
  std::vector<Candidate> queue;
  for (const SequenceSize& s : waiting) {
    if (static_cast<int64_t>(queue.size()) >= slots) break;
    queue.push_back({s.prompt_len, pool.BlocksFor(s.prompt_len + s.max_tokens)});
  }
  return AdmitFcfs(queue, {.max_requests = slots,
                           .max_tokens = options.max_prefill_tokens,
                           .free_blocks = pool.free_blocks});
}

int64_t GrowthPreemptions(std::span<const int64_t> held, std::span<const int64_t> needed, int64_t free_blocks) {
  int64_t growth = 0;
  for (size_t i = 0; i < held.size(); ++i) growth += needed[i] - held[i];
  int64_t kept = static_cast<int64_t>(held.size());
  // Each sequence dropped from the tail takes back its growth and returns what it holds.
  while (kept > 0 && growth > free_blocks) {
    --kept;
    growth -= needed[kept] - held[kept];
    free_blocks += held[kept];
  }
  return static_cast<int64_t>(held.size()) - kept;
}

}  // namespace tandem::batching
