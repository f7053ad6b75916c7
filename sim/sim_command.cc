#include "sim/sim_command.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "router/policy/placement_policy.h"
#include "sim/plot.h"
#include "sim/profiles.h"
#include "sim/roofline.h"
#include "sim/search.h"

namespace tandem::sim {
namespace {

struct FlagInfo {
  const char* name;
  const char* default_value;
  const char* help;
};

// Every flag, its default and its meaning; --help prints this table and the parser accepts only these.
constexpr FlagInfo kFlags[] = {
    {"mode", "simulate", "simulate: one run at --rate; goodput: bisect the rate for one placement; "
                         "search: goodput of every placement under --gpus"},
    {"model", "", "profile key (the profiles' \"model\"), and the shape KV bytes per token come from "
                         "when it is a built-in one: opt-13b, opt-66b, opt-175b, llama-3-8b, llama-3-70b "
                         "(other names take KV bytes per token from their profile); empty: the profiles' only model, "
                  "else opt-13b"},
    {"profiles", "distserve-a100", "latency profiles of prefill/decode instances: a built-in set "
                                   "(distserve-a100, vllm-a100 calibrated on DistServe's measured vLLM runs, "
                                   "vllm-a100-published), roofline-<gpu> (analytic estimate for "
                                   "--model, or opt-13b when empty, at tp 1/2/4/8 where it fits; gpu: a100-80g, "
                                   "h100-sxm, h200, l40s) or a `tandem profile` JSON file"},
    {"colocated_profiles", "vllm-a100", "latency profiles of colocated (baseline) instances (same forms as "
                                        "--profiles)"},
    {"prefill_correction", "1", "multiply every prefill step time of the profiles by this (observed / predicted "
                                "step time of a running worker; 1: the profile as measured)"},
    {"decode_correction", "1", "the same for decode steps"},
    {"kv_bytes_per_token", "0", "override KV bytes per token (0: from --model's shape)"},
    {"placement_policy", "least_loaded", "router placement policy: round_robin, least_loaded, goodput (each "
                                         "instance predicted with its own profile; requests carry the SLOs)"},
    {"best_effort", "false", "goodput policy: place requests even when no pair is predicted to meet the SLOs "
                             "(otherwise they are rejected and count as misses)"},
    {"num_prefill", "1", "prefill instances (simulate, goodput)"},
    {"prefill_tp", "1", "tensor-parallel degree of each prefill instance"},
    {"num_decode", "1", "decode instances"},
    {"decode_tp", "1", "tensor-parallel degree of each decode instance"},
    {"decode_pp", "1", "pipeline-parallel stages of each decode instance (each stage runs 1/pp of a step; KV "
                       "capacity of tp x pp GPUs)"},
    {"decode_micro_batches", "0", "micro-batches taking turns through the decode pipeline stages, 1..--decode-pp "
                                  "(0: --decode-pp, every stage busy, as DistServe's decode engine runs them; 1: "
                                  "pipeline parallelism's KV capacity at the speed of an unsplit step)"},
    {"num_colocated", "0", "> 0: simulate this many colocated instances instead (vLLM-v0 style, or tandem's "
                           "chunked colocated workers with --colocated-step-token-budget)"},
    {"colocated_step_token_budget", "0", "> 0: colocated instances run tandem's chunked-prefill step policy with "
                                         "this budget (tandem colocated --step-token-budget); 0: vLLM v0"},
    {"colocated_tp", "1", "tensor-parallel degree of each colocated instance"},
    {"workload", "sharegpt", "length distribution: sharegpt, humaneval, longbench, azure_conv, azure_code"},
    {"classes", "", "a mixed workload instead of --workload: comma-separated NAME:LENGTHS:WEIGHT:TTFT_MS:TPOT_MS, e.g. "
                    "chat:sharegpt:0.8:200:50,summarize:longbench:0.2:2000:100; every request is placed and "
                    "judged against its own class's SLO"},
    {"trace", "", "trace file instead of --workload (JSONL timestamp/input_length/output_length, CSV "
                  "arrival_s/prompt_len/output_len, or Azure CSV)"},
    {"trace_max_total_tokens", "0", "shrink trace requests to at most this many prompt+output tokens"},
    {"num_requests", "2000", "requests per seed (synthetic); with --trace: the trace's first N (unset or 0: all of it)"},
    {"seed", "0", "first seed; seeds are seed, seed+1, ..."},
    {"seeds", "3", "workload seeds per rate (common random numbers; records pooled)"},
    {"arrival", "poisson", "arrival process: poisson, gamma, fixed"},
    {"cv", "1", "coefficient of variation of gamma inter-arrival gaps (burstiness)"},
    {"rate", "0", "request rate of the whole cluster, req/s (simulate; 0 with --trace: the trace's own)"},
    {"rates", "", "simulate: comma-separated rates to sweep (same requests at each); prints `tandem bench "
                  "--rates`'s table"},
    {"ttft_slo_ms", "200", "TTFT SLO in ms"},
    {"tpot_slo_ms", "100", "TPOT SLO in ms"},
    {"target", "0.9", "attainment target (fraction) for goodput"},
    {"tpot_definition", "client", "client: (last - first) / (n - 1); distserve_sim: (last - first) / n"},
    {"attainment", "joint", "joint: share meeting both SLOs >= target; separate_percentile: P(target) "
                            "TTFT and TPOT each below their SLO (DistServe's search)"},
    {"prefill_max_batch_tokens", "0", "prompt tokens per prefill batch (0: the profile's KV capacity)"},
    {"prefill_max_batch_size", "0", "requests per prefill batch (0: no limit)"},
    {"decode_max_batch_size", "0", "requests per decode batch (0: no limit)"},
    {"prefill_backpressure", "true", "hold prefilled KV on the prefill instance (up to its capacity) until "
                                      "decode pulls it; stop admitting when full"},
    {"decode_kv_limit", "true", "admit to decode only when its KV fits the instance's capacity"},
    {"kv_allocation", "auto", "reserve_full: decode and colocated admission reserve prompt + output KV, as "
                              "tandem's workers do; on_demand: the prompt's, growing block by block, and when "
                              "full the newest sequences are swapped out (DistServe's decode engine) or "
                              "recomputed (vLLM); auto: on_demand for distserve and vllm profiles, reserve_full "
                              "otherwise"},
    {"decode_waiting_block_fraction", "auto", "on-demand decode instances pull a prompt's KV only while the "
                                              "pulled prompts not yet in a batch hold less than this fraction "
                                              "of the blocks, and join a batch only when their blocks fit twice, "
                                              "as DistServe's decode scheduler does; 0: pull whatever fits and "
                                              "join at once; auto: 0.05 for distserve profiles, 0 otherwise"},
    {"distserve_step_loop", "false", "decode instances running DistServe's scheduler replay its decode step "
                                     "loop step by step: a request pulled after a micro-batch is awaited "
                                     "joins that micro-batch, so a pipeline running one micro-batch keeps "
                                     "running one (bench/sim/distserve.md); false: each micro-batch launches "
                                     "as soon as the pipeline takes it"},
    {"colocated_max_paddings", "auto", "unchunked colocated (vLLM v0) instances: pad each prefill step to its "
                                       "longest prompt with at most N padding tokens, as vLLM 0.2.x does; -1: "
                                       "pack prompts unpadded; auto: 256 (vLLM 0.2.x's default) for vllm "
                                       "profiles, -1 otherwise"},
    {"kv_capacity_tokens", "0", "> 0: KV tokens each instance holds, instead of its profile's (a tandem worker: "
                                "--kv-cache-mb * 2^20 / KV bytes per token)"},
    {"horizon_s", "0", "> 0: stop simulating at this time; unfinished requests count as misses"},
    {"gpus", "4", "GPU budget (search)"},
    {"tensor_parallel", "1,2,4", "tensor-parallel degrees to search"},
    {"decode_pipeline_parallel", "1", "decode pipeline-parallel stages to search (e.g. 1,2; micro-batches = stages)"},
    {"one_prefill_one_decode", "false", "search only 1 prefill + 1 decode instance (DistServe's search)"},
    {"max_instances", "8", "most instances per phase (search)"},
    {"include_colocated", "false", "also search colocated placements (baseline)"},
    {"max_per_gpu_rate", "5", "upper end of the goodput bisection, req/s/GPU"},
    {"tolerance", "0.02", "bisection stops when the per-GPU rate interval is narrower than this"},
    {"threads", "0", "search threads (0: hardware concurrency)"},
    {"progress", "true", "progress bar on stderr during search"},
    {"prune", "true", "search: bisect placements in falling order of a rate bound (prefill, decode and KV-link "
                      "throughput from the cost model; 0 when too few requests meet the SLOs even alone), and "
                      "when a placement's bound per GPU x (1 + --prune-slack) is below the best goodput found, "
                      "run one simulation there instead and prune it if that misses the target; bisections also "
                      "start below the bound. The bound holds for sustained load only (short runs with loose "
                      "SLOs beat it), hence the check. Results do not depend on --threads"},
    {"prune_slack", "0.25", "search: margin on the rate bound for --prune; it trades checks that fail against "
                            "bisections cut short, not results"},
    {"plot_svg", "", "search: write an SVG of joint attainment against per-GPU rate for the best --plot-top "
                     "disaggregated placements and the best colocated one (with --include-colocated); the "
                     "curves' points go to the same path with .json for .svg"},
    {"plot_top", "3", "search: disaggregated placements in --plot-svg"},
    {"output_records", "", "write per-request JSONL here (simulate)"},
    {"output_summary", "", "write the summary (simulate) or the search table as JSON here"},
    {"help", "false", "print this help"},
};

// --name as users spell it (dashes).
std::string Dashed(std::string name) {
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

class Flags {
 public:
  absl::Status Parse(const std::vector<std::string>& args) {
    for (const FlagInfo& f : kFlags) values_[f.name] = f.default_value;
    for (size_t i = 0; i < args.size(); ++i) {
      std::string arg = args[i];
      if (arg.rfind("--", 0) != 0) return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
      arg = arg.substr(2);
      std::string name = arg, value;
      bool has_value = false;
      if (size_t eq = arg.find('='); eq != std::string::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        has_value = true;
      }
      // One flag style for every subcommand: --kebab-case; the old snake_case spelling still works.
      const std::string given = name;
      std::replace(name.begin(), name.end(), '-', '_');
      auto it = values_.find(name);
      if (it == values_.end()) {
        return absl::InvalidArgumentError(absl::StrCat("unknown flag --", given, " (see --help)"));
      }
      const bool is_bool = it->second == "true" || it->second == "false";
      if (!has_value) {
        if (is_bool) {
          value = "true";
        } else if (i + 1 < args.size()) {
          value = args[++i];
        } else {
          return absl::InvalidArgumentError(absl::StrCat("--", Dashed(name), ": missing value"));
        }
      }
      it->second = value;
      set_.insert(name);
    }
    return absl::OkStatus();
  }
  bool WasSet(const std::string& name) const { return set_.count(name) > 0; }
  std::string Str(const std::string& name) const { return values_.at(name); }
  absl::StatusOr<double> Double(const std::string& name) const {
    double v;
    if (!absl::SimpleAtod(values_.at(name), &v)) {
      return absl::InvalidArgumentError(absl::StrCat("--", Dashed(name), ": \"", values_.at(name), "\" is not a number"));
    }
    return v;
  }
  absl::StatusOr<int64_t> Int(const std::string& name) const {
    int64_t v;
    if (!absl::SimpleAtoi(values_.at(name), &v)) {
      return absl::InvalidArgumentError(absl::StrCat("--", Dashed(name), ": \"", values_.at(name), "\" is not an integer"));
    }
    return v;
  }
  absl::StatusOr<bool> Bool(const std::string& name) const {
    const std::string& v = values_.at(name);
    if (v == "true" || v == "1") return true;
    if (v == "false" || v == "0") return false;
    return absl::InvalidArgumentError(absl::StrCat("--", Dashed(name), ": \"", v, "\" is not true/false"));
  }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> set_;  // given on the command line
};

// `model` is --model, which only roofline sets need (they are computed for one model; empty: opt-13b).
absl::StatusOr<std::vector<policy::LatencyModel>> LoadProfiles(const std::string& flag, const std::string& value,
                                                               const std::string& model) {
  if (IsBuiltinProfileSet(value)) return BuiltinProfiles(value);
  if (IsRooflineProfileSet(value)) {
    absl::StatusOr<std::vector<policy::LatencyModel>> models =
        RooflineProfileSet(value, model.empty() ? "opt-13b" : model);
    if (!models.ok()) return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", models.status().message()));
    return models;
  }
  absl::StatusOr<std::vector<policy::LatencyModel>> models = policy::LatencyModel::ListFromFile(value);
  if (!models.ok()) {
    return absl::Status(models.status().code(), absl::StrCat("--", flag, ": ", models.status().message()));
  }
  return models;
}

// The profile key: --model, or the profiles' only model when --model is empty (else opt-13b).
absl::StatusOr<std::string> ChooseModel(const std::string& flag, const std::vector<policy::LatencyModel>& profiles) {
  if (!flag.empty()) return flag;
  std::string only;
  for (const policy::LatencyModel& m : profiles) {
    if (only.empty()) {
      only = m.params().model;
    } else if (m.params().model != only) {
      return std::string("opt-13b");
    }
  }
  return only.empty() ? std::string("opt-13b") : only;
}

// KV bytes per token of `model`: its built-in shape, else the first of its profiles that gives them.
absl::StatusOr<double> KvBytesPerToken(const std::string& model, const std::vector<policy::LatencyModel>& profiles) {
  if (absl::StatusOr<ModelShape> shape = BuiltinModelShape(model); shape.ok()) return shape->KvBytesPerToken();
  for (const policy::LatencyModel& m : profiles) {
    if (m.params().model == model && m.params().kv_bytes_per_token > 0) return m.params().kv_bytes_per_token;
  }
  return absl::InvalidArgumentError(absl::StrCat("--model: \"", model,
                                                 "\" is not a built-in shape and no profile of it gives "
                                                 "kv_bytes_per_token; pass --kv-bytes-per-token"));
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot open for writing"));
  out << text;
  return out ? absl::OkStatus() : absl::DataLossError(absl::StrCat(path, ": write failed"));
}

std::string ProgressBar(int done, int total) {
  const int width = 30;
  const int filled = total > 0 ? done * width / total : width;
  return absl::StrFormat("\r[%s%s] %d/%d placements", std::string(filled, '#'), std::string(width - filled, '.'),
                         done, total);
}

absl::Status Run(const Flags& flags, std::ostream& out, std::ostream& err) {
  SimSetup setup;
  TANDEM_ASSIGN_OR_RETURN(setup.profiles, LoadProfiles("profiles", flags.Str("profiles"), flags.Str("model")));
  TANDEM_ASSIGN_OR_RETURN(setup.colocated_profiles,
                          LoadProfiles("colocated_profiles", flags.Str("colocated_profiles"), flags.Str("model")));
  TANDEM_ASSIGN_OR_RETURN(setup.model, ChooseModel(flags.Str("model"), setup.profiles));
  TANDEM_ASSIGN_OR_RETURN(const double prefill_correction, flags.Double("prefill_correction"));
  TANDEM_ASSIGN_OR_RETURN(const double decode_correction, flags.Double("decode_correction"));
  if (prefill_correction != 1 || decode_correction != 1) {
    for (std::vector<policy::LatencyModel>* set : {&setup.profiles, &setup.colocated_profiles}) {
      for (policy::LatencyModel& m : *set) {
        absl::StatusOr<policy::LatencyModel> corrected = WithCorrection(m, prefill_correction, decode_correction);
        if (!corrected.ok()) {
          return absl::InvalidArgumentError(absl::StrCat("--prefill-correction/--decode-correction: ",
                                                         corrected.status().message()));
        }
        m = *std::move(corrected);
      }
    }
  }
  TANDEM_ASSIGN_OR_RETURN(setup.kv_bytes_per_token, flags.Double("kv_bytes_per_token"));
  if (setup.kv_bytes_per_token <= 0) {
    TANDEM_ASSIGN_OR_RETURN(setup.kv_bytes_per_token, KvBytesPerToken(setup.model, setup.profiles));
  }
  setup.policy_name = flags.Str("placement_policy");
  if (const std::vector<std::string> names = policy::PlacementPolicyNames();
      std::find(names.begin(), names.end(), setup.policy_name) == names.end()) {
    return absl::InvalidArgumentError(absl::StrCat("--placement-policy: unknown policy \"", setup.policy_name,
                                                   "\" (known: ", absl::StrJoin(names, ", "), ")"));
  }
  TANDEM_ASSIGN_OR_RETURN(setup.best_effort, flags.Bool("best_effort"));
  TANDEM_ASSIGN_OR_RETURN(setup.kv_capacity_tokens, flags.Int("kv_capacity_tokens"));
  TANDEM_ASSIGN_OR_RETURN(setup.colocated_step_token_budget, flags.Int("colocated_step_token_budget"));
  if (setup.colocated_step_token_budget < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--colocated-step-token-budget: ", setup.colocated_step_token_budget, " must be >= 0"));
  }
  if (setup.kv_capacity_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--kv-capacity-tokens: ", setup.kv_capacity_tokens, " must be >= 0"));
  }
  TANDEM_ASSIGN_OR_RETURN(setup.prefill_max_batch_tokens, flags.Int("prefill_max_batch_tokens"));
  TANDEM_ASSIGN_OR_RETURN(setup.prefill_max_batch_size, flags.Int("prefill_max_batch_size"));
  TANDEM_ASSIGN_OR_RETURN(setup.decode_max_batch_size, flags.Int("decode_max_batch_size"));
  TANDEM_ASSIGN_OR_RETURN(setup.prefill_backpressure, flags.Bool("prefill_backpressure"));
  const std::string allocation = flags.Str("kv_allocation");
  if (allocation == "auto") {
    setup.kv_allocation = SimSetup::KvAllocation::kAuto;
  } else if (allocation == "reserve_full") {
    setup.kv_allocation = SimSetup::KvAllocation::kReserveFull;
  } else if (allocation == "on_demand") {
    setup.kv_allocation = SimSetup::KvAllocation::kOnDemand;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--kv-allocation: \"", allocation,
                                                   "\" is not auto, reserve_full or on_demand"));
  }
  if (flags.Str("decode_waiting_block_fraction") != "auto") {
    TANDEM_ASSIGN_OR_RETURN(setup.decode_waiting_block_fraction, flags.Double("decode_waiting_block_fraction"));
    if (!(setup.decode_waiting_block_fraction >= 0 && setup.decode_waiting_block_fraction <= 1)) {
      return absl::InvalidArgumentError(absl::StrCat("--decode-waiting-block-fraction: ",
                                                     setup.decode_waiting_block_fraction, " must be auto or in [0, 1]"));
    }
  }
  TANDEM_ASSIGN_OR_RETURN(setup.distserve_step_loop, flags.Bool("distserve_step_loop"));
  if (const std::string paddings = flags.Str("colocated_max_paddings"); paddings != "auto") {
    TANDEM_ASSIGN_OR_RETURN(setup.colocated_max_paddings, flags.Int("colocated_max_paddings"));
    if (setup.colocated_max_paddings < -1) {
      return absl::InvalidArgumentError(absl::StrCat("--colocated-max-paddings: ", setup.colocated_max_paddings,
                                                     " must be auto, -1 (no padding) or >= 0"));
    }
  }
  TANDEM_ASSIGN_OR_RETURN(setup.decode_kv_limit, flags.Bool("decode_kv_limit"));
  TANDEM_ASSIGN_OR_RETURN(setup.sim_options.horizon_s, flags.Double("horizon_s"));
  TANDEM_ASSIGN_OR_RETURN(setup.slo.ttft_ms, flags.Double("ttft_slo_ms"));
  TANDEM_ASSIGN_OR_RETURN(setup.slo.tpot_ms, flags.Double("tpot_slo_ms"));
  TANDEM_ASSIGN_OR_RETURN(setup.slo.target, flags.Double("target"));
  if (!(setup.slo.target > 0 && setup.slo.target <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("--target: ", setup.slo.target, " must be in (0, 1]"));
  }
  TANDEM_ASSIGN_OR_RETURN(setup.slo.tpot_definition, ParseTpotDefinition(flags.Str("tpot_definition")));
  TANDEM_ASSIGN_OR_RETURN(setup.slo.mode, ParseAttainmentMode(flags.Str("attainment")));
  if (!(setup.slo.ttft_ms > 0) || !(setup.slo.tpot_ms > 0)) {
    return absl::InvalidArgumentError("--ttft-slo-ms and --tpot-slo-ms must be > 0");
  }
  setup.sim_options.ttft_slo_ms = setup.slo.ttft_ms;
  setup.sim_options.tpot_slo_ms = setup.slo.tpot_ms;
  setup.sim_options.best_effort = setup.best_effort;

  // Workloads: one unit-rate workload per seed.
  TANDEM_ASSIGN_OR_RETURN(int64_t num_requests, flags.Int("num_requests"));
  TANDEM_ASSIGN_OR_RETURN(int64_t first_seed, flags.Int("seed"));
  TANDEM_ASSIGN_OR_RETURN(int64_t num_seeds, flags.Int("seeds"));
  if (num_seeds < 1) return absl::InvalidArgumentError(absl::StrCat("--seeds: ", num_seeds, " must be >= 1"));
  std::vector<Workload> seeds;
  double native_rate = 0;
  if (!flags.Str("trace").empty()) {
    TraceOptions trace_options;
    TANDEM_ASSIGN_OR_RETURN(trace_options.max_total_tokens, flags.Double("trace_max_total_tokens"));
    // A trace is replayed whole unless --num-requests says otherwise (2000 is the synthetic default).
    trace_options.max_requests = flags.WasSet("num_requests") ? num_requests : 0;
    TANDEM_ASSIGN_OR_RETURN(Workload trace, LoadTrace(flags.Str("trace"), trace_options));
    native_rate = trace.source_rate;
    seeds.push_back(std::move(trace));
  } else {
    // Synthetic: one length distribution (--workload), or a mix of classes each with its SLO (--classes).
    ArrivalSpec arrival{.type = flags.Str("arrival")};
    TANDEM_ASSIGN_OR_RETURN(arrival.cv, flags.Double("cv"));
    std::function<absl::StatusOr<Workload>(uint64_t)> make;
    if (!flags.Str("classes").empty()) {
      if (flags.WasSet("workload")) return absl::InvalidArgumentError("--classes and --workload are exclusive");
      std::vector<WorkloadClass> classes;
      for (absl::string_view item : absl::StrSplit(flags.Str("classes"), ',')) {
        TANDEM_ASSIGN_OR_RETURN(WorkloadClass c, ParseWorkloadClass(std::string_view(item.data(), item.size())));
        classes.push_back(std::move(c));
      }
      make = [classes, arrival, num_requests](uint64_t seed) {
        return MakeMixedWorkload(classes, arrival, num_requests, seed);
      };
    } else {
      TANDEM_ASSIGN_OR_RETURN(LengthSpec lengths, BuiltinLengthSpec(flags.Str("workload")));
      make = [lengths, arrival, num_requests](uint64_t seed) {
        return MakeSyntheticWorkload(lengths, arrival, num_requests, seed);
      };
    }
    for (int64_t i = 0; i < num_seeds; ++i) {
      TANDEM_ASSIGN_OR_RETURN(Workload w, make(static_cast<uint64_t>(first_seed + i)));
      seeds.push_back(std::move(w));
    }
  }

  Placement placement;
  TANDEM_ASSIGN_OR_RETURN(int64_t v, flags.Int("num_prefill"));
  placement.num_prefill = static_cast<int>(v);
  TANDEM_ASSIGN_OR_RETURN(v, flags.Int("prefill_tp"));
  placement.prefill_tp = static_cast<int>(v);
  TANDEM_ASSIGN_OR_RETURN(v, flags.Int("num_decode"));
  placement.num_decode = static_cast<int>(v);
  TANDEM_ASSIGN_OR_RETURN(v, flags.Int("decode_tp"));
  placement.decode_tp = static_cast<int>(v);
  TANDEM_ASSIGN_OR_RETURN(v, flags.Int("decode_pp"));
  placement.decode_pp = static_cast<int>(v);
  TANDEM_ASSIGN_OR_RETURN(v, flags.Int("decode_micro_batches"));
  placement.decode_micro_batches = static_cast<int>(v);
  TANDEM_ASSIGN_OR_RETURN(v, flags.Int("num_colocated"));
  placement.num_colocated = static_cast<int>(v);
  TANDEM_ASSIGN_OR_RETURN(v, flags.Int("colocated_tp"));
  placement.colocated_tp = static_cast<int>(v);
  if (placement.num_prefill < 1 || placement.num_decode < 1 || placement.prefill_tp < 1 || placement.decode_tp < 1 ||
      placement.num_colocated < 0 || placement.colocated_tp < 1 || placement.decode_pp < 1) {
    return absl::InvalidArgumentError("--num-prefill, --num-decode, --decode-pp and the *_tp flags must be >= 1");
  }

  GoodputOptions goodput;
  TANDEM_ASSIGN_OR_RETURN(goodput.max_per_gpu_rate, flags.Double("max_per_gpu_rate"));
  TANDEM_ASSIGN_OR_RETURN(goodput.tolerance, flags.Double("tolerance"));

  const std::string mode = flags.Str("mode");
  // Every table says what it assumed.
  out << absl::StrFormat(
      "Assumed: model %s, profiles %s, SLOs TTFT <= %g ms and TPOT <= %g ms for >= %g%% of requests, policy %s\n",
      setup.model, flags.Str("profiles"), setup.slo.ttft_ms, setup.slo.tpot_ms, 100 * setup.slo.target,
      flags.Str("placement_policy"));
  if (mode == "simulate" && !flags.Str("rates").empty()) {
    std::vector<double> rates;
    for (absl::string_view text : absl::StrSplit(flags.Str("rates"), ',', absl::SkipEmpty())) {
      double rate;
      if (!absl::SimpleAtod(text, &rate) || !(rate > 0) || std::isinf(rate)) {
        return absl::InvalidArgumentError(absl::StrCat("--rates: \"", flags.Str("rates"),
                                                       "\" is not a list of positive finite rates"));
      }
      rates.push_back(rate);
    }
    std::vector<SweepPoint> points;
    std::string json = "[\n";
    for (double rate : rates) {
      TANDEM_ASSIGN_OR_RETURN(Summary summary, EvaluateRate(setup, placement, seeds, rate));
      absl::StrAppend(&json, points.empty() ? "" : ",\n", SummaryToJson(summary, setup.slo, rate));
      points.push_back({.rate = rate, .summary = std::move(summary)});
    }
    json += "\n]\n";
    out << "Placement: " << placement.Label() << "\n" << FormatSweepTable(points, setup.slo);
    if (!flags.Str("output_summary").empty()) TANDEM_RETURN_IF_ERROR(WriteFile(flags.Str("output_summary"), json));
    return absl::OkStatus();
  }

  if (mode == "simulate") {
    TANDEM_ASSIGN_OR_RETURN(double rate, flags.Double("rate"));
    if (rate <= 0 && native_rate > 0) rate = native_rate;
    if (!(rate > 0)) return absl::InvalidArgumentError("--rate: must be > 0 for --mode=simulate");
    TANDEM_ASSIGN_OR_RETURN(ClusterConfig cluster, BuildCluster(setup, placement));
    std::vector<RequestRecord> pooled;
    for (const Workload& seed : seeds) {
      TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<policy::PlacementPolicy> policy, MakeSimPolicy(setup, cluster));
      Simulator simulator(cluster, policy.get(), setup.sim_options);
      TANDEM_ASSIGN_OR_RETURN(std::vector<RequestRecord> records, simulator.Run(ScaleToRate(seed, rate)));
      // Reasons carry numbers, so most are distinct: the total and the first few.
      int64_t rejected = 0;
      for (const auto& entry : simulator.reject_reasons()) rejected += entry.second;
      if (rejected > 0) err << "the policy rejected " << rejected << " of " << records.size() << " requests, e.g.:\n";
      for (size_t i = 0; i < simulator.reject_reasons().size() && i < 3; ++i) {
        err << "  " << simulator.reject_reasons()[i].first << "\n";
      }
      pooled.insert(pooled.end(), records.begin(), records.end());
      if (seeds.size() > 1) break;  // records/console describe the first seed; goodput uses all
    }
    const Summary summary = Summarize(pooled, setup.slo, seeds[0].class_names);
    out << "Placement: " << placement.Label() << "\n";
    out << FormatSummary(summary, setup.slo, rate, cluster.NumGpus());
    if (!flags.Str("output_records").empty()) {
      TANDEM_RETURN_IF_ERROR(WriteFile(flags.Str("output_records"), RecordsToJsonl(pooled, setup.slo)));
    }
    if (!flags.Str("output_summary").empty()) {
      TANDEM_RETURN_IF_ERROR(WriteFile(flags.Str("output_summary"), SummaryToJson(summary, setup.slo, rate) + "\n"));
    }
    return absl::OkStatus();
  }

  if (mode == "goodput") {
    TANDEM_ASSIGN_OR_RETURN(GoodputResult result, FindGoodput(setup, placement, seeds, goodput));
    out << FormatSearchTable({result});
    if (!(result.per_gpu_goodput > 0)) {
      out << absl::StrFormat("No rate meets the SLOs on %s: even the lowest rate tried misses the %g%% target.\n",
                             placement.Label(), 100 * setup.slo.target);
    }
    return absl::OkStatus();
  }

  if (mode == "search") {
    PlacementSearchOptions options;
    options.goodput = goodput;
    TANDEM_ASSIGN_OR_RETURN(int64_t gpus, flags.Int("gpus"));
    options.gpu_budget = static_cast<int>(gpus);
    options.tensor_parallel.clear();
    for (absl::string_view tp : absl::StrSplit(flags.Str("tensor_parallel"), ',', absl::SkipEmpty())) {
      int value;
      if (!absl::SimpleAtoi(tp, &value) || value < 1) {
        return absl::InvalidArgumentError(absl::StrCat("--tensor-parallel: \"", flags.Str("tensor_parallel"),
                                                       "\" is not a list of positive integers"));
      }
      options.tensor_parallel.push_back(value);
    }
    options.decode_pipeline_parallel.clear();
    for (absl::string_view pp : absl::StrSplit(flags.Str("decode_pipeline_parallel"), ',', absl::SkipEmpty())) {
      int value;
      if (!absl::SimpleAtoi(pp, &value) || value < 1) {
        return absl::InvalidArgumentError(absl::StrCat("--decode-pipeline-parallel: \"",
                                                       flags.Str("decode_pipeline_parallel"),
                                                       "\" is not a list of positive integers"));
      }
      options.decode_pipeline_parallel.push_back(value);
    }
    TANDEM_ASSIGN_OR_RETURN(options.one_prefill_one_decode, flags.Bool("one_prefill_one_decode"));
    TANDEM_ASSIGN_OR_RETURN(int64_t max_instances, flags.Int("max_instances"));
    options.max_instances_per_phase = static_cast<int>(max_instances);
    TANDEM_ASSIGN_OR_RETURN(options.include_colocated, flags.Bool("include_colocated"));
    TANDEM_ASSIGN_OR_RETURN(int64_t threads, flags.Int("threads"));
    options.num_threads = threads > 0 ? static_cast<int>(threads)
                                      : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    TANDEM_ASSIGN_OR_RETURN(bool progress, flags.Bool("progress"));
    // A progress bar is for a person at a terminal; in a log it is noise.
    if (progress && isatty(STDERR_FILENO)) {
      options.progress = [&err](int done, int total) {
        err << ProgressBar(done, total) << (done == total ? "\n" : "") << std::flush;
      };
    }
    TANDEM_ASSIGN_OR_RETURN(options.prune, flags.Bool("prune"));
    TANDEM_ASSIGN_OR_RETURN(options.prune_slack, flags.Double("prune_slack"));
    if (!(options.prune_slack >= 0)) {
      return absl::InvalidArgumentError(absl::StrCat("--prune-slack: ", options.prune_slack, " must be >= 0"));
    }
    const std::string plot_svg = flags.Str("plot_svg");
    TANDEM_ASSIGN_OR_RETURN(int64_t plot_top, flags.Int("plot_top"));
    if (plot_top < 0) return absl::InvalidArgumentError(absl::StrCat("--plot-top: ", plot_top, " must be >= 0"));
    if (!plot_svg.empty()) {
      // Fail before the search, not after it.
      if (PlotDataPath(plot_svg) == flags.Str("output_summary")) {
        return absl::InvalidArgumentError(absl::StrCat("--plot-svg: its data file ", PlotDataPath(plot_svg),
                                                       " is --output-summary; choose another path"));
      }
      for (const std::string& path : {plot_svg, PlotDataPath(plot_svg)}) {
        if (absl::Status s = WriteFile(path, ""); !s.ok()) {
          return absl::Status(s.code(), absl::StrCat("--plot-svg: ", s.message()));
        }
      }
    }
    SearchStats stats;
    TANDEM_ASSIGN_OR_RETURN(std::vector<GoodputResult> results, SearchPlacements(setup, seeds, options, &stats));
    out << FormatSearchTable(results);
    const GoodputResult& best = results.front();
    if (best.per_gpu_goodput > 0) {
      out << absl::StrFormat("Best per GPU rate: %.3f req/s/GPU\nBest config: %s (%d GPUs, %.3f req/s total)\n",
                             best.per_gpu_goodput, best.placement.Label(), best.placement.NumGpus(), best.goodput);
    } else {
      out << absl::StrFormat(
          "No placement meets the SLOs: within %d GPUs, every placement misses the %g%% target even at the lowest "
          "rate tried. Loosen the SLOs (--ttft-slo-ms, --tpot-slo-ms, --target), allow more GPUs (--gpus) or "
          "faster instances (--profiles).\n",
          options.gpu_budget, 100 * setup.slo.target);
    }
    if (options.prune) {
      out << absl::StrFormat("Pruned %d of %d placements (rate bound x %.2f below the best goodput); %d simulations\n",
                             stats.num_pruned, stats.num_placements, 1 + options.prune_slack,
                             stats.num_simulations - stats.num_discarded_simulations);
      if (stats.num_discarded_simulations > 0) {
        err << "note: " << stats.num_discarded_simulations
            << " more simulations ran on spare threads for placements later pruned; their results were dropped\n";
      }
    } else {
      out << absl::StrFormat("%d simulations\n", stats.num_simulations);
    }
    if (!flags.Str("output_summary").empty()) {
      std::string json = "[\n";
      for (size_t i = 0; i < results.size(); ++i) {
        const GoodputResult& r = results[i];
        const double bound_per_gpu = r.bound.rate / r.placement.NumGpus();
        const std::string bound_json = std::isfinite(bound_per_gpu) ? absl::StrFormat("%.6f", bound_per_gpu) : "null";
        if (r.pruned) {
          json += absl::StrFormat(
              "  {\"placement\": \"%s\", \"gpus\": %d, \"pruned\": true, \"per_gpu_bound\": %s, "
              "\"bound_limit\": \"%s\", \"simulations\": %d}%s\n",
              r.placement.Label(), r.placement.NumGpus(), bound_json, r.bound.limit, r.num_simulations,
              i + 1 < results.size() ? "," : "");
          continue;
        }
        json += absl::StrFormat(
            "  {\"placement\": \"%s\", \"gpus\": %d, \"per_gpu_goodput\": %.6f, \"goodput\": %.6f, "
            "\"attainment\": %.6f, \"p90_ttft_ms\": %.3f, \"p90_tpot_ms\": %.3f, \"limiting\": \"%s\", "
            "\"pruned\": false, \"per_gpu_bound\": %s, \"bound_limit\": \"%s\", \"simulations\": %d}%s\n",
            r.placement.Label(), r.placement.NumGpus(), r.per_gpu_goodput, r.goodput, r.at_goodput.attainment,
            r.at_goodput.ttft.p90, r.at_goodput.tpot.p90, r.limiting, bound_json, r.bound.limit, r.num_simulations,
            i + 1 < results.size() ? "," : "");
      }
      json += "]\n";
      TANDEM_RETURN_IF_ERROR(WriteFile(flags.Str("output_summary"), json));
    }
    if (!plot_svg.empty()) {
      CurveOptions curve_options{.top = static_cast<int>(plot_top),
                                 .include_colocated = options.include_colocated,
                                 .fallback_max_rate = goodput.max_per_gpu_rate,
                                 .num_threads = options.num_threads};
      const std::vector<GoodputResult> chosen = ChooseCurvePlacements(results, curve_options);
      AttainmentPlot plot;
      plot.title = absl::StrFormat("%s: SLO attainment vs rate (TTFT %g ms, TPOT %g ms)", setup.model,
                                   setup.slo.ttft_ms, setup.slo.tpot_ms);
      plot.target = setup.slo.target;
      TANDEM_ASSIGN_OR_RETURN(plot.curves, AttainmentCurves(setup, seeds, chosen, curve_options));
      if (absl::Status s = WriteAttainmentPlot(plot_svg, plot); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("--plot-svg: ", s.message()));
      }
      out << "Plot: " << plot_svg << " (data: " << PlotDataPath(plot_svg) << ")\n";
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("--mode: unknown mode \"", mode, "\" (known: simulate, goodput, search)"));
}

}  // namespace

std::string SimCommandHelp() {
  std::string text =
      "usage: tandem sim [--flag=value ...]\n\n"
      "Simulates a disaggregated prefill/decode cluster (or the colocated baseline) with the router's own\n"
      "placement policies, and finds the goodput (highest rate meeting the SLO attainment target) of one\n"
      "placement or of every placement under a GPU budget.\n\nFlags:\n";
  for (const FlagInfo& f : kFlags) {
    text += absl::StrFormat("  --%-26s %s (default: %s)\n", Dashed(f.name), f.help,
                            std::string(f.default_value).empty() ? "\"\"" : f.default_value);
  }
  return text;
}

int RunSimCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Flags flags;
  if (absl::Status s = flags.Parse(args); !s.ok()) {
    err << "tandem sim: " << s.message() << "\n";
    return 2;
  }
  if (*flags.Bool("help")) {
    out << SimCommandHelp();
    return 0;
  }
  if (absl::Status s = Run(flags, out, err); !s.ok()) {
    err << "tandem sim: " << s.message() << "\n";
    return s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}

int RunSimCommand(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  return RunSimCommand(args, std::cout, std::cerr);
}

}  // namespace tandem::sim
