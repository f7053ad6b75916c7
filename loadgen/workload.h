// The requests `tandem bench` sends: prompt/output lengths from the simulator's built-in length
// distributions or a trace (sim/workload.h, reused, not copied), arrivals scaled to each offered rate
// with common random numbers (the same requests, in the same order, at every rate of a sweep),
// lengths clipped to the model's context, and deterministic random prompt token ids.
//
// Everything here is pure and deterministic in the seed: no I/O except reading a trace file, no
// clock, no threads. Thread safety: functions only; values are plain structs.
#ifndef TANDEM_LOADGEN_WORKLOAD_H_
#define TANDEM_LOADGEN_WORKLOAD_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/workload.h"

namespace tandem::loadgen {

struct BenchRequest {
  int64_t index = 0;       // position in the base workload: the same request at every rate
  double arrival_s = 0.0;  // scheduled send time, seconds from the start of the run
  int64_t prompt_len = 1;  // prompt tokens, >= 1
  int64_t output_len = 1;  // max_tokens, sent with ignore_eos so the output has this length, >= 1
};

struct WorkloadOptions {
  std::string dataset = "chat";  // chat | code | summarization, or a name of sim::LengthSpecNames()
  std::string trace;             // non-empty: read this trace instead (sim::LoadTrace formats)
  double cv = 1.0;               // inter-arrival coefficient of variation: 1 Poisson, 0 fixed gaps
  int64_t num_prompts = 0;       // > 0: this many requests (a trace: its first this many)
  double duration_s = 0.0;       // > 0 instead of num_prompts: every request arriving before this
  uint64_t seed = 0;
};

// "chat" -> ShareGPT-shaped, "code" -> HumanEval-shaped, "summarization" -> LongBench-shaped
// (SLO_SIM.md section 3); the simulator's own names are accepted too. InvalidArgument names --dataset.
absl::StatusOr<sim::LengthSpec> DatasetLengthSpec(std::string_view dataset);

// The unit-rate base workload every rate is scaled from. With duration_s, it holds enough requests
// to fill duration_s at `max_rate` req/s (the highest rate the run will offer; finite).
absl::StatusOr<sim::Workload> MakeBaseWorkload(const WorkloadOptions& options, double max_rate);

// The base workload offered at `rate` req/s (+inf: everything at t = 0), each request clipped to
// max_total_tokens (<= 0: no limit) by ClipToTotal, and, with duration_s > 0, only the requests
// arriving before duration_s.
std::vector<BenchRequest> RequestsAtRate(const sim::Workload& base, double rate, int64_t max_total_tokens,
                                         double duration_s);

// Shrinks prompt and output proportionally (each kept >= 1) until prompt + output <= max_total_tokens,
// as the simulator's trace reader and Vidur do. No-op when they fit or max_total_tokens <= 0.
void ClipToTotal(int64_t max_total_tokens, int64_t* prompt_len, int64_t* output_len);

// `length` token ids uniform in [0, vocab_size), a function of (seed, index) only, so request `index`
// sends the same prompt at every rate and in every run with the same seed.
std::vector<int32_t> PromptTokenIds(uint64_t seed, int64_t index, int64_t length, int64_t vocab_size);

}  // namespace tandem::loadgen

#endif  // TANDEM_LOADGEN_WORKLOAD_H_
