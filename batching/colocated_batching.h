// The colocated step policy: which tokens one engine step runs when new prompts and running decodes
// share a continuous batch (chunked prefill, as Sarathi-Serve and vLLM's chunked prefill do).
//
// Every step first gives each running decode its one token (they keep their pace: a long prompt never
// stalls them for more than one step), then fills what is left of the step's token budget with prompt
// chunks, oldest admitted prompt first; a prompt longer than what is left is split across steps. The
// step that runs a prompt's last chunk samples its first token; from the next step on it decodes.
//
// Admission is FCFS and lazy: the head of the waiting queue is admitted only when the step has budget
// left for its first chunk, a batch slot is free and the KV blocks for its prompt plus max_tokens are
// free (the worst case is reserved, so a running sequence never waits for memory and nothing is ever
// preempted). A head that does not fit blocks the queue (no overtaking).
//
// Pure: no threads, no clocks, no model. The colocated engine (colocated/colocated_engine.h) and the
// simulator's colocated instance (sim/simulator.h) both call PlanColocatedStep on their own state.
#ifndef TANDEM_BATCHING_COLOCATED_BATCHING_H_
#define TANDEM_BATCHING_COLOCATED_BATCHING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "batching/admission.h"

namespace tandem::batching {

struct ColocatedBatchOptions {
  // New tokens per step: one per running decode plus the prompt chunk tokens. >= 1.
  int64_t step_token_budget = 512;
  // Sequences in the batch (decoding plus admitted prompts). >= 1.
  int64_t max_batch = 256;
  // Tokens per KV block; admission reserves BlocksFor(prompt + max_tokens). >= 1.
  int64_t block_size = 16;

  absl::Status Validate() const;  // InvalidArgument naming the field
};

// An admitted prompt not fully in the KV cache yet.
struct PrefillingSequence {
  int64_t prompt_len = 0;
  int64_t prefilled = 0;  // prompt tokens already in the cache, < prompt_len
};

// A request waiting for admission.
struct WaitingSequence {
  int64_t prompt_len = 0;
  int64_t max_tokens = 0;  // counting the first token
};

struct ColocatedBatchState {
  int64_t decoding = 0;                       // sequences past their prompt, each decodes one token
  std::vector<PrefillingSequence> prefilling;  // admitted, in admission order
  std::vector<WaitingSequence> waiting;        // FCFS
  int64_t free_blocks = 0;                     // KV blocks nobody reserved
};

struct ColocatedStepPlan {
  int64_t decode = 0;  // running decodes in this step (the first `decode` of them, in their order)
  int64_t admit = 0;   // the first `admit` waiting requests are admitted now (blocks reserved)
  // Prompt tokens this step runs for each prefilling sequence: state.prefilling first, then the newly
  // admitted ones, in order; 0 when a sequence gets no chunk this step.
  std::vector<int64_t> chunks;
  int64_t blocks_reserved = 0;  // by the admitted ones

  int64_t prefill_tokens() const;
  int64_t tokens() const { return decode + prefill_tokens(); }
  bool empty() const { return tokens() == 0 && admit == 0; }
  // "decode 3, prefill [128 64], admit 1": for logs and tests.
  std::string DebugString() const;
};

// The next step. `options` must be valid (Validate); `state` holds non-negative counts with
// prefilled < prompt_len and prompt_len >= 1.
ColocatedStepPlan PlanColocatedStep(const ColocatedBatchState& state, const ColocatedBatchOptions& options);

}  // namespace tandem::batching

#endif  // TANDEM_BATCHING_COLOCATED_BATCHING_H_
