#include "loadgen/workload.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sim/rng.h"

namespace tandem::loadgen {
namespace {

// Prompt ids use their own Rng streams, far above the workload's streams 1 and 2 (sim/workload.h).
constexpr uint64_t kPromptStreamBase = uint64_t{1} << 40;

}  // namespace

absl::StatusOr<sim::LengthSpec> DatasetLengthSpec(std::string_view dataset) {
  std::string name(dataset);
  if (dataset == "chat") name = "sharegpt";
  if (dataset == "code") name = "humaneval";
  if (dataset == "summarization") name = "longbench";
  const std::vector<std::string> known = sim::LengthSpecNames();
  if (std::find(known.begin(), known.end(), name) == known.end()) {
    return absl::InvalidArgumentError(absl::StrCat("--dataset: unknown \"", std::string(dataset),
                                                   "\" (known: chat, code, summarization, ",
                                                   absl::StrJoin(known, ", "), ")"));
  }
  return sim::BuiltinLengthSpec(name);
}

absl::StatusOr<sim::Workload> MakeBaseWorkload(const WorkloadOptions& options, double max_rate) {
  if (options.num_prompts > 0 && options.duration_s > 0) {
    return absl::InvalidArgumentError("--num-prompts and --duration-s: give one, not both");
  }
  if (options.num_prompts <= 0 && !(options.duration_s > 0) && options.trace.empty()) {
    return absl::InvalidArgumentError("--num-prompts: must be >= 1 (or give --duration-s)");
  }
  if (options.duration_s > 0 && !std::isfinite(max_rate)) {
    return absl::InvalidArgumentError("--duration-s: needs a finite --rate (with rate inf give --num-prompts)");
  }
  if (!options.trace.empty()) {
    sim::TraceOptions trace_options;
    trace_options.max_requests = options.num_prompts;
    absl::StatusOr<sim::Workload> trace = sim::LoadTrace(options.trace, trace_options);
    if (!trace.ok()) return absl::Status(trace.status().code(), absl::StrCat("--trace: ", trace.status().message()));
    return trace;
  }
  absl::StatusOr<sim::LengthSpec> lengths = DatasetLengthSpec(options.dataset);
  if (!lengths.ok()) return lengths.status();
  sim::ArrivalSpec arrival;
  if (options.cv == 0.0) {
    arrival.type = "fixed";
  } else if (options.cv == 1.0) {
    arrival.type = "poisson";
  } else if (options.cv > 0) {
    arrival.type = "gamma";
    arrival.cv = options.cv;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--cv: ", options.cv, " must be >= 0"));
  }
  if (options.num_prompts > 0) {
    return sim::MakeSyntheticWorkload(*lengths, arrival, options.num_prompts, options.seed);
  }
  // Duration: unit-rate arrivals must reach max_rate * duration_s. Requests are drawn in order from
  // fixed streams, so a longer draw extends a shorter one: doubling keeps common random numbers.
  const double horizon = max_rate * options.duration_s;
  int64_t n = static_cast<int64_t>(std::ceil(horizon * 1.25)) + 64;
  for (;;) {
    absl::StatusOr<sim::Workload> w = sim::MakeSyntheticWorkload(*lengths, arrival, n, options.seed);
    if (!w.ok() || w->requests.back().arrival_s >= horizon) return w;
    if (n > (int64_t{1} << 26)) {
      return absl::InvalidArgumentError(absl::StrCat("--duration-s: ", options.duration_s, " s at ", max_rate,
                                                     " req/s needs more than ", n, " requests"));
    }
    n *= 2;
  }
}

void ClipToTotal(int64_t max_total_tokens, int64_t* prompt_len, int64_t* output_len) {
  if (max_total_tokens <= 0) return;
  const int64_t total = *prompt_len + *output_len;
  if (total <= max_total_tokens) return;
  const double factor = static_cast<double>(max_total_tokens) / static_cast<double>(total);
  *prompt_len = std::max<int64_t>(1, static_cast<int64_t>(std::floor(*prompt_len * factor)));
  *output_len = std::max<int64_t>(1, static_cast<int64_t>(std::floor(*output_len * factor)));
  // Only a limit of 1 can still be exceeded (1 + 1 > 1): the prompt must keep one token.
}

std::vector<BenchRequest> RequestsAtRate(const sim::Workload& base, double rate, int64_t max_total_tokens,
                                         double duration_s) {
  std::vector<BenchRequest> out;
  out.reserve(base.requests.size());
  const bool all_at_once = std::isinf(rate);
  const sim::Workload scaled = all_at_once ? base : sim::ScaleToRate(base, rate);
  for (const sim::SimRequest& r : scaled.requests) {
    BenchRequest request;
    request.index = r.id;
    request.arrival_s = all_at_once ? 0.0 : r.arrival_s;
    if (duration_s > 0 && request.arrival_s >= duration_s) break;  // sorted by arrival
    request.prompt_len = r.prompt_len;
    request.output_len = r.output_len;
    ClipToTotal(max_total_tokens, &request.prompt_len, &request.output_len);
    out.push_back(request);
  }
  return out;
}

std::vector<int32_t> PromptTokenIds(uint64_t seed, int64_t index, int64_t length, int64_t vocab_size) {
  sim::Rng rng(seed, kPromptStreamBase + static_cast<uint64_t>(index));
  std::vector<int32_t> ids(static_cast<size_t>(std::max<int64_t>(0, length)));
  const uint64_t vocab = static_cast<uint64_t>(std::max<int64_t>(1, vocab_size));
  for (int32_t& id : ids) id = static_cast<int32_t>(rng.NextU64() % vocab);
  return ids;
}

}  // namespace tandem::loadgen
