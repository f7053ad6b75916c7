// Simulator: a deterministic discrete-event model of a tandem cluster (SLO_SIM.md section 1.2).
//
// Disaggregated mode: every arrival asks the router's PlacementPolicy (the same object the router
// runs) for a (prefill, decode) pair, given a ClusterSnapshot built from simulator state. A prefill
// instance batches its FCFS queue under a token budget and a batch-size cap; the prompt's KV stays in
// its buffer (backpressure when the buffer is full) until the decode instance admits the request
// (prompt + output tokens of KV must fit, or with on_demand_kv the prompt's) and pulls the KV over a
// FIFO link; the decode instance runs continuous batching, in pp pipeline stages and micro-batches when
// it has them. The first token is produced by prefill: TTFT ends there.
//
// Colocated mode, two kinds:
//   - step_token_budget 0 (the vLLM v0 baseline DistServe compares against): one queue and one step
//     loop per instance; prefill has priority and prefill and decode never share an iteration. The
//     policy sees each instance as a prefill and a decode worker with the same index.
//   - step_token_budget > 0 (tandem's colocated worker, chunked prefill): every step is planned by
//     batching::PlanColocatedStep, the policy the colocated engine runs, on the instance's state; a step
//     takes DecodeStepMs(decodes, their context) + PrefillMs(the chunks). The policy sees the instances
//     as ClusterSnapshot::colocated, as the router does.
//
// Time is int64 nanoseconds; step times from the latency model are rounded to the nearest ns.
// Thread safety: a Simulator is used by one thread; separate Simulators may run concurrently (the
// policy object is not shared between them).
#ifndef TANDEM_SIM_SIMULATOR_H_
#define TANDEM_SIM_SIMULATOR_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "batching/colocated_batching.h"
#include "router/policy/latency_model.h"
#include "router/policy/placement_policy.h"
#include "sim/request_record.h"
#include "sim/workload.h"

namespace tandem::sim {

struct PrefillInstanceConfig {
  policy::LatencyModel latency;  // step times; its link fields time KV transfers out of this instance
  int num_gpus = 1;
  int64_t max_batch_tokens = 0;  // prompt tokens per batch; 0 = no limit (a longer prompt runs alone)
  int64_t max_batch_size = 0;    // requests per batch; 0 = no limit
  int64_t kv_buffer_tokens = 0;  // KV tokens held until decode pulls them; 0 = no limit
  int64_t block_size = 16;       // tokens per KV block (the buffer holds kv_buffer_tokens / block_size)
};

struct DecodeInstanceConfig {
  policy::LatencyModel latency;
  int num_gpus = 1;
  int64_t max_batch_size = 0;      // 0 = no limit
  int64_t kv_capacity_tokens = 0;  // reserve_full admission limit; 0 = no limit
  int64_t block_size = 16;         // tokens per KV block: admission reserves whole blocks, as the engine does
  // Pipeline-parallel stages (num_gpus = tp * pp). pp > 1: `latency` times one stage (a profile with
  // this pp, sim/profiles.h FindStageProfile) and a batch passes through the stages in turn.
  int pp = 1;
  // 1..pp: the running requests are split into this many micro-batches that take turns through the
  // stages (a stage works on one at a time), as DistServe's decode engine runs them; a request stays in
  // the micro-batch it joined, and max_batch_size caps each. pp micro-batches keep every stage busy;
  // one gives pipeline parallelism's KV capacity at the speed of an unsplit step.
  int micro_batches = 1;
  // false: reserve prompt + output blocks at admission, as tandem's decode worker does. true: on-demand
  // KV as DistServe's decode engine allocates it (batching::GrowthPreemptions): admission asks for the
  // prompt's blocks, a running request grows a block at a time, and when a step's growth does not fit,
  // the newest requests of that micro-batch are swapped out (no time charged) and come back, before
  // any new request, when their blocks fit again.
  bool on_demand_kv = false;
  // > 0 (with on_demand_kv): DistServe's decode scheduler (decoding_stage_scheduler.py): a prefilled
  // request's KV is pulled only while the prompts pulled and not yet in a batch hold less than this
  // fraction of the blocks (its waiting_block_prop_threshold, 0.05), and one joins a batch only when
  // its blocks fit a second time beside what it holds (the scheduler counts a waiting prompt both in
  // the waiting queue and for itself) and no swapped-out request is waiting. Its step loop also
  // migrates between steps (single_stage_engine.py post_process): a pull starts only when the
  // micro-batches in the pipeline have come out of it, and nothing launches while pulls are under way.
  // 0: pull whatever fits at once, join at once, and a pull that lands mid-pass drains the pipeline
  // before the next launch.
  double waiting_block_fraction = 0.0;
  // With waiting_block_fraction > 0: replay DistServe's decode step loop step by step
  // (single_stage_engine.py DecodingStageLLMEngine._step) instead of launching each micro-batch as soon
  // as the pipeline can take it. One step: the next micro-batch in rotation takes the waiting requests
  // and is launched (an empty one is not; the loop sleeps 3 ms); with pp steps in flight it awaits the
  // oldest, whose tokens come out then; then it pulls the KV of the prefilled requests it accepts. So a
  // request pulled after awaiting micro-batch m joins m, and a pipeline that runs one micro-batch keeps
  // running one until swapping or the waiting threshold puts a request in another: what DistServe's
  // measured runs at 4 req/s show (bench/sim/distserve.md). false: the event-driven approximation above.
  bool step_loop = false;
};

struct ColocatedInstanceConfig {
  policy::LatencyModel latency;
  int num_gpus = 1;
  int64_t max_batch_tokens = 0;    // prefill tokens per iteration; 0 = no limit
  int64_t max_batch_size = 0;      // requests per iteration (prefill or decode); 0 = no limit
  int64_t kv_capacity_tokens = 0;  // reserve_full; 0 = no limit
  int64_t block_size = 16;
  // > 0: tandem's chunked-prefill colocated engine with this step token budget (see the file comment);
  // every colocated instance of a cluster must agree on 0 or not.
  int64_t step_token_budget = 0;
  // Unchunked (vLLM v0) instances: false reserves prompt + output blocks at admission (the offline
  // generator); true allocates on demand as vLLM does: admission asks for the prompt's blocks, and a
  // decode step that cannot grow preempts the newest sequences by recomputation (back to the head of
  // the queue, to be prefilled again with what they had generated).
  bool on_demand_kv = false;
  // Unchunked instances: >= 0 pads every prefill step to its longest prompt, as vLLM 0.2.x does, with
  // at most this many padding tokens in a step (batching::PromptAdmissionOptions::padded); the step
  // costs PrefillMs of count x the longest prompt. < 0: prompts are packed without padding.
  int64_t max_paddings = -1;
};

struct ClusterConfig {
  std::vector<PrefillInstanceConfig> prefill;
  std::vector<DecodeInstanceConfig> decode;
  std::vector<ColocatedInstanceConfig> colocated;  // non-empty: colocated mode, prefill/decode empty
  double kv_bytes_per_token = 0.0;                 // for KV transfer time

  int NumGpus() const;
};

struct StepTrace {
  enum Kind { kPrefill, kDecode, kColocatedPrefill, kColocatedDecode };
  Kind kind = kPrefill;
  int instance = 0;
  int64_t sequences = 0;  // prompts in a prefill step; sequences advanced by a decode step
  int64_t tokens = 0;     // prompt tokens of a prefill step; one per sequence in a decode step
};

struct SimOptions {
  double horizon_s = 0.0;  // > 0: stop at this simulated time; unfinished requests are misses
  // What every placement request carries, as a client's request to the router does (0: no SLO).
  double ttft_slo_ms = 0.0;
  double tpot_slo_ms = 0.0;
  bool best_effort = false;
  // Chunked colocated instances: called with each step as it starts (instance, plan). Parity tests
  // compare the steps with the engine's.
  std::function<void(int instance, const batching::ColocatedStepPlan& plan)> on_colocated_step = nullptr;
  // Every other step as it starts: prefill batches and decode steps of prefill/decode instances, and the
  // prefill and decode steps of unchunked (vLLM v0) colocated instances. Parity tests compare them with
  // the prefill engine's batches and the offline generator's steps.
  std::function<void(const StepTrace& step)> on_step = nullptr;
};

class Simulator {
 public:
  // `policy` is borrowed and must outlive Run(); it is called once per arrival.
  Simulator(ClusterConfig config, policy::PlacementPolicy* policy, SimOptions options = {});
  ~Simulator();

  // Simulates the workload (arrivals as given) to completion or the horizon. Records are in request
  // order. InvalidArgument for an empty or mixed cluster.
  absl::StatusOr<std::vector<RequestRecord>> Run(const Workload& workload);

  // Distinct policy rejection reasons seen, with counts, in first-seen order.
  const std::vector<std::pair<std::string, int64_t>>& reject_reasons() const { return reject_reasons_; }

 private:
  struct State;
  class Runner;  // one Run(): its state, decisions and event handlers (simulator.cc)
  ClusterConfig config_;
  policy::PlacementPolicy* policy_;
  SimOptions options_;
  std::vector<std::pair<std::string, int64_t>> reject_reasons_;
};

}  // namespace tandem::sim

#endif  // TANDEM_SIM_SIMULATOR_H_
