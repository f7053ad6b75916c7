// The view of the cluster a placement policy decides on, and the decision it returns. A cluster has
// prefill/decode pairs, colocated workers, or both; a request goes to a pair or to one colocated worker.
//
// The router fills a ClusterSnapshot from worker load reports; the simulator fills it from its own
// state. Both then call the same PlacementPolicy object, so what the simulator predicts is what the
// router does. These are plain values: copying one is a consistent snapshot.
#ifndef TANDEM_ROUTER_POLICY_SNAPSHOT_H_
#define TANDEM_ROUTER_POLICY_SNAPSHOT_H_

#include <cstdint>
#include <string>
#include <vector>

namespace tandem::policy {

// One prefill worker as the router last saw it.
struct PrefillWorkerState {
  std::string id;                    // e.g. "prefill-0" or "10.0.0.3:7001"
  bool healthy = true;               // false: never placed on
  // Bumped each time the load figures below are refreshed (the router: each load report). A policy
  // counts its own placements since then as load the figures do not show yet. 0: the figures are
  // always current (the simulator's exact state), nothing is counted.
  int64_t report_seq = 0;
  int64_t queued_requests = 0;       // waiting, not yet in a batch
  int64_t queued_prompt_tokens = 0;  // sum of the waiting prompts' lengths
  int64_t running_tokens = 0;        // prompt tokens in the batch now running
  double predicted_free_ms = 0.0;    // predicted time until the running batch and the queue are done
  int64_t running_requests = 0;      // prompts in the running batch (0 with running_tokens > 0: unknown)
  // Observed prefill step time, for correcting a latency model online: a moving average of recent
  // batch compute times, and the shape of a batch it describes (tokens 0: unknown, no correction).
  double recent_step_ms = 0.0;
  int64_t recent_batch_requests = 0;
  int64_t recent_batch_tokens = 0;
};

// One decode worker as the router last saw it.
struct DecodeWorkerState {
  std::string id;
  bool healthy = true;
  int64_t report_seq = 0;            // as PrefillWorkerState::report_seq
  int64_t running_batch_size = 0;    // requests in the continuous batch
  int64_t total_context_tokens = 0;  // sum of the running requests' context lengths
  int64_t free_kv_blocks = 0;        // blocks not reserved by any request
  int64_t total_kv_blocks = 0;
  int64_t block_size = 16;           // tokens per KV block
  int64_t queued_requests = 0;       // waiting for admission or for their KV to arrive
  // Observed decode step time (moving average) and the batch it describes (size 0: unknown, no
  // online correction).
  double recent_step_ms = 0.0;
  int64_t recent_batch_size = 0;
  int64_t recent_batch_context_tokens = 0;
  double min_running_tpot_slo_ms = 0.0;  // tightest TPOT SLO among running requests; 0: unknown
};

// One colocated worker (prefill and decode in one continuous batch, batching/colocated_batching.h).
struct ColocatedWorkerState {
  std::string id;
  bool healthy = true;
  int64_t report_seq = 0;            // as PrefillWorkerState::report_seq
  int64_t queued_requests = 0;       // waiting for admission
  int64_t queued_prompt_tokens = 0;  // their prompts plus the admitted prompts' unprefilled tokens
  int64_t prefilling_requests = 0;   // admitted, prompt not finished
  int64_t running_batch_size = 0;    // decoding
  int64_t total_context_tokens = 0;  // of the decoding requests
  int64_t free_kv_blocks = 0;
  int64_t total_kv_blocks = 0;
  int64_t block_size = 16;
  int64_t step_token_budget = 512;   // new tokens per step (decodes + prompt chunks)
  double recent_step_ms = 0.0;       // moving average of its (mixed) step times
};

struct ClusterSnapshot {
  std::vector<PrefillWorkerState> prefill;
  std::vector<DecodeWorkerState> decode;
  std::vector<ColocatedWorkerState> colocated;
};

// The request being placed, as the router knows it after tokenizing.
struct PlacementRequest {
  int64_t prompt_len = 0;           // tokens
  int64_t max_output_len = 0;       // the request's max_tokens
  int64_t expected_output_len = 0;  // a prediction (or max_output_len when none exists)
  double ttft_slo_ms = 0.0;         // 0: no TTFT SLO
  double tpot_slo_ms = 0.0;         // 0: no TPOT SLO
  bool best_effort = false;         // true: place even when no pair is predicted to meet the SLO
};

// A (prefill, decode) pair of indices into the snapshot's vectors, or one colocated worker, or a
// rejection with a reason a person can read ("no healthy prefill worker").
struct PlacementDecision {
  bool accepted = false;
  int prefill_index = -1;
  int decode_index = -1;
  int colocated_index = -1;  // >= 0: the request runs whole on this colocated worker (the pair is -1)
  std::string reject_reason;
  // What a predicting policy (goodput) expects for an accepted request; 0 when it does not predict.
  double predicted_ttft_ms = 0.0;
  double predicted_tpot_ms = 0.0;

  static PlacementDecision Accept(int prefill_index, int decode_index);
  static PlacementDecision AcceptColocated(int colocated_index);
  static PlacementDecision Reject(std::string reason);
};

// The rejection for a request nothing healthy can take (no healthy pair and no healthy colocated
// worker): "no healthy prefill worker" or "no healthy decode worker" in a cluster of pairs (prefill
// checked first), "no healthy colocated worker" in one of colocated workers only, "no healthy worker:
// no healthy prefill/decode pair and no healthy colocated worker" in a mixed one.
PlacementDecision RejectNoHealthyWorker(const ClusterSnapshot& snapshot);

}  // namespace tandem::policy

#endif  // TANDEM_ROUTER_POLICY_SNAPSHOT_H_
