// The FCFS admission rules of the prefill worker, the decode worker and the one-process generator, in
// one place: the engines run them on their real queues, the simulator on its simulated ones, so a queue
// in the simulator is admitted exactly as the engine it models would admit it (issue 13).
//
// All three are one rule, AdmitFcfs: walk the queue from its head; stop at the first request that would
// exceed the request count, the token budget (the first request is exempt: a prompt longer than the
// budget runs alone rather than never) or the free KV blocks. A head that does not fit blocks the queue
// (no overtaking), so nothing starves. What differs is what each queue counts:
//
//   prefill worker    (PlanPrefillBatch)     tokens = prompt, blocks = the prompt's KV (held as a lease
//                                              until the decode worker pulls it), count <= max_batch.
//   decode worker     (PlanDecodeAdmission)  blocks = prompt + max_tokens (the worst case is reserved, so
//                                              a running sequence never waits for memory); no token or
//                                              count limit (joining the running batch is DecodeJoins).
//   prompt admission  (PlanPromptAdmission)  one engine that prefills and decodes, vLLM v0 style (the
//                                              offline generator; the simulator's unchunked colocated
//                                              instance): tokens = prompt, blocks = prompt + max_tokens,
//                                              count <= max_batch minus the running sequences.
//                                              With `padded` (vLLM 0.2.2-0.2.7, which pads a prompt batch
//                                              to its longest prompt): tokens = count x the longest
//                                              prompt, and a prompt joins only while the padding (that
//                                              minus the prompts' sum) stays <= max_paddings.
//
// Pure: no threads, no clocks, no model (STYLE.md rule 9). KvPool::BlocksFor counts a request larger
// than the whole pool as the whole pool: it runs alone once everything else has left, which is how the
// simulator (which cannot refuse a request) has always modelled it. The engines refuse such a request
// before queueing it, so for them the clamp never applies.
#ifndef TANDEM_BATCHING_ADMISSION_H_
#define TANDEM_BATCHING_ADMISSION_H_

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace tandem::batching {

inline constexpr int64_t kNoLimit = std::numeric_limits<int64_t>::max() / 4;

struct Candidate {
  int64_t tokens = 0;  // counted against AdmissionLimits::max_tokens
  int64_t blocks = 0;  // KV blocks admitting it takes
};

struct AdmissionLimits {
  int64_t max_requests = kNoLimit;  // requests to admit at most (<= 0: none)
  int64_t max_tokens = kNoLimit;    // sum of tokens; the first request is exempt
  int64_t free_blocks = kNoLimit;
};

struct Admission {
  int64_t count = 0;   // the first `count` candidates are admitted
  int64_t tokens = 0;  // their tokens
  int64_t blocks = 0;  // their blocks
};

Admission AdmitFcfs(std::span<const Candidate> queue, const AdmissionLimits& limits);

// Tokens in whole blocks of `block_size` (>= 1).
int64_t BlocksFor(int64_t tokens, int64_t block_size);

// A queued request's size.
struct SequenceSize {
  int64_t prompt_len = 0;
  int64_t max_tokens = 0;  // counting the first token
};

// The KV pool admission draws on.
struct KvPool {
  int64_t block_size = 16;          // tokens per block, >= 1
  int64_t total_blocks = kNoLimit;  // the whole pool
  int64_t free_blocks = kNoLimit;   // not held or reserved by anyone

  // Blocks for `tokens`, at most the whole pool (see the file comment: only the simulator ever clamps).
  int64_t BlocksFor(int64_t tokens) const;
};

struct PrefillBatchOptions {
  int64_t max_batch = kNoLimit;         // prompts per batch
  int64_t max_batch_tokens = kNoLimit;  // prompt tokens per batch (a longer prompt runs alone)
};

// The prefill worker's next batch from its queue of prompt lengths (head first).
Admission PlanPrefillBatch(std::span<const int64_t> prompt_lens, const PrefillBatchOptions& options, const KvPool& pool);

// The decode worker's KV reservations for its waiting requests (head first): prompt + max_tokens each.
Admission PlanDecodeAdmission(std::span<const SequenceSize> waiting, const KvPool& pool);

// How many of `ready` sequences (KV arrived) join a running batch of `running` under `max_batch`.
int64_t DecodeJoins(int64_t ready, int64_t running, int64_t max_batch);

struct PromptAdmissionOptions {
  int64_t max_batch = kNoLimit;           // sequences running at once (decoding plus admitted)
  int64_t max_prefill_tokens = kNoLimit;  // prompt tokens in one prefill step (a longer prompt runs alone)
  // A prefill step padded to its longest prompt (vLLM 0.2.x's `_prepare_prompt` and its scheduler's
  // `max_paddings`): the budget counts padded tokens and padding beyond max_paddings closes the batch.
  bool padded = false;
  int64_t max_paddings = kNoLimit;
};

// An engine that runs prefill steps and decode steps by turns (vLLM v0): which waiting prompts the next
// prefill step admits, given `running` sequences already decoding.
Admission PlanPromptAdmission(std::span<const SequenceSize> waiting, int64_t running,
                              const PromptAdmissionOptions& options, const KvPool& pool);

// On-demand KV, as vLLM and DistServe allocate it (tandem's engines reserve the worst case instead): a
// sequence holds blocks for the tokens it has, admission asks only for the prompt's (plus the first
// decode step's token), and a sequence gains a block when its context crosses a block boundary. Before
// a step of `batch` (oldest first), GrowthPreemptions says how many sequences from the tail must give
// their blocks back (swapped out or recomputed later) so that the survivors' growth fits in
// `free_blocks`: held[i] blocks now, needed[i] blocks after the step. A sequence that leaves frees what
// it holds; when even the oldest alone cannot grow, all are preempted.
int64_t GrowthPreemptions(std::span<const int64_t> held, std::span<const int64_t> needed, int64_t free_blocks);

// A simulator-style limit where 0 (or less) means "no limit".
inline int64_t LimitOrNone(int64_t limit) { return limit > 0 ? limit : kNoLimit; }

}  // namespace tandem::batching

#endif  // TANDEM_BATCHING_ADMISSION_H_
