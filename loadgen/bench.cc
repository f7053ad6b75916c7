#include "loadgen/bench.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "loadgen/client.h"
#include "loadgen/workload.h"

namespace tandem::loadgen {
namespace {

absl::StatusOr<std::vector<double>> ParseNumbers(std::string_view text, std::string_view flag,
                                                 absl::string_view separator) {
  std::vector<double> values;
  const std::string flag_name(flag);
  for (absl::string_view part : absl::StrSplit(absl::string_view(text.data(), text.size()), separator)) {
    part = absl::StripAsciiWhitespace(part);
    double v = 0;
    if (part.empty() || !absl::SimpleAtod(part, &v) || std::isnan(v)) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag_name, ": \"", part, "\" is not a number"));
    }
    values.push_back(v);
  }
  return values;
}

// Distinct errors with counts, most frequent first.
std::string ErrorTally(std::span<const RequestResult> results) {
  std::map<std::string, int64_t> counts;
  for (const RequestResult& r : results) {
    if (!r.ok()) counts[absl::StrCat(r.status_name, ": ", r.error)]++;
  }
  std::vector<std::pair<int64_t, std::string>> sorted;
  for (const auto& [text, n] : counts) sorted.emplace_back(n, text);
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string out;
  for (size_t i = 0; i < sorted.size() && i < 5; ++i) {
    absl::StrAppendFormat(&out, "  %d x %s\n", sorted[i].first, sorted[i].second);
  }
  if (sorted.size() > 5) absl::StrAppendFormat(&out, "  ... and %d other errors\n", sorted.size() - 5);
  return out;
}

}  // namespace

absl::StatusOr<std::vector<double>> ParseRateList(std::string_view text, std::string_view flag) {
  absl::StatusOr<std::vector<double>> rates = ParseNumbers(text, flag, ",");
  if (!rates.ok()) return rates.status();
  for (double r : *rates) {
    if (!(r > 0) || !std::isfinite(r)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", std::string(flag), ": rate ", r, " must be > 0 and finite"));
    }
  }
  return rates;
}

absl::StatusOr<std::vector<double>> ParseSweepSpec(std::string_view text) {
  absl::StatusOr<std::vector<double>> parts = ParseNumbers(text, "sweep", ":");
  if (!parts.ok()) return parts.status();
  if (parts->size() != 3) {
    return absl::InvalidArgumentError(absl::StrCat("--sweep: \"", std::string(text), "\" is not lo:hi:steps"));
  }
  const double lo = (*parts)[0], hi = (*parts)[1], steps = (*parts)[2];
  if (!(lo > 0) || !(hi >= lo) || !std::isfinite(hi)) {
    return absl::InvalidArgumentError(absl::StrCat("--sweep: want 0 < lo <= hi, got ", lo, ":", hi));
  }
  if (!(steps >= 1) || steps != std::floor(steps) || steps > 1000) {
    return absl::InvalidArgumentError(absl::StrCat("--sweep: steps ", steps, " must be an integer in [1, 1000]"));
  }
  const int n = static_cast<int>(steps);
  if (n > 1 && lo == hi) {
    return absl::InvalidArgumentError("--sweep: lo == hi with more than one step repeats one rate");
  }
  std::vector<double> rates;
  for (int i = 0; i < n; ++i) rates.push_back(n == 1 ? lo : lo + (hi - lo) * i / (n - 1));
  return rates;
}

absl::StatusOr<std::vector<double>> ParsePercentileList(std::string_view text) {
  absl::StatusOr<std::vector<double>> values = ParseNumbers(text, "metric-percentiles", ",");
  if (!values.ok()) return values.status();
  for (double q : *values) {
    if (!(q >= 0 && q <= 100)) {
      return absl::InvalidArgumentError(absl::StrCat("--metric-percentiles: ", q, " is not in [0, 100]"));
    }
  }
  return values;
}

absl::Status ValidateBenchConfig(const BenchConfig& c) {
  if (c.router.empty()) return absl::InvalidArgumentError("--router: required (host:port of the router)");
  if (c.rate.has_value() && !(*c.rate > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("--rate: ", *c.rate, " must be > 0 (inf: all at once)"));
  }
  if (c.rate.has_value() && !c.sweep_rates.empty()) {
    return absl::InvalidArgumentError("--rate and --rates/--sweep: give one, not both");
  }
  for (double r : c.sweep_rates) {
    if (!(r > 0) || !std::isfinite(r)) {
      return absl::InvalidArgumentError(absl::StrCat("--rates: rate ", r, " must be > 0 and finite"));
    }
  }
  if (!(c.cv >= 0) || !std::isfinite(c.cv)) {
    return absl::InvalidArgumentError(absl::StrCat("--cv: ", c.cv, " must be >= 0 and finite"));
  }
  if (c.num_prompts < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--num-prompts: ", c.num_prompts, " must be >= 1"));
  }
  if (c.num_prompts == 0 && !(c.duration_s > 0) && c.trace.empty()) {
    return absl::InvalidArgumentError("--num-prompts: must be >= 1 (or give --duration-s)");
  }
  if (c.duration_s < 0 || std::isnan(c.duration_s)) {
    return absl::InvalidArgumentError(absl::StrCat("--duration-s: ", c.duration_s, " must be > 0"));
  }
  if (c.num_prompts > 0 && c.duration_s > 0) {
    return absl::InvalidArgumentError("--num-prompts and --duration-s: give one, not both");
  }
  const bool unbounded = c.sweep_rates.empty() && (!c.rate.has_value() || std::isinf(*c.rate)) && c.trace.empty();
  if (c.duration_s > 0 && unbounded) {
    return absl::InvalidArgumentError("--duration-s: needs a finite --rate (with rate inf give --num-prompts)");
  }
  if (c.max_total_tokens < 0 || c.max_total_tokens == 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-total-tokens: ", c.max_total_tokens, " must be >= 2 (0: the model's context)"));
  }
  if (c.max_concurrency < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--max-concurrency: ", c.max_concurrency, " must be >= 0"));
  }
  if (!(c.ttft_slo_ms >= 0) || !(c.tpot_slo_ms >= 0)) {
    return absl::InvalidArgumentError(!(c.ttft_slo_ms >= 0) ? "--ttft-slo-ms: must be >= 0"
                                                             : "--tpot-slo-ms: must be >= 0");
  }
  if (!(c.attainment_target > 0 && c.attainment_target <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--attainment-target: ", c.attainment_target, " must be in (0, 1]"));
  }
  for (double q : c.metric_percentiles) {
    if (!(q >= 0 && q <= 100)) {
      return absl::InvalidArgumentError(absl::StrCat("--metric-percentiles: ", q, " is not in [0, 100]"));
    }
  }
  if (c.num_gpus < 0) return absl::InvalidArgumentError("--num-gpus: must be >= 0");
  if (c.request_timeout <= absl::ZeroDuration()) return absl::InvalidArgumentError("--timeout-s: must be > 0");
  return absl::OkStatus();
}

absl::StatusOr<BenchPlan> PlanBench(const BenchConfig& c) {
  if (absl::Status status = ValidateBenchConfig(c); !status.ok()) return status;
  BenchPlan plan;
  WorkloadOptions options;
  options.dataset = c.dataset;
  options.trace = c.trace;
  options.cv = c.cv;
  options.num_prompts = c.num_prompts;
  options.duration_s = c.duration_s;
  options.seed = c.seed;
  double max_rate = 1.0;
  if (!c.sweep_rates.empty()) {
    max_rate = *std::max_element(c.sweep_rates.begin(), c.sweep_rates.end());
  } else if (c.rate.has_value()) {
    max_rate = *c.rate;
  }
  absl::StatusOr<sim::Workload> base = MakeBaseWorkload(options, c.trace.empty() ? max_rate : 1.0);
  if (!base.ok()) return base.status();
  plan.base = *std::move(base);
  if (!c.sweep_rates.empty()) {
    plan.rates = c.sweep_rates;
  } else if (c.rate.has_value()) {
    plan.rates = {*c.rate};
  } else {
    // vLLM's default is inf; a trace replays at its own rate.
    plan.rates = {c.trace.empty() ? std::numeric_limits<double>::infinity() : plan.base.source_rate};
  }
  plan.slo = MakeSloSpec(c.ttft_slo_ms, c.tpot_slo_ms, c.attainment_target, c.attainment_mode);
  return plan;
}

absl::StatusOr<BenchOutcome> RunBench(const BenchConfig& c, const BenchPlan& plan, std::ostream& out,
                                      std::ostream& err) {
  LoadClient client(c.router);
  absl::StatusOr<ModelInfo> model = client.FetchModel(c.model, c.connect_timeout);
  if (!model.ok()) return model.status();
  int64_t limit = model->max_context;
  if (c.max_total_tokens > 0) limit = limit > 0 ? std::min(limit, c.max_total_tokens) : c.max_total_tokens;

  RunInfo info;
  info.router = c.router;
  info.model = model->name;
  info.dataset = c.trace.empty() ? c.dataset : "";
  info.trace = c.trace;
  info.seed = c.seed;
  info.burstiness = c.cv > 0 ? 1.0 / (c.cv * c.cv) : std::numeric_limits<double>::infinity();
  info.max_concurrency = c.max_concurrency;
  info.max_total_tokens = limit;

  SummaryOptions summary_options;
  summary_options.metric_percentiles = c.metric_percentiles;
  summary_options.max_concurrency = c.max_concurrency;

  BenchOutcome outcome;
  nlohmann::json runs = nlohmann::json::array();
  const bool sweep = !c.sweep_rates.empty();
  for (size_t i = 0; i < plan.rates.size(); ++i) {
    const double rate = plan.rates[i];
    const std::vector<BenchRequest> requests = RequestsAtRate(plan.base, rate, limit, c.duration_s);
    if (requests.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--duration-s: no request arrives within ", c.duration_s,
                                                     " s at ", rate, " req/s"));
    }
    int64_t clipped = 0;
    for (const BenchRequest& r : requests) {
      const sim::SimRequest& original = plan.base.requests[r.index];
      clipped += r.prompt_len != original.prompt_len || r.output_len != original.output_len;
    }
    if (clipped > 0 && i == 0) {
      err << absl::StrFormat("note: %d of %d requests shrunk to fit %d prompt+output tokens%s\n", clipped,
                             requests.size(), limit,
                             limit == model->max_context ? " (the model's context)" : "");
    }
    RunOptions run;
    run.model = model->name;
    run.vocab_size = model->vocab_size;
    run.seed = c.seed;
    run.ttft_slo_ms = c.ttft_slo_ms;
    run.tpot_slo_ms = c.tpot_slo_ms;
    run.best_effort = c.best_effort;
    run.max_concurrency = c.max_concurrency;
    run.request_timeout = c.request_timeout;
    run.progress = c.progress;
    run.progress_tty = c.progress_tty;
    run.interrupt = c.interrupt;
    run.progress_label = sweep ? absl::StrFormat("rate %g (%d/%d)", rate, i + 1, plan.rates.size()) : "";
    std::vector<RequestResult> results = client.Run(requests, run);
    const bool interrupted = c.interrupt != nullptr && c.interrupt->load();
    if (interrupted) {
      // A partial summary: what finished counts; what the interrupt cancelled or never sent does not.
      const size_t sent = results.size();
      std::erase_if(results, [](const RequestResult& r) { return r.interrupted_by_user; });
      err << absl::StrFormat("interrupted: the summary covers the %d of %d requests that ended (%d cancelled, "
                             "%d never sent)\n",
                             results.size(), requests.size(), sent - results.size(), requests.size() - sent);
      if (results.empty()) break;
    }

    const sim::Summary summary = SummarizeRun(results, plan.slo, summary_options);
    if (const std::string errors = ErrorTally(results); !errors.empty()) {
      err << absl::StrFormat("%d of %d requests failed%s:\n", summary.rejected + summary.unfinished,
                             results.size(), sweep ? absl::StrFormat(" at %g req/s", rate) : "")
          << errors;
    }
    out << sim::FormatSummary(summary, plan.slo, rate, c.num_gpus) << std::flush;
    outcome.points.push_back({rate, summary});
    info.request_rate = rate;
    runs.push_back(RunToJson(info, summary, plan.slo, results));
    if (interrupted) {
      runs.back()["interrupted"] = true;
      break;
    }
  }
  if (runs.empty()) return absl::CancelledError("interrupted before any request ended");
  if (sweep && outcome.points.size() < plan.rates.size()) {
    err << absl::StrFormat("interrupted: %d of %d rates ran; the table covers those\n", outcome.points.size(),
                           plan.rates.size());
  }
  if (sweep) {
    outcome.goodput_rate = GoodputRate(outcome.points);
    out << FormatSweepTable(outcome.points, plan.slo) << std::flush;
    outcome.json = {
        {"attainment_target", c.attainment_target},
        {"goodput_rate", outcome.goodput_rate.has_value() ? nlohmann::json(*outcome.goodput_rate)
                                                          : nlohmann::json(nullptr)},
        {"rates", plan.rates},
        {"runs", std::move(runs)},
    };
  } else {
    outcome.json = std::move(runs[0]);
  }
  if (!c.out_path.empty()) {
    std::ofstream file(c.out_path);
    file << outcome.json.dump(2) << "\n";
    file.close();
    if (!file) return absl::InternalError(absl::StrCat("--out: cannot write ", c.out_path));
  }
  return outcome;
}

}  // namespace tandem::loadgen
