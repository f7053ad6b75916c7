#include "sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <functional>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sim/event_queue.h"

namespace tandem::sim {
namespace {

constexpr int64_t kUnlimitedBlocks = int64_t{1} << 40;

int64_t MsToNs(double ms) { return std::llround(ms * 1e6); }
double NsToS(int64_t ns) { return ns < 0 ? -1.0 : static_cast<double>(ns) * 1e-9; }

}  // namespace

int ClusterConfig::NumGpus() const {
  int gpus = 0;
  for (const auto& p : prefill) gpus += p.num_gpus;
  for (const auto& d : decode) gpus += d.num_gpus;
  for (const auto& c : colocated) gpus += c.num_gpus;
  return gpus;
}

// Everything one Run() mutates; rebuilt per run so a Simulator can be reused.
struct Simulator::State {
  struct Req {
    int64_t generated = 0;  // tokens produced so far (the first comes from prefill)
    int64_t need = 0;       // KV tokens reserved on decode: prompt + output
    int64_t blocks = 0;     // KV blocks reserved for `need` on decode or a colocated instance
    int64_t held = 0;       // KV blocks its prompt holds on prefill until decode pulls them
    int64_t prefilled = 0;  // chunked colocated: prompt tokens in the cache
    // Times in ns, -1 = not yet.
    int64_t arrival = -1, prefill_start = -1, first_token = -1, kv_start = -1, kv_end = -1,
            decode_start = -1, finish = -1;
  };
  struct Prefill {
    std::deque<int64_t> queue;
    int64_t queued_tokens = 0;
    double queued_predicted_ms = 0.0;
    bool busy = false;
    int64_t busy_until = 0;
    std::vector<int64_t> batch;
    int64_t batch_tokens = 0;
    int64_t held_blocks = 0;  // KV in the running batch plus finished prompts not yet pulled
  };
  struct Decode {
    std::deque<int64_t> pending;  // prefilled, waiting for a KV reservation
    std::deque<int64_t> ready;    // KV arrived, waiting to join a batch
    std::deque<int64_t> swapped;  // on-demand KV: preempted, waiting for their blocks to fit again
    // The running requests in micro-batches (DecodeInstanceConfig::micro_batches; one when pp = 1); a
    // request stays in the micro-batch it joined, as in DistServe's decode scheduler.
    std::vector<std::vector<int64_t>> micro;
    std::deque<int> launched;             // micro-batches in the pipeline, oldest first
    std::vector<int64_t> stage_free_at;   // per pipeline stage
    int last_launched = -1;
    bool draining = false;  // a KV pull arrived: no launch until the pipeline is empty
    // DecodeInstanceConfig::step_loop: where DistServe's step loop is (DistServeResume says what each phase does).
    enum class Loop { kParked, kStep, kSleeping, kCheckPipeline, kAwait, kPostProcess, kMigrating };
    Loop loop = Loop::kParked;
    int cur = -1;               // the micro-batch its last step scheduled
    // One entry per step in flight, oldest first: its micro-batch, -1 if empty. A micro-batch in it but
    // no longer in `launched` has come out of the last stage and waits to be awaited.
    std::deque<int> pipeline;
    int64_t parked_at = 0;
    int64_t wake_at = 0;
    int64_t reserved_blocks = 0;
    int64_t link_free_at = 0;
    std::vector<int64_t> transferring;  // requests whose KV transfer is under way
  };
  struct Colocated {
    std::deque<int64_t> waiting;
    std::vector<int64_t> running;
    std::vector<int64_t> batch;  // the prefill batch when step_is_prefill
    int64_t queued_tokens = 0;
    double queued_predicted_ms = 0.0;
    int64_t reserved_blocks = 0;
    bool busy = false;
    bool step_is_prefill = false;
    int64_t busy_until = 0;
    // Chunked (step_token_budget > 0): admitted prompts in admission order, and the running step.
    std::vector<int64_t> prefilling;
    std::vector<int64_t> step_decode;
    std::vector<std::pair<int64_t, int64_t>> step_chunks;  // (request, prompt tokens)
  };

  const Workload* workload = nullptr;
  std::vector<Req> reqs;
  std::vector<RequestRecord> records;
  std::vector<Prefill> prefill;
  std::vector<Decode> decode;
  std::vector<Colocated> colocated;
  EventQueue events;
  int64_t now = 0;
  policy::ClusterSnapshot snapshot;
};

Simulator::Simulator(ClusterConfig config, policy::PlacementPolicy* policy, SimOptions options)
    : config_(std::move(config)), policy_(policy), options_(options) {}

Simulator::~Simulator() = default;

// One Run(): the simulated cluster's state, one method per decision (start a prefill batch, admit onto a
// decode instance, start a decode or colocated step, place an arrival) and one per event it handles.
class Simulator::Runner {
 public:
  Runner(const Simulator& sim, const Workload& workload, bool colocated_mode, bool chunked,
         std::vector<std::pair<std::string, int64_t>>& reject_reasons)
      : config_(sim.config_),
        options_(sim.options_),
        policy_(sim.policy_),
        reject_reasons_(reject_reasons),
        workload_(workload),
        requests_(workload.requests),
        colocated_mode_(colocated_mode),
        chunked_(chunked) {}

  std::vector<RequestRecord> Run() {
    Init();
    const int64_t horizon_ns = options_.horizon_s > 0 ? std::llround(options_.horizon_s * 1e9)
                                                      : std::numeric_limits<int64_t>::max();
    while (!state_.events.empty()) {
      if (state_.events.top().time_ns > horizon_ns) break;
      const Event e = state_.events.Pop();
      state_.now = e.time_ns;
      switch (e.type) {
        case EventType::kArrival: OnArrival(e.payload); break;
        case EventType::kPrefillDone: OnPrefillDone(e); break;
        case EventType::kTransferDone: OnTransferDone(e); break;
        case EventType::kDecodeStepDone: OnDecodeStepDone(e); break;
        case EventType::kColocatedStepDone: OnColocatedStepDone(e); break;
        case EventType::kDecodeLoopWake: DistServeResume(e.instance); break;
      }
    }
    return Records(horizon_ns);
  }

 private:
  // Requests, instances and the snapshot's workers; every arrival becomes an event.
  void Init() {
    state_.workload = &workload_;
    const size_t n = workload_.requests.size();
    state_.reqs.assign(n, {});
    state_.records.assign(n, {});
    state_.prefill.assign(config_.prefill.size(), {});
    state_.decode.assign(config_.decode.size(), {});
    for (size_t d = 0; d < config_.decode.size(); ++d) {
      state_.decode[d].micro.resize(config_.decode[d].micro_batches);
      state_.decode[d].stage_free_at.assign(config_.decode[d].pp, 0);
    }
    state_.colocated.assign(config_.colocated.size(), {});
    // Snapshot vectors are sized once; ids never change.
    num_p_ = chunked_ ? 0 : colocated_mode_ ? config_.colocated.size() : config_.prefill.size();
    num_d_ = chunked_ ? 0 : colocated_mode_ ? config_.colocated.size() : config_.decode.size();
    if (chunked_) {
      for (size_t i = 0; i < config_.colocated.size(); ++i) {
        state_.snapshot.colocated.push_back({.id = absl::StrCat("colocated-", i)});
      }
    }
    for (size_t i = 0; i < num_p_; ++i) {
      state_.snapshot.prefill.push_back({.id = absl::StrCat(colocated_mode_ ? "colocated-" : "prefill-", i)});
    }
    for (size_t i = 0; i < num_d_; ++i) {
      state_.snapshot.decode.push_back({.id = absl::StrCat(colocated_mode_ ? "colocated-" : "decode-", i)});
    }

    for (size_t i = 0; i < n; ++i) {
      const SimRequest& r = workload_.requests[i];
      RequestRecord& rec = state_.records[i];
      rec.id = r.id;
      rec.prompt_len = r.prompt_len;
      rec.output_len = r.output_len;
      rec.ttft_slo_ms = r.ttft_slo_ms;
      rec.tpot_slo_ms = r.tpot_slo_ms;
      rec.slo_class = r.slo_class;
      state_.reqs[i].need = r.prompt_len + r.output_len;
      const int64_t t = std::llround(r.arrival_s * 1e9);
      state_.reqs[i].arrival = t;
      state_.events.Push(t, EventType::kArrival, -1, static_cast<int64_t>(i));
    }
  }

  // The records, with stages past the horizon unset.
  std::vector<RequestRecord> Records(int64_t horizon_ns) {
    for (size_t i = 0; i < state_.reqs.size(); ++i) {
      const State::Req& q = state_.reqs[i];
      RequestRecord& rec = state_.records[i];
      rec.arrival_s = NsToS(q.arrival);
      rec.prefill_start_s = NsToS(q.prefill_start);
      rec.first_token_s = NsToS(q.first_token > horizon_ns ? -1 : q.first_token);
      rec.kv_start_s = NsToS(q.kv_start > horizon_ns ? -1 : q.kv_start);
      rec.kv_end_s = NsToS(q.kv_end > horizon_ns ? -1 : q.kv_end);
      rec.decode_start_s = NsToS(q.decode_start);
      rec.finish_s = NsToS(q.finish);
      rec.finished = q.finish >= 0;
    }
    return std::move(state_.records);
  }

  void Finish(int64_t r) { state_.reqs[r].finish = state_.now; }
  // `r`'s prompt is done and its first token out now; true when that token was its last (then finished).
  bool FirstTokenOut(int64_t r) {
    state_.reqs[r].first_token = state_.now;
    state_.reqs[r].generated = 1;
    if (requests_[r].output_len > 1) return false;
    Finish(r);
    return true;
  }
  // Context tokens (prompt + generated so far) of the requests `rs`.
  int64_t ContextOf(const std::vector<int64_t>& rs) const {
    int64_t context = 0;
    for (int64_t r : rs) context += requests_[r].prompt_len + state_.reqs[r].generated;
    return context;
  }
  // The tightest TPOT SLO of its own among the requests `rs` (mixed workloads); 0: none has one.
  // `tightest` (0: none yet) updated by each of `rs`.
  double TightestTpotSlo(const std::vector<int64_t>& rs, double tightest = 0) const {
    for (int64_t r : rs) {
      const double own = requests_[r].tpot_slo_ms;
      if (own > 0 && (tightest == 0 || own < tightest)) tightest = own;
    }
    return tightest;
  }
  // The first decode step that includes each of `rs` starts now.
  void MarkDecodeStart(const std::vector<int64_t>& rs) {
    for (int64_t r : rs) {
      if (state_.reqs[r].decode_start < 0) state_.reqs[r].decode_start = state_.now;
    }
  }

  // KV pools as the admission policies see them (batching/admission.h): a capacity in tokens (0: no
  // limit) in whole blocks, less what is held or reserved.
  static batching::KvPool PoolOf(int64_t capacity_tokens, int64_t block_size, int64_t used_blocks) {
    const int64_t total = capacity_tokens > 0 ? std::max<int64_t>(1, capacity_tokens / block_size) : kUnlimitedBlocks;
    return batching::KvPool{.block_size = block_size, .total_blocks = total, .free_blocks = total - used_blocks};
  }

  // ---- Disaggregated ----

  void TryStartPrefill(int p) {
    State::Prefill& inst = state_.prefill[p];
    const PrefillInstanceConfig& cfg = config_.prefill[p];
    if (inst.busy || inst.queue.empty()) return;
    inst.batch.clear();
    inst.batch_tokens = 0;
    // The prefill worker's own batch policy; with kv_buffer_tokens the batch waits for decode to pull
    // (backpressure), as the worker waits for leases to be released.
    const batching::KvPool pool = PoolOf(cfg.kv_buffer_tokens, cfg.block_size, inst.held_blocks);
    // Only as much of the queue as could be admitted (every prompt takes a token and a block; the first is
    // exempt from the token budget): the queue can be long when the instance is overloaded.
    const int64_t scan = std::min({batching::LimitOrNone(cfg.max_batch_size),
                                   batching::LimitOrNone(cfg.max_batch_tokens) + 1, pool.free_blocks + 1});
    std::vector<int64_t> lens;
    for (int64_t r : inst.queue) {
      if (static_cast<int64_t>(lens.size()) >= scan) break;
      lens.push_back(requests_[r].prompt_len);
    }
    const batching::Admission plan = batching::PlanPrefillBatch(
        lens, {.max_batch = batching::LimitOrNone(cfg.max_batch_size), .max_batch_tokens = batching::LimitOrNone(cfg.max_batch_tokens)},
        pool);
    double sum = 0, sum_sq = 0;
    for (int64_t i = 0; i < plan.count; ++i) {
      const int64_t r = inst.queue.front();
      const int64_t len = requests_[r].prompt_len;
      inst.queue.pop_front();
      inst.batch.push_back(r);
      inst.batch_tokens += len;
      inst.queued_tokens -= len;
      inst.queued_predicted_ms -= cfg.latency.PrefillMsFromSums(len, double(len) * len);
      sum += len;
      sum_sq += double(len) * len;
      state_.reqs[r].held = pool.BlocksFor(len);
      state_.reqs[r].prefill_start = state_.now;
    }
    if (inst.batch.empty()) return;
    if (inst.queue.empty()) inst.queued_predicted_ms = 0.0;  // no drift from float accumulation
    inst.held_blocks += plan.blocks;
    if (options_.on_step) {
      options_.on_step({StepTrace::kPrefill, p, static_cast<int64_t>(inst.batch.size()), inst.batch_tokens});
    }
    inst.busy = true;
    inst.busy_until = state_.now + MsToNs(cfg.latency.PrefillMsFromSums(sum, sum_sq));
    state_.events.Push(inst.busy_until, EventType::kPrefillDone, p, -1);
  }

  void TryAdmitDecode(int d) {
    State::Decode& inst = state_.decode[d];
    const DecodeInstanceConfig& cfg = config_.decode[d];
    // The decode worker's own admission: FCFS, each reserving prompt + output in whole blocks.
    // With on-demand KV, only the prompt and the first decode step's token, and nothing while swapped-out
    // requests wait for memory.
    if (cfg.on_demand_kv && !inst.swapped.empty()) return;
    const batching::KvPool pool = PoolOf(cfg.kv_capacity_tokens, cfg.block_size, inst.reserved_blocks);
    std::vector<batching::SequenceSize> sizes;
    for (int64_t r : inst.pending) {
      if (static_cast<int64_t>(sizes.size()) > pool.free_blocks) break;  // each takes a block at least
      sizes.push_back({requests_[r].prompt_len, cfg.on_demand_kv ? 1 : requests_[r].output_len});
    }
    batching::Admission admission = batching::PlanDecodeAdmission(sizes, pool);
    if (DistServeLoop(cfg)) {
      // DistServe accepts a migration while the waiting prompts (pulled or being pulled, not yet in a
      // batch) hold less than the fraction of the blocks.
      const double limit = cfg.waiting_block_fraction * static_cast<double>(pool.total_blocks);
      int64_t waiting = WaitingBlocks(d);
      int64_t accepted = 0;
      for (; accepted < admission.count && static_cast<double>(waiting) < limit; ++accepted) {
        waiting += pool.BlocksFor(requests_[inst.pending[accepted]].prompt_len + 1);
      }
      admission.count = accepted;
    }
    for (int64_t i = 0; i < admission.count; ++i) {
      const int64_t r = inst.pending.front();
      inst.pending.pop_front();
      state_.reqs[r].blocks = pool.BlocksFor(cfg.on_demand_kv ? requests_[r].prompt_len + 1 : state_.reqs[r].need);
      inst.reserved_blocks += state_.reqs[r].blocks;
      const int p = state_.records[r].prefill_instance;
      const double bytes = config_.kv_bytes_per_token * static_cast<double>(requests_[r].prompt_len);
      int64_t start = std::max(state_.now, inst.link_free_at);
      // DistServe's decode loop migrates in post_process, on every worker, behind the micro-batches
      // already in its pipeline: the copy starts when they have all come out of it.
      if (DistServeLoop(cfg) && !inst.launched.empty()) start = std::max(start, inst.stage_free_at.back());
      const int64_t end = start + MsToNs(config_.prefill[p].latency.KvTransferMs(bytes));
      inst.link_free_at = end;
      state_.reqs[r].kv_start = start;
      state_.reqs[r].kv_end = end;
      inst.transferring.push_back(r);
      state_.events.Push(end, EventType::kTransferDone, d, r);
    }
  }

  // Launches every micro-batch that is not in the pipeline and has requests, in rotation order after the
  // last one launched. (With DecodeInstanceConfig::step_loop, DistServeResume launches instead.)
  void TryStartDecode(int d) {
    State::Decode& inst = state_.decode[d];
    const DecodeInstanceConfig& cfg = config_.decode[d];
    if (StepLoop(cfg)) return;
    // DistServe's loop launches nothing while its post_process migrates KV.
    if (DistServeLoop(cfg) && !inst.transferring.empty()) return;
    const int num_micro = static_cast<int>(inst.micro.size());
    if (inst.draining) {
      if (!inst.launched.empty()) return;
      inst.draining = false;
    }
    const int after = inst.last_launched;
    for (int k = 1; k <= num_micro; ++k) {
      const int m = (after + k) % num_micro;
      if (std::find(inst.launched.begin(), inst.launched.end(), m) != inst.launched.end()) continue;
      LaunchMicroBatch(d, m);
    }
  }

  // Ready requests join micro-batch `m` (up to max_batch_size; swapped-out ones first with on-demand
  // KV), and it goes through the `pp` stages in order, each taking DecodeStepMs(its batch, its context)
  // of the stage profile and starting when the stage is free; with pp = 1 this is one step of the whole
  // running batch. Returns false, launching nothing, when the micro-batch is empty.
  bool LaunchMicroBatch(int d, int m) {
    State::Decode& inst = state_.decode[d];
    const DecodeInstanceConfig& cfg = config_.decode[d];
    std::vector<int64_t>& batch_reqs = inst.micro[m];
    if (cfg.on_demand_kv) SwapIn(d, &batch_reqs);
    int64_t joins = batching::DecodeJoins(static_cast<int64_t>(inst.ready.size()),
                                          static_cast<int64_t>(batch_reqs.size()),
                                          batching::LimitOrNone(cfg.max_batch_size));
    if (DistServeLoop(cfg)) joins = DistServeJoins(d, joins);
    for (int64_t i = 0; i < joins; ++i) {
      const int64_t r = inst.ready.front();
      inst.ready.pop_front();
      state_.reqs[r].decode_start = state_.now;
      batch_reqs.push_back(r);
    }
    if (cfg.on_demand_kv) GrowOrSwapOut(d, &batch_reqs);
    if (batch_reqs.empty()) return false;
    const int64_t batch = static_cast<int64_t>(batch_reqs.size());
    if (options_.on_step) options_.on_step({StepTrace::kDecode, d, batch, batch});
    // The profile's per-step overheads (the engine's dispatch) are paid once per pass, on the first
    // stage, as DistServe's simulator adds its ray overhead there.
    const int64_t context = ContextOf(batch_reqs);
    const double step_ms = cfg.latency.DecodeStepMs(batch, context);
    const policy::LatencyModelParams& lp = cfg.latency.params();
    const double overhead_ms = lp.decode_overhead_ms + lp.overhead_per_ctx_token_ms * static_cast<double>(context);
    int64_t t = state_.now;
    for (size_t stage = 0; stage < inst.stage_free_at.size(); ++stage) {
      t = std::max(t, inst.stage_free_at[stage]) + MsToNs(stage == 0 ? step_ms : step_ms - overhead_ms);
      inst.stage_free_at[stage] = t;
    }
    inst.launched.push_back(m);
    inst.last_launched = m;
    state_.events.Push(t, EventType::kDecodeStepDone, d, m);
    return true;
  }

  // DistServe's decode step loop (DecodeInstanceConfig::step_loop; single_stage_engine.py
  // DecodingStageLLMEngine._step, run back to back), advanced as far as it goes at `now`; it stops where
  // the real loop awaits something, and the event that ends the wait calls this again. DistServe keeps
  // pp micro-batches; here there are DecodeInstanceConfig::micro_batches (pp unless overridden). Each
  // step:
  //  kStep: the next micro-batch in rotation (its scheduler's cur_index) takes swapped-out and waiting
  //    requests and is launched; an empty one is not, and the loop sleeps 3 ms
  //    (SLEEP_WHEN_DECODING_NO_REQUEST) -> kSleeping -> kCheckPipeline.
  //  kCheckPipeline: with a step per micro-batch in flight it awaits the oldest (kAwait: the tokens of
  //    that micro-batch come out now, when the loop sees them), or drops it if it was empty.
  //  kPostProcess: the scheduler's post_process pulls the KV of the prefilled requests it accepts, one
  //    after another (kMigrating: nothing else happens meanwhile), then the next step.
  // The consequence that matters: requests pulled in a post_process join the micro-batch of the next
  // step, which (after awaiting micro-batch m) is m itself when the other micro-batches are empty, so a
  // pipeline that once ran one micro-batch tends to keep running one, as the measured runs show
  // (bench/sim/distserve.md). With nothing to do at all the loop parks; the real one spins, taking new
  // work at its next 3 ms tick, where parked work resumes.
  static constexpr int64_t kDistServeEmptyStepSleepNs = 3'000'000;
  void DistServeResume(int d) {
    State::Decode& inst = state_.decode[d];
    using Loop = State::Decode::Loop;
    const int num_micro = static_cast<int>(inst.micro.size());
    for (;;) {
      switch (inst.loop) {
        case Loop::kParked:
          return;
        case Loop::kStep:
          inst.cur = (inst.cur + 1) % num_micro;
          if (LaunchMicroBatch(d, inst.cur)) {
            inst.pipeline.push_back(inst.cur);
            inst.loop = Loop::kCheckPipeline;
          } else {
            inst.pipeline.push_back(-1);
            Sleep(d, state_.now + kDistServeEmptyStepSleepNs);
          }
          break;
        case Loop::kSleeping:
          if (state_.now < inst.wake_at) return;
          inst.loop = Loop::kCheckPipeline;
          break;
        case Loop::kCheckPipeline:
          if (static_cast<int>(inst.pipeline.size()) < num_micro) {
            inst.loop = Loop::kPostProcess;
          } else if (inst.pipeline.front() < 0) {
            inst.pipeline.pop_front();
            inst.loop = Loop::kPostProcess;
          } else {
            inst.loop = Loop::kAwait;
          }
          break;
        case Loop::kAwait: {
          const int m = inst.pipeline.front();
          if (std::find(inst.launched.begin(), inst.launched.end(), m) != inst.launched.end()) return;
          inst.pipeline.pop_front();
          AdvanceDecodes(&inst.micro[m], &inst.reserved_blocks);
          inst.loop = Loop::kPostProcess;
          break;
        }
        case Loop::kPostProcess:
          TryAdmitDecode(d);
          if (!inst.transferring.empty()) {
            inst.loop = Loop::kMigrating;
          } else if (DistServeIdle(inst)) {
            inst.loop = Loop::kParked;
            inst.parked_at = state_.now;
            inst.pipeline.clear();
          } else {
            inst.loop = Loop::kStep;
          }
          break;
        case Loop::kMigrating:
          if (!inst.transferring.empty()) return;
          inst.loop = Loop::kPostProcess;  // it accepts what arrived meanwhile too
          break;
      }
    }
  }
  void Sleep(int d, int64_t until) {
    State::Decode& inst = state_.decode[d];
    inst.loop = State::Decode::Loop::kSleeping;
    inst.wake_at = until;
    state_.events.Push(until, EventType::kDecodeLoopWake, d, -1);
  }
  // Nothing running, swapped out, pulled or being pulled. (A micro-batch in flight or not yet awaited
  // holds its requests until the loop awaits it, so empty micro-batches mean an empty pipeline.)
  static bool DistServeIdle(const State::Decode& inst) {
    if (!inst.ready.empty() || !inst.swapped.empty() || !inst.transferring.empty()) return false;
    for (const auto& batch : inst.micro) {
      if (!batch.empty()) return false;
    }
    return true;
  }
  // Prefilled requests for a parked loop: it takes them at its next 3 ms tick.
  void WakeParked(int d) {
    State::Decode& inst = state_.decode[d];
    if (inst.loop != State::Decode::Loop::kParked || inst.pending.empty()) return;
    const int64_t ticks = (state_.now - inst.parked_at + kDistServeEmptyStepSleepNs - 1) / kDistServeEmptyStepSleepNs;
    Sleep(d, inst.parked_at + ticks * kDistServeEmptyStepSleepNs);
  }

  // A decode instance run as DistServe's decode engine (its scheduler and its step loop).
  static bool DistServeLoop(const DecodeInstanceConfig& cfg) { return cfg.on_demand_kv && cfg.waiting_block_fraction > 0; }
  // ... with the step loop replayed step by step (DistServeResume).
  static bool StepLoop(const DecodeInstanceConfig& cfg) { return DistServeLoop(cfg) && cfg.step_loop; }
  // Blocks held by requests pulled (or being pulled) to decode instance `d` and not yet in a batch.
  int64_t WaitingBlocks(int d) const {
    int64_t blocks = 0;
    for (int64_t r : state_.decode[d].ready) blocks += state_.reqs[r].blocks;
    for (int64_t r : state_.decode[d].transferring) blocks += state_.reqs[r].blocks;
    return blocks;
  }
  // DistServe's _check_add_to_cur_batch for the first `joins` ready requests: none while swapped-out
  // requests wait; otherwise, in order, while each one's blocks fit a second time in the free blocks.
  int64_t DistServeJoins(int d, int64_t joins) const {
    const State::Decode& inst = state_.decode[d];
    if (!inst.swapped.empty()) return 0;
    const DecodeInstanceConfig& cfg = config_.decode[d];
    const batching::KvPool pool = PoolOf(cfg.kv_capacity_tokens, cfg.block_size, inst.reserved_blocks);
    int64_t ok = 0;
    while (ok < joins && state_.reqs[inst.ready[ok]].blocks <= pool.free_blocks) ++ok;
    return ok;
  }

  // The tokens a prefill of `r` processes: its prompt, and what it had generated when it was preempted.
  int64_t PromptTokens(int64_t r) const { return requests_[r].prompt_len + state_.reqs[r].generated; }
  // On-demand KV: the blocks `r` needs for the step that writes its next token.
  int64_t StepBlocks(int64_t r, const batching::KvPool& pool) const {
    return pool.BlocksFor(requests_[r].prompt_len + state_.reqs[r].generated + 1);
  }
  // Swapped-out requests rejoin `batch`, oldest first, while their blocks fit and the batch has room.
  void SwapIn(int d, std::vector<int64_t>* batch) {
    State::Decode& inst = state_.decode[d];
    const DecodeInstanceConfig& cfg = config_.decode[d];
    while (!inst.swapped.empty() &&
           static_cast<int64_t>(batch->size()) < batching::LimitOrNone(cfg.max_batch_size)) {
      const batching::KvPool pool = PoolOf(cfg.kv_capacity_tokens, cfg.block_size, inst.reserved_blocks);
      const int64_t r = inst.swapped.front();
      const int64_t blocks = StepBlocks(r, pool);
      if (blocks > pool.free_blocks) break;
      inst.swapped.pop_front();
      state_.reqs[r].blocks = blocks;
      inst.reserved_blocks += blocks;
      batch->push_back(r);
    }
  }
  // Grows every request of `batch` to its blocks for this step in `pool`, preempting the newest ones
  // first when the growth does not fit (batching::GrowthPreemptions); returns the preempted requests,
  // newest first, their blocks freed.
  std::vector<int64_t> GrowOrPreempt(const batching::KvPool& pool, std::vector<int64_t>* batch, int64_t* reserved_blocks) {
    std::vector<int64_t> held, needed;
    for (int64_t r : *batch) {
      held.push_back(state_.reqs[r].blocks);
      needed.push_back(std::max(state_.reqs[r].blocks, StepBlocks(r, pool)));
    }
    const int64_t out = batching::GrowthPreemptions(held, needed, pool.free_blocks);
    std::vector<int64_t> preempted;
    for (int64_t i = 0; i < out; ++i) {
      const int64_t r = batch->back();
      batch->pop_back();
      *reserved_blocks -= state_.reqs[r].blocks;
      state_.reqs[r].blocks = 0;
      preempted.push_back(r);
    }
    for (size_t i = 0; i < batch->size(); ++i) {
      *reserved_blocks += needed[i] - held[i];
      state_.reqs[(*batch)[i]].blocks = needed[i];
    }
    return preempted;
  }
  // Decode instance: the preempted are swapped out, to come back before any new request.
  void GrowOrSwapOut(int d, std::vector<int64_t>* batch) {
    State::Decode& inst = state_.decode[d];
    const DecodeInstanceConfig& cfg = config_.decode[d];
    const batching::KvPool pool = PoolOf(cfg.kv_capacity_tokens, cfg.block_size, inst.reserved_blocks);
    for (int64_t r : GrowOrPreempt(pool, batch, &inst.reserved_blocks)) inst.swapped.push_back(r);
  }

  // Advances every running request by one token; finished ones leave `running` and free their blocks.
  void AdvanceDecodes(std::vector<int64_t>* running, int64_t* reserved_blocks) {
    size_t kept = 0;
    for (int64_t r : *running) {
      if (++state_.reqs[r].generated >= requests_[r].output_len) {
        Finish(r);
        *reserved_blocks -= state_.reqs[r].blocks;
      } else {
        (*running)[kept++] = r;
      }
    }
    running->resize(kept);
  }

  // ---- Colocated, chunked: the colocated engine's own step policy ----
  static batching::ColocatedBatchOptions ChunkedBatchOptions(const ColocatedInstanceConfig& cfg) {
    return batching::ColocatedBatchOptions{.step_token_budget = cfg.step_token_budget,
                                           .max_batch = cfg.max_batch_size > 0 ? cfg.max_batch_size : kUnlimitedBlocks,
                                           .block_size = cfg.block_size};
  }
  batching::KvPool ColocatedPool(int c) const {
    const ColocatedInstanceConfig& cfg = config_.colocated[c];
    return PoolOf(cfg.kv_capacity_tokens, cfg.block_size, state_.colocated[c].reserved_blocks);
  }
  void TryStartChunked(int c) {
    State::Colocated& inst = state_.colocated[c];
    const ColocatedInstanceConfig& cfg = config_.colocated[c];
    if (inst.busy) return;
    const batching::ColocatedBatchOptions options = ChunkedBatchOptions(cfg);
    batching::ColocatedBatchState state;
    state.decoding = static_cast<int64_t>(inst.running.size());
    for (int64_t r : inst.prefilling) state.prefilling.push_back({requests_[r].prompt_len, state_.reqs[r].prefilled});
    for (int64_t r : inst.waiting) {
      if (static_cast<int64_t>(state.waiting.size()) >= options.max_batch) break;
      state.waiting.push_back({requests_[r].prompt_len, requests_[r].output_len});
    }
    state.free_blocks = ColocatedPool(c).free_blocks;
    const batching::ColocatedStepPlan plan = batching::PlanColocatedStep(state, options);
    for (int64_t i = 0; i < plan.admit; ++i) {
      const int64_t r = inst.waiting.front();
      inst.waiting.pop_front();
      inst.queued_tokens -= requests_[r].prompt_len;
      state_.reqs[r].blocks = batching::BlocksFor(state_.reqs[r].need, cfg.block_size);
      inst.reserved_blocks += state_.reqs[r].blocks;
      state_.reqs[r].prefill_start = state_.now;
      inst.prefilling.push_back(r);
    }
    if (plan.tokens() == 0) return;
    if (options_.on_colocated_step) options_.on_colocated_step(c, plan);
    inst.step_decode.assign(inst.running.begin(), inst.running.begin() + plan.decode);
    inst.step_chunks.clear();
    const int64_t context = ContextOf(inst.step_decode);
    MarkDecodeStart(inst.step_decode);
    double sum = 0, sum_sq = 0;
    for (size_t i = 0; i < inst.prefilling.size(); ++i) {
      if (plan.chunks[i] == 0) continue;
      inst.step_chunks.push_back({inst.prefilling[i], plan.chunks[i]});
      sum += static_cast<double>(plan.chunks[i]);
      sum_sq += static_cast<double>(plan.chunks[i]) * static_cast<double>(plan.chunks[i]);
    }
    double ms = 0;
    if (plan.decode > 0) ms += cfg.latency.DecodeStepMs(plan.decode, context);
    if (sum > 0) ms += cfg.latency.PrefillMsFromSums(sum, sum_sq);
    inst.busy = true;
    inst.busy_until = state_.now + MsToNs(ms);
    state_.events.Push(inst.busy_until, EventType::kColocatedStepDone, c, -1);
  }
  void ChunkedStepDone(int c) {
    State::Colocated& inst = state_.colocated[c];
    std::vector<int64_t> finished;
    for (int64_t r : inst.step_decode) {
      if (++state_.reqs[r].generated >= requests_[r].output_len) finished.push_back(r);
    }
    std::vector<int64_t> started;  // prompts whose first token this step sampled, in admission order
    for (const auto& [r, tokens] : inst.step_chunks) {
      state_.reqs[r].prefilled += tokens;
      if (state_.reqs[r].prefilled < requests_[r].prompt_len) continue;
      state_.reqs[r].first_token = state_.now;
      state_.reqs[r].generated = 1;
      started.push_back(r);
      if (requests_[r].output_len <= 1) finished.push_back(r);
    }
    for (int64_t r : finished) {
      Finish(r);
      inst.reserved_blocks -= state_.reqs[r].blocks;
    }
    const auto is_finished = [&](int64_t r) { return state_.reqs[r].finish >= 0; };
    inst.running.erase(std::remove_if(inst.running.begin(), inst.running.end(), is_finished), inst.running.end());
    for (int64_t r : started) {
      if (!is_finished(r)) inst.running.push_back(r);
    }
    inst.prefilling.erase(std::remove_if(inst.prefilling.begin(), inst.prefilling.end(),
                                         [&](int64_t r) { return state_.reqs[r].generated > 0; }),
                          inst.prefilling.end());
    inst.step_decode.clear();
    inst.step_chunks.clear();
  }

  // ---- Colocated, vLLM v0 ----
  void TryStartColocated(int c) {
    if (chunked_) return TryStartChunked(c);
    State::Colocated& inst = state_.colocated[c];
    const ColocatedInstanceConfig& cfg = config_.colocated[c];
    if (inst.busy) return;
    inst.batch.clear();
    // The offline generator's own admission (vLLM v0): a prefill step admits FCFS under the batch cap,
    // the prefill token budget and the KV reservation of prompt + output in whole blocks; with on-demand
    // KV, the prompt's blocks (a preempted request's prompt is its prompt and what it had generated).
    const batching::KvPool pool = ColocatedPool(c);
    const batching::PromptAdmissionOptions admission_options{.max_batch = batching::LimitOrNone(cfg.max_batch_size),
                                                             .max_prefill_tokens = batching::LimitOrNone(cfg.max_batch_tokens),
                                                             .padded = cfg.max_paddings >= 0,
                                                             .max_paddings = std::max<int64_t>(cfg.max_paddings, 0)};
    std::vector<batching::SequenceSize> sizes;
    for (int64_t r : inst.waiting) {
      if (static_cast<int64_t>(inst.running.size() + sizes.size()) >= admission_options.max_batch ||
          static_cast<int64_t>(sizes.size()) > pool.free_blocks) {
        break;  // no more could be admitted (each takes a batch slot and a block at least)
      }
      sizes.push_back({PromptTokens(r), cfg.on_demand_kv ? 1 : requests_[r].output_len});
    }
    const batching::Admission admission =
        batching::PlanPromptAdmission(sizes, static_cast<int64_t>(inst.running.size()), admission_options, pool);
    double sum_sq = 0;
    int64_t longest = 0;
    for (int64_t i = 0; i < admission.count; ++i) {
      const int64_t r = inst.waiting.front();
      const int64_t len = PromptTokens(r);
      longest = std::max(longest, len);
      inst.waiting.pop_front();
      inst.batch.push_back(r);
      state_.reqs[r].blocks = pool.BlocksFor(cfg.on_demand_kv ? len + 1 : state_.reqs[r].need);
      inst.reserved_blocks += state_.reqs[r].blocks;
      inst.queued_tokens -= len;
      inst.queued_predicted_ms -= cfg.latency.PrefillMsFromSums(len, double(len) * len);
      sum_sq += double(len) * len;
      if (state_.reqs[r].prefill_start < 0) state_.reqs[r].prefill_start = state_.now;
    }
    const int64_t tokens = admission.tokens;
    if (inst.waiting.empty()) inst.queued_predicted_ms = 0.0;
    double ms;
    if (!inst.batch.empty()) {
      inst.step_is_prefill = true;
      // A padded step computes every prompt at the longest one's length (admission.tokens counts them).
      if (admission_options.padded) sum_sq = static_cast<double>(admission.count) * double(longest) * longest;
      ms = cfg.latency.PrefillMsFromSums(static_cast<double>(tokens), sum_sq);
      if (options_.on_step) {
        options_.on_step({StepTrace::kColocatedPrefill, c, static_cast<int64_t>(inst.batch.size()), tokens});
      }
    } else if (!inst.running.empty()) {
      if (cfg.on_demand_kv) {
        // vLLM v0: a sequence that cannot grow is preempted by recomputation, newest first, back to the
        // head of the queue; when that empties the batch, the next step is its prefill.
        for (int64_t r : GrowOrPreempt(ColocatedPool(c), &inst.running, &inst.reserved_blocks)) {
          const int64_t len = PromptTokens(r);
          inst.waiting.push_front(r);
          inst.queued_tokens += len;
          inst.queued_predicted_ms += cfg.latency.PrefillMsFromSums(len, double(len) * len);
        }
        if (inst.running.empty()) return TryStartColocated(c);
      }
      inst.step_is_prefill = false;
      const int64_t context = ContextOf(inst.running);
      MarkDecodeStart(inst.running);
      const int64_t batch = static_cast<int64_t>(inst.running.size());
      ms = cfg.latency.DecodeStepMs(batch, context);
      if (options_.on_step) options_.on_step({StepTrace::kColocatedDecode, c, batch, batch});
    } else {
      return;
    }
    inst.busy = true;
    inst.busy_until = state_.now + MsToNs(ms);
    state_.events.Push(inst.busy_until, EventType::kColocatedStepDone, c, -1);
  }

  void FillSnapshot() {
    if (chunked_) {
      for (size_t c = 0; c < state_.colocated.size(); ++c) {
        const State::Colocated& inst = state_.colocated[c];
        const ColocatedInstanceConfig& cfg = config_.colocated[c];
        policy::ColocatedWorkerState& w = state_.snapshot.colocated[c];
        w.queued_requests = static_cast<int64_t>(inst.waiting.size());
        w.queued_prompt_tokens = inst.queued_tokens;
        for (int64_t r : inst.prefilling) w.queued_prompt_tokens += requests_[r].prompt_len - state_.reqs[r].prefilled;
        w.prefilling_requests = static_cast<int64_t>(inst.prefilling.size());
        w.running_batch_size = static_cast<int64_t>(inst.running.size());
        w.total_context_tokens = ContextOf(inst.running);
        w.total_kv_blocks = ColocatedPool(static_cast<int>(c)).total_blocks;
        w.free_kv_blocks = ColocatedPool(static_cast<int>(c)).free_blocks;
        w.block_size = cfg.block_size;
        w.step_token_budget = cfg.step_token_budget;
      }
      return;
    }
    if (colocated_mode_) {
      for (size_t c = 0; c < state_.colocated.size(); ++c) {
        const State::Colocated& inst = state_.colocated[c];
        const ColocatedInstanceConfig& cfg = config_.colocated[c];
        policy::PrefillWorkerState& p = state_.snapshot.prefill[c];
        p.queued_requests = static_cast<int64_t>(inst.waiting.size());
        p.queued_prompt_tokens = inst.queued_tokens;
        p.running_tokens = 0;
        p.predicted_free_ms =
            (inst.busy ? (inst.busy_until - state_.now) * 1e-6 : 0.0) + std::max(0.0, inst.queued_predicted_ms);
        policy::DecodeWorkerState& d = state_.snapshot.decode[c];
        d.running_batch_size = static_cast<int64_t>(inst.running.size());
        d.min_running_tpot_slo_ms = TightestTpotSlo(inst.running);
        d.block_size = cfg.block_size;
        d.total_kv_blocks = ColocatedPool(static_cast<int>(c)).total_blocks;
        d.free_kv_blocks = ColocatedPool(static_cast<int>(c)).free_blocks;
        d.queued_requests = static_cast<int64_t>(inst.waiting.size());
        d.total_context_tokens = ContextOf(inst.running);
      }
      return;
    }
    for (size_t i = 0; i < state_.prefill.size(); ++i) {
      const State::Prefill& inst = state_.prefill[i];
      policy::PrefillWorkerState& p = state_.snapshot.prefill[i];
      p.queued_requests = static_cast<int64_t>(inst.queue.size());
      p.queued_prompt_tokens = inst.queued_tokens;
      p.running_tokens = inst.busy ? inst.batch_tokens : 0;
      p.predicted_free_ms =
          (inst.busy ? (inst.busy_until - state_.now) * 1e-6 : 0.0) + std::max(0.0, inst.queued_predicted_ms);
    }
    for (size_t i = 0; i < state_.decode.size(); ++i) {
      const State::Decode& inst = state_.decode[i];
      const DecodeInstanceConfig& cfg = config_.decode[i];
      policy::DecodeWorkerState& d = state_.snapshot.decode[i];
      d.running_batch_size = 0;
      d.min_running_tpot_slo_ms = 0;
      d.total_context_tokens = 0;
      for (const std::vector<int64_t>& batch : inst.micro) {
        d.running_batch_size += static_cast<int64_t>(batch.size());
        d.min_running_tpot_slo_ms = TightestTpotSlo(batch, d.min_running_tpot_slo_ms);
        d.total_context_tokens += ContextOf(batch);
      }
      d.block_size = cfg.block_size;
      const batching::KvPool pool = PoolOf(cfg.kv_capacity_tokens, cfg.block_size, inst.reserved_blocks);
      d.total_kv_blocks = pool.total_blocks;
      d.free_kv_blocks = pool.free_blocks;
      d.queued_requests =
          static_cast<int64_t>(inst.pending.size() + inst.ready.size() + inst.swapped.size() + inst.transferring.size());
    }
  }

  void OnArrival(int64_t r) {
    const SimRequest& req = requests_[r];
    FillSnapshot();
    policy::PlacementRequest placement{.prompt_len = req.prompt_len,
                                       .max_output_len = req.output_len,
                                       .expected_output_len = req.output_len,
                                       .ttft_slo_ms = req.ttft_slo_ms > 0 ? req.ttft_slo_ms : options_.ttft_slo_ms,
                                       .tpot_slo_ms = req.tpot_slo_ms > 0 ? req.tpot_slo_ms : options_.tpot_slo_ms,
                                       .best_effort = options_.best_effort};
    const policy::PlacementDecision decision = policy_->Place(placement, state_.snapshot);
    RequestRecord& rec = state_.records[r];
    const bool in_range =
        chunked_ ? decision.colocated_index >= 0 && decision.colocated_index < static_cast<int>(state_.colocated.size())
                : decision.colocated_index < 0 && decision.prefill_index >= 0 &&
                      decision.prefill_index < static_cast<int>(num_p_) && decision.decode_index >= 0 &&
                      decision.decode_index < static_cast<int>(num_d_);
    if (!decision.accepted || !in_range) {
      rec.rejected = true;
      const std::string reason = decision.accepted ? "policy returned an index out of range" : decision.reject_reason;
      auto it = std::find_if(reject_reasons_.begin(), reject_reasons_.end(),
                             [&](const auto& entry) { return entry.first == reason; });
      if (it == reject_reasons_.end()) {
        reject_reasons_.push_back({reason, 1});
      } else {
        ++it->second;
      }
      return;
    }
    if (chunked_) {
      const int c = decision.colocated_index;
      rec.prefill_instance = c;
      rec.decode_instance = c;
      State::Colocated& inst = state_.colocated[c];
      inst.waiting.push_back(r);
      inst.queued_tokens += req.prompt_len;
      TryStartColocated(c);
      return;
    }
    rec.prefill_instance = decision.prefill_index;
    if (colocated_mode_) {
      rec.decode_instance = decision.prefill_index;
      State::Colocated& inst = state_.colocated[decision.prefill_index];
      inst.waiting.push_back(r);
      inst.queued_tokens += req.prompt_len;
      inst.queued_predicted_ms += config_.colocated[decision.prefill_index].latency.PrefillMsFromSums(
          req.prompt_len, double(req.prompt_len) * req.prompt_len);
      TryStartColocated(decision.prefill_index);
      return;
    }
    rec.decode_instance = decision.decode_index;
    State::Prefill& inst = state_.prefill[decision.prefill_index];
    inst.queue.push_back(r);
    inst.queued_tokens += req.prompt_len;
    inst.queued_predicted_ms += config_.prefill[decision.prefill_index].latency.PrefillMsFromSums(
        req.prompt_len, double(req.prompt_len) * req.prompt_len);
    TryStartPrefill(decision.prefill_index);
  }


  // A prefill batch finished: first tokens out, each prompt waits for its decode instance's reservation.
  void OnPrefillDone(const Event& e) {
    State::Prefill& inst = state_.prefill[e.instance];
    inst.busy = false;
    std::vector<int> touched;
    for (int64_t r : inst.batch) {
      if (FirstTokenOut(r)) {
        inst.held_blocks -= state_.reqs[r].held;
        continue;
      }
      const int d = state_.records[r].decode_instance;
      state_.decode[d].pending.push_back(r);
      if (std::find(touched.begin(), touched.end(), d) == touched.end()) touched.push_back(d);
    }
    inst.batch.clear();
    for (int d : touched) {
      if (StepLoop(config_.decode[d])) {
        WakeParked(d);  // a running loop pulls in its post_process
      } else {
        TryAdmitDecode(d);
      }
    }
    TryStartPrefill(e.instance);
  }

  // A prompt's KV arrived on its decode instance: the prefill instance's blocks come back.
  void OnTransferDone(const Event& e) {
    const int64_t r = e.payload;
    const int p = state_.records[r].prefill_instance;
    state_.prefill[p].held_blocks -= state_.reqs[r].held;
    State::Decode& inst = state_.decode[e.instance];
    inst.transferring.erase(std::find(inst.transferring.begin(), inst.transferring.end(), r));
    inst.ready.push_back(r);
    // DistServe's decode engine awaits each KV migration in its step loop, on every worker, behind the
    // micro-batches already in the pipeline: the pipeline drains before the next launch. (With its
    // scheduler modelled, DistServeLoop, the copy itself waits for the pipeline and blocks launches.)
    if (!DistServeLoop(config_.decode[e.instance]) && inst.micro.size() > 1 && !inst.launched.empty()) {
      inst.draining = true;
    }
    TryStartPrefill(p);
    if (StepLoop(config_.decode[e.instance])) {
      DistServeResume(e.instance);
    } else {
      TryStartDecode(e.instance);
    }
  }

  // Micro-batch e.payload came out of the last pipeline stage (the whole batch, when pp = 1).
  void OnDecodeStepDone(const Event& e) {
    State::Decode& inst = state_.decode[e.instance];
    const int m = static_cast<int>(e.payload);
    inst.launched.erase(std::find(inst.launched.begin(), inst.launched.end(), m));
    if (StepLoop(config_.decode[e.instance])) {
      DistServeResume(e.instance);  // its tokens come out when the loop awaits it
      return;
    }
    AdvanceDecodes(&inst.micro[m], &inst.reserved_blocks);
    TryAdmitDecode(e.instance);
    TryStartDecode(e.instance);
  }

  void OnColocatedStepDone(const Event& e) {
    State::Colocated& inst = state_.colocated[e.instance];
    inst.busy = false;
    if (chunked_) {
      ChunkedStepDone(e.instance);
    } else if (inst.step_is_prefill) {
      for (int64_t r : inst.batch) {
        // A recomputed request's prefill samples its next token; a new one's is its first.
        const bool done = state_.reqs[r].generated > 0 ? ++state_.reqs[r].generated >= requests_[r].output_len
                                                       : FirstTokenOut(r);
        if (done) {
          if (state_.reqs[r].finish < 0) Finish(r);
          inst.reserved_blocks -= state_.reqs[r].blocks;
        } else {
          inst.running.push_back(r);
        }
      }
      inst.batch.clear();
    } else {
      AdvanceDecodes(&inst.running, &inst.reserved_blocks);
    }
    TryStartColocated(e.instance);
  }

  const ClusterConfig& config_;
  const SimOptions& options_;
  policy::PlacementPolicy* policy_;
  std::vector<std::pair<std::string, int64_t>>& reject_reasons_;
  const Workload& workload_;
  const std::vector<SimRequest>& requests_;
  const bool colocated_mode_;
  const bool chunked_;
  size_t num_p_ = 0, num_d_ = 0;  // snapshot sizes
  State state_;
};

absl::StatusOr<std::vector<RequestRecord>> Simulator::Run(const Workload& workload) {
  const bool colocated_mode = !config_.colocated.empty();
  if (colocated_mode && (!config_.prefill.empty() || !config_.decode.empty())) {
    return absl::InvalidArgumentError("cluster: colocated instances cannot be mixed with prefill/decode");
  }
  if (!colocated_mode && (config_.prefill.empty() || config_.decode.empty())) {
    return absl::InvalidArgumentError(absl::StrCat("cluster: need at least one prefill and one decode instance (have ",
                                                   config_.prefill.size(), " prefill, ", config_.decode.size(),
                                                   " decode)"));
  }
  if (policy_ == nullptr) return absl::InvalidArgumentError("simulator: no placement policy");
  for (const DecodeInstanceConfig& d : config_.decode) {
    if (d.pp < 1 || d.micro_batches < 1 || d.micro_batches > d.pp) {
      return absl::InvalidArgumentError(absl::StrCat("cluster: decode pp must be >= 1 and micro_batches in [1, pp], got pp ",
                                                     d.pp, ", micro_batches ", d.micro_batches));
    }
    if (d.step_loop && !(d.on_demand_kv && d.waiting_block_fraction > 0)) {
      return absl::InvalidArgumentError(
          "cluster: decode step_loop replays DistServe's loop and needs its scheduler (on_demand_kv and "
          "waiting_block_fraction > 0)");
    }
  }
  const bool chunked = colocated_mode && config_.colocated[0].step_token_budget > 0;
  for (const ColocatedInstanceConfig& c : config_.colocated) {
    if ((c.step_token_budget > 0) != chunked) {
      return absl::InvalidArgumentError("cluster: colocated instances must all set step_token_budget, or none");
    }
    if (chunked && c.block_size < 1) return absl::InvalidArgumentError("cluster: colocated block_size must be >= 1");
  }
  reject_reasons_.clear();
  Runner runner(*this, workload, colocated_mode, chunked, reject_reasons_);
  return runner.Run();
}

}  // namespace tandem::sim
