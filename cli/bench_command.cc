// tandem bench: open-loop load against a router (loadgen/bench.h). Parses flags, then hands over.
// Exit codes: 0 done, 2 bad flags (the flag is named), 1 the run failed (router unreachable, ...).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "loadgen/bench.h"
#include "sim/metrics.h"

namespace tandem {
namespace {

// The first Ctrl-C stops the run with a partial summary; a second one kills as usual.
std::atomic<bool> g_interrupted{false};

void OnInterrupt(int) {
  g_interrupted.store(true);
  signal(SIGINT, SIG_DFL);
}

int Fail(int code, const absl::Status& status) {
  std::fprintf(stderr, "tandem bench: %s\n", std::string(status.message()).c_str());
  return code;
}

}  // namespace

int BenchCommand(const std::vector<std::string>& args) {
  loadgen::BenchConfig c;
  double rate = std::numeric_limits<double>::infinity(), burstiness = 1.0, cv = 1.0, timeout_s = 600,
         connect_timeout_s = 10;
  int64_t num_prompts = 1000, seed = 0, num_gpus = 0;
  std::string rates, sweep, percentiles, attainment = "joint";
  bool progress = true;

  FlagParser parser("tandem bench --router HOST:PORT [flags]   (prints `vllm bench serve`'s summary)");
  parser.AddString("router", &c.router, "the router's address (required)");
  parser.AddString("model", &c.model, "model name (empty: the cluster's only model)");
  parser.AddDouble("rate", &rate, "request rate, req/s; inf sends everything at once (a trace: its "
                                  "own rate unless given)");
  parser.AddDouble("burstiness", &burstiness, "gamma shape of inter-arrival gaps (vLLM): 1 Poisson, "
                                              "< 1 burstier; cv = 1/sqrt(burstiness)");
  parser.AddDouble("cv", &cv, "coefficient of variation of inter-arrival gaps, instead of --burstiness "
                              "(0: fixed gaps)");
  parser.AddInt("num-prompts", &num_prompts, "requests per run (a trace: the first this many; default: "
                                             "200 at --rate inf, else --duration-s 60)");
  parser.AddDouble("duration-s", &c.duration_s, "instead of --num-prompts: requests arriving within this "
                                                "many seconds per run");
  parser.AddInt("seed", &seed, "workload and prompt seed");
  parser.AddString("dataset", &c.dataset, "length distribution: chat, code, summarization (or sharegpt, "
                                          "humaneval, longbench, azure_conv, azure_code)");
  parser.AddString("trace", &c.trace, "trace file instead of --dataset: JSONL {timestamp ms, input_length, "
                                      "output_length}, CSV arrival_s,prompt_len,output_len, or Azure CSV");
  parser.AddInt("max-total-tokens", &c.max_total_tokens, "shrink prompt+output to at most this many tokens "
                                                         "(always to the model's context)");
  parser.AddInt("max-concurrency", &c.max_concurrency, "most requests in flight; later arrivals wait (0: no cap)");
  parser.AddDouble("ttft-slo-ms", &c.ttft_slo_ms, "TTFT objective sent with each request; 0 is none");
  parser.AddDouble("tpot-slo-ms", &c.tpot_slo_ms, "TPOT objective sent with each request; 0 is none");
  parser.AddBool("best-effort", &c.best_effort, "ask the router to place requests even when the SLO looks "
                                                "out of reach");
  parser.AddDouble("attainment-target", &c.attainment_target, "attainment (fraction) a rate must reach to "
                                                              "count toward goodput");
  parser.AddString("attainment", &attainment, "joint: share meeting both SLOs; separate_percentile: "
                                              "P(target) TTFT and TPOT each below their SLO");
  parser.AddString("rates", &rates, "sweep: comma-separated rates, e.g. 1,2,4,8 (same requests at each)");
  parser.AddString("sweep", &sweep, "sweep: lo:hi:steps, evenly spaced rates");
  parser.AddString("metric-percentiles", &percentiles, "percentiles to print, e.g. 50,90,99 (default: the "
                                                       "median, P90 and P99, as `tandem sim` prints)");
  parser.AddInt("num-gpus", &num_gpus, "devices in the cluster, for per-GPU rate and goodput lines");
  parser.AddString("out", &c.out_path, "write the summary and per-request records here as JSON");
  parser.AddBool("progress", &progress, "progress on stderr: a bar on a terminal, else a line every 10 s "
                                       "(default: on; --progress=false for none)");
  parser.AddDouble("timeout-s", &timeout_s, "deadline of each request, in seconds");
  parser.AddDouble("connect-timeout-s", &connect_timeout_s, "how long to wait for the router to answer "
                                                            "ListModels");
  absl::Status status = parser.Parse(args);
  if (parser.help_requested()) {
    std::fputs(parser.Usage().c_str(), stdout);
    return 0;
  }
  if (!status.ok()) return Fail(2, status);
  if (!parser.positional().empty()) {
    return Fail(2, absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", parser.positional()[0], "\"")));
  }

  if (parser.WasSet("rate")) c.rate = rate;
  if (parser.WasSet("burstiness") && parser.WasSet("cv")) {
    return Fail(2, absl::InvalidArgumentError("--burstiness and --cv: give one, not both"));
  }
  if (parser.WasSet("burstiness")) {
    if (!(burstiness > 0)) {
      return Fail(2, absl::InvalidArgumentError(absl::StrCat("--burstiness: ", burstiness, " must be > 0")));
    }
    cv = std::isinf(burstiness) ? 0.0 : 1.0 / std::sqrt(burstiness);
  }
  c.cv = cv;
  // Defaults that finish in about a minute per rate: at a finite rate, the requests arriving in 60 s; all
  // at once (--rate inf, the default), 200 of them; a trace: the whole trace.
  if (!parser.WasSet("num-prompts") && !parser.WasSet("duration-s") && c.trace.empty()) {
    const bool finite_rate = !rates.empty() || !sweep.empty() || (parser.WasSet("rate") && std::isfinite(rate));
    if (finite_rate) {
      c.duration_s = 60.0;
    } else {
      num_prompts = 200;
    }
  }
  const bool prompts_default = !parser.WasSet("num-prompts") && (c.duration_s > 0 || !c.trace.empty());
  c.num_prompts = prompts_default ? 0 : num_prompts;
  if (num_prompts < 1 && parser.WasSet("num-prompts")) {
    return Fail(2, absl::InvalidArgumentError(absl::StrCat("--num-prompts: ", num_prompts, " must be >= 1")));
  }
  if (seed < 0) return Fail(2, absl::InvalidArgumentError("--seed: must be >= 0"));
  c.seed = static_cast<uint64_t>(seed);
  if (!rates.empty() && !sweep.empty()) {
    return Fail(2, absl::InvalidArgumentError("--rates and --sweep: give one, not both"));
  }
  if (!rates.empty()) {
    absl::StatusOr<std::vector<double>> list = loadgen::ParseRateList(rates, "rates");
    if (!list.ok()) return Fail(2, list.status());
    c.sweep_rates = *list;
  }
  if (!sweep.empty()) {
    absl::StatusOr<std::vector<double>> list = loadgen::ParseSweepSpec(sweep);
    if (!list.ok()) return Fail(2, list.status());
    c.sweep_rates = *list;
  }
  if (!percentiles.empty()) {
    absl::StatusOr<std::vector<double>> list = loadgen::ParsePercentileList(percentiles);
    if (!list.ok()) return Fail(2, list.status());
    c.metric_percentiles = *list;
  }
  absl::StatusOr<sim::AttainmentMode> mode = sim::ParseAttainmentMode(attainment);
  if (!mode.ok()) return Fail(2, absl::InvalidArgumentError(absl::StrCat("--attainment: unknown \"", attainment,
                                                                         "\" (known: joint, separate_percentile)")));
  c.attainment_mode = *mode;
  if (num_gpus < 0 || num_gpus > 1000000) return Fail(2, absl::InvalidArgumentError("--num-gpus: must be >= 0"));
  c.num_gpus = static_cast<int>(num_gpus);
  if (!(timeout_s > 0)) return Fail(2, absl::InvalidArgumentError("--timeout-s: must be > 0"));
  if (!(connect_timeout_s > 0)) return Fail(2, absl::InvalidArgumentError("--connect-timeout-s: must be > 0"));
  c.request_timeout = absl::Seconds(timeout_s);
  c.connect_timeout = absl::Seconds(connect_timeout_s);
  c.progress = progress;
  c.progress_tty = isatty(STDERR_FILENO) != 0;
  c.interrupt = &g_interrupted;
  signal(SIGINT, OnInterrupt);

  absl::StatusOr<loadgen::BenchPlan> plan = loadgen::PlanBench(c);
  if (!plan.ok()) return Fail(2, plan.status());
  absl::StatusOr<loadgen::BenchOutcome> outcome = loadgen::RunBench(c, *plan, std::cout, std::cerr);
  if (!outcome.ok()) return Fail(1, outcome.status());
  return 0;
}

}  // namespace tandem
