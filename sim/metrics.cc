#include "sim/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace tandem::sim {
namespace {

LatencyStats Stats(std::vector<double> values, std::span<const double> percentiles = {}) {
  LatencyStats stats;
  stats.count = static_cast<int64_t>(values.size());
  if (values.empty()) {
    for (double q : percentiles) stats.percentiles.emplace_back(q, 0.0);
    return stats;
  }
  double sum = 0;
  for (double v : values) sum += v;
  stats.mean = sum / values.size();
  double squares = 0;
  for (double v : values) squares += (v - stats.mean) * (v - stats.mean);
  stats.std = std::sqrt(squares / values.size());
  std::sort(values.begin(), values.end());
  auto sorted_percentile = [&](double q) {
    const double pos = q / 100.0 * (values.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, values.size() - 1);
    return values[lo] + (pos - lo) * (values[hi] - values[lo]);
  };
  stats.median = sorted_percentile(50);
  stats.p90 = sorted_percentile(90);
  stats.p99 = sorted_percentile(99);
  for (double q : percentiles) stats.percentiles.emplace_back(q, sorted_percentile(q));
  return stats;
}

// "P99", "P99.9": the label vLLM prints (integer when whole).
std::string PercentileLabel(double q) { return absl::StrFormat("P%g", q); }

// ms between two record times, or NaN when either is missing.
double Gap(double from_s, double to_s) {
  if (from_s < 0 || to_s < 0) return std::nan("");
  return (to_s - from_s) * 1e3;
}

// Five stages; NaN for a stage that did not happen. Colocated requests have no transfer.
void Stages(const RequestRecord& r, double out[5]) {
  out[0] = Gap(r.arrival_s, r.prefill_start_s);
  out[1] = Gap(r.prefill_start_s, r.first_token_s);
  const bool transferred = r.kv_start_s >= 0;
  out[2] = transferred ? Gap(r.kv_start_s, r.kv_end_s) : 0.0;
  if (r.output_len <= 1) {
    out[3] = out[4] = 0.0;
  } else {
    const double queue_before = transferred ? Gap(r.first_token_s, r.kv_start_s) : 0.0;
    const double queue_after = Gap(transferred ? r.kv_end_s : r.first_token_s, r.decode_start_s);
    out[3] = queue_before + queue_after;
    out[4] = Gap(r.decode_start_s, r.finish_s);
  }
}

std::string Line(std::string_view label, double value) {
  return absl::StrFormat("%-40s %-10.2f\n", std::string(label), value);
}
std::string Line(std::string_view label, int64_t value) {
  return absl::StrFormat("%-40s %-10d\n", std::string(label), value);
}
std::string Header(std::string_view title, char fill) {
  std::string text = std::string(title);
  const int width = 50;
  const int pad = std::max<int>(0, width - static_cast<int>(text.size()));
  return std::string(pad / 2, fill) + text + std::string(pad - pad / 2, fill) + "\n";
}

}  // namespace

absl::StatusOr<TpotDefinition> ParseTpotDefinition(std::string_view name) {
  if (name == "client") return TpotDefinition::kClient;
  if (name == "distserve_sim") return TpotDefinition::kDistServeSim;
  return absl::InvalidArgumentError(
      absl::StrCat("--tpot-definition: unknown \"", std::string(name), "\" (known: client, distserve_sim)"));
}

absl::StatusOr<AttainmentMode> ParseAttainmentMode(std::string_view name) {
  if (name == "joint") return AttainmentMode::kJoint;
  if (name == "separate_percentile") return AttainmentMode::kSeparatePercentile;
  return absl::InvalidArgumentError(absl::StrCat("--attainment: unknown \"", std::string(name),
                                                 "\" (known: joint, separate_percentile)"));
}

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const double pos = q / 100.0 * (values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (pos - lo) * (values[hi] - values[lo]);
}

LatencyStats ComputeLatencyStats(std::vector<double> values, std::span<const double> percentiles) {
  return Stats(std::move(values), percentiles);
}

double TtftMs(const RequestRecord& r) {
  if (r.first_token_s < 0) return std::numeric_limits<double>::infinity();
  return (r.first_token_s - r.arrival_s) * 1e3;
}

double TpotMs(const RequestRecord& r, TpotDefinition definition) {
  if (!r.finished) return std::numeric_limits<double>::infinity();
  const double decode_ms = (r.finish_s - r.first_token_s) * 1e3;
  if (definition == TpotDefinition::kDistServeSim) return decode_ms / static_cast<double>(r.output_len);
  if (r.output_len <= 1) return 0.0;
  return decode_ms / static_cast<double>(r.output_len - 1);
}

bool MetTtft(const RequestRecord& r, const SloSpec& slo) {
  return !r.rejected && TtftMs(r) <= (r.ttft_slo_ms > 0 ? r.ttft_slo_ms : slo.ttft_ms);
}

bool MetTpot(const RequestRecord& r, const SloSpec& slo) {
  return !r.rejected && r.finished &&
         TpotMs(r, slo.tpot_definition) <= (r.tpot_slo_ms > 0 ? r.tpot_slo_ms : slo.tpot_ms);
}

Summary Summarize(std::span<const RequestRecord> records, const SloSpec& slo,
                  std::span<const std::string> class_names) {
  Summary s;
  s.num_requests = static_cast<int64_t>(records.size());
  if (records.empty()) return s;
  std::vector<double> ttft, tpot, e2e, ttft_all, tpot_all;
  int64_t good = 0, met_ttft = 0, met_tpot = 0;
  double first_arrival = records[0].arrival_s, last_finish = 0;
  double stage_sum[5] = {0, 0, 0, 0, 0};
  for (const RequestRecord& r : records) {
    first_arrival = std::min(first_arrival, r.arrival_s);
    s.total_input_tokens += r.prompt_len;
    const bool ok_ttft = MetTtft(r, slo);
    const bool ok_tpot = MetTpot(r, slo);
    met_ttft += ok_ttft;
    met_tpot += ok_tpot;
    good += ok_ttft && ok_tpot;
    ttft_all.push_back(r.rejected ? std::numeric_limits<double>::infinity() : TtftMs(r));
    tpot_all.push_back(r.rejected ? std::numeric_limits<double>::infinity()
                                  : TpotMs(r, slo.tpot_definition));
    if (r.rejected) {
      ++s.rejected;
      continue;
    }
    if (!r.finished) {
      ++s.unfinished;
      continue;
    }
    ++s.completed;
    s.total_output_tokens += r.output_len;
    last_finish = std::max(last_finish, r.finish_s);
    ttft.push_back(TtftMs(r));
    if (r.output_len > 1) tpot.push_back(TpotMs(r, slo.tpot_definition));
    e2e.push_back((r.finish_s - r.arrival_s) * 1e3);
    double stages[5];
    Stages(r, stages);
    for (int i = 0; i < 5; ++i) stage_sum[i] += std::isnan(stages[i]) ? 0.0 : stages[i];
  }
  const double n = static_cast<double>(records.size());
  s.attainment = good / n;
  s.attainment_ttft = met_ttft / n;
  s.attainment_tpot = met_tpot / n;
  s.duration_s = std::max(0.0, last_finish - first_arrival);
  if (s.duration_s > 0) {
    s.request_throughput = s.completed / s.duration_s;
    s.output_throughput = s.total_output_tokens / s.duration_s;
    s.total_token_throughput = (s.total_input_tokens + s.total_output_tokens) / s.duration_s;
    s.request_goodput = good / s.duration_s;
  }
  s.ttft = Stats(std::move(ttft));
  s.tpot = Stats(std::move(tpot));
  s.e2e = Stats(std::move(e2e));
  if (s.completed > 0) {
    for (int i = 0; i < 5; ++i) s.stage_ms[i] = stage_sum[i] / s.completed;
  }
  s.classes.resize(class_names.size());
  for (size_t k = 0; k < class_names.size(); ++k) s.classes[k].name = class_names[k];
  for (const RequestRecord& r : records) {
    if (r.slo_class < 0 || r.slo_class >= static_cast<int32_t>(s.classes.size())) continue;
    Summary::ClassAttainment& c = s.classes[r.slo_class];
    ++c.num_requests;
    c.attainment += MetTtft(r, slo) && MetTpot(r, slo) ? 1.0 : 0.0;
    c.ttft_slo_ms = r.ttft_slo_ms;
    c.tpot_slo_ms = r.tpot_slo_ms;
  }
  for (Summary::ClassAttainment& c : s.classes) {
    if (c.num_requests > 0) c.attainment /= static_cast<double>(c.num_requests);
  }
  if (slo.mode == AttainmentMode::kJoint) {
    s.meets_target = s.attainment >= slo.target;
  } else {
    const double q = slo.target * 100.0;
    s.meets_target = Percentile(ttft_all, q) < slo.ttft_ms && Percentile(tpot_all, q) < slo.tpot_ms;
  }
  return s;
}

std::string RecordsToJsonl(std::span<const RequestRecord> records, const SloSpec& slo) {
  std::string out;
  for (const RequestRecord& r : records) {
    double stages[5];
    Stages(r, stages);
    auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
    nlohmann::json row = {
        {"id", r.id},
        {"prompt_len", r.prompt_len},
        {"output_len", r.output_len},
        {"prefill_instance", r.prefill_instance},
        {"decode_instance", r.decode_instance},
        {"rejected", r.rejected},
        {"finished", r.finished},
        {"arrival_s", r.arrival_s},
        {"prefill_start_s", number(r.prefill_start_s >= 0 ? r.prefill_start_s : NAN)},
        {"first_token_s", number(r.first_token_s >= 0 ? r.first_token_s : NAN)},
        {"kv_start_s", number(r.kv_start_s >= 0 ? r.kv_start_s : NAN)},
        {"kv_end_s", number(r.kv_end_s >= 0 ? r.kv_end_s : NAN)},
        {"decode_start_s", number(r.decode_start_s >= 0 ? r.decode_start_s : NAN)},
        {"finish_s", number(r.finish_s >= 0 ? r.finish_s : NAN)},
        {"ttft_ms", number(TtftMs(r))},
        {"tpot_ms", number(TpotMs(r, TpotDefinition::kClient))},
        {"tpot_distserve_sim_ms", number(TpotMs(r, TpotDefinition::kDistServeSim))},
        {"e2e_ms", number(r.finished ? (r.finish_s - r.arrival_s) * 1e3 : NAN)},
        {"prefill_queue_ms", number(stages[0])},
        {"prefill_compute_ms", number(stages[1])},
        {"kv_transfer_ms", number(stages[2])},
        {"decode_queue_ms", number(stages[3])},
        {"decode_compute_ms", number(stages[4])},
        {"met_ttft", MetTtft(r, slo)},
        {"met_tpot", MetTpot(r, slo)},
        {"met_all", MetTtft(r, slo) && MetTpot(r, slo)},
    };
    out += row.dump();
    out += "\n";
  }
  return out;
}

std::string SummaryToJson(const Summary& s, const SloSpec& slo, double request_rate) {
  nlohmann::json out = {
      {"num_prompts", s.num_requests},
      {"request_rate", request_rate},
      {"completed", s.completed},
      {"failed", s.rejected + s.unfinished},
      {"rejected", s.rejected},
      {"unfinished", s.unfinished},
      {"duration", s.duration_s},
      {"total_input_tokens", s.total_input_tokens},
      {"total_output_tokens", s.total_output_tokens},
      {"request_throughput", s.request_throughput},
      {"request_goodput", s.request_goodput},
      {"output_throughput", s.output_throughput},
      {"total_token_throughput", s.total_token_throughput},
      {"slo_ttft_ms", slo.ttft_ms},
      {"slo_tpot_ms", slo.tpot_ms},
      {"attainment", s.attainment},
      {"attainment_ttft", s.attainment_ttft},
      {"attainment_tpot", s.attainment_tpot},
      {"attainment_target", slo.target},
      {"meets_target", s.meets_target},
      {"mean_prefill_queue_ms", s.stage_ms[0]},
      {"mean_prefill_compute_ms", s.stage_ms[1]},
      {"mean_kv_transfer_ms", s.stage_ms[2]},
      {"mean_decode_queue_ms", s.stage_ms[3]},
      {"mean_decode_compute_ms", s.stage_ms[4]},
  };
  if (s.max_concurrency > 0) out["max_concurrency"] = s.max_concurrency;
  const std::pair<const char*, const LatencyStats*> metrics[] = {
      {"ttft", &s.ttft}, {"tpot", &s.tpot}, {"itl", &s.itl}, {"e2el", &s.e2e}};
  for (const auto& [name, stats] : metrics) {
    if (stats == &s.itl && !s.has_itl) continue;
    out[absl::StrCat("mean_", name, "_ms")] = stats->mean;
    out[absl::StrCat("median_", name, "_ms")] = stats->median;
    out[absl::StrCat("std_", name, "_ms")] = stats->std;
    out[absl::StrCat("p90_", name, "_ms")] = stats->p90;
    out[absl::StrCat("p99_", name, "_ms")] = stats->p99;
    for (const auto& [q, value] : stats->percentiles) {
      out[absl::StrCat("p", absl::StrFormat("%g", q), "_", name, "_ms")] = value;
    }
  }
  return out.dump(2);
}

std::string FormatSummary(const Summary& s, const SloSpec& slo, double request_rate, int num_gpus) {
  std::string out = Header(" Serving Benchmark Result ", '=');
  out += Line("Successful requests:", s.completed);
  out += Line("Failed requests:", s.rejected + s.unfinished);
  if (s.max_concurrency > 0) out += Line("Maximum request concurrency:", s.max_concurrency);
  out += Line("Request rate configured (RPS):", request_rate);
  out += Line("Benchmark duration (s):", s.duration_s);
  out += Line("Total input tokens:", s.total_input_tokens);
  out += Line("Total generated tokens:", s.total_output_tokens);
  out += Line("Request throughput (req/s):", s.request_throughput);
  out += Line("Request goodput (req/s):", s.request_goodput);
  out += Line("Output token throughput (tok/s):", s.output_throughput);
  out += Line("Total token throughput (tok/s):", s.total_token_throughput);
  const std::pair<const char*, const LatencyStats*> sections[] = {
      {"Time to First Token", &s.ttft}, {"Time per Output Token (excl. 1st token)", &s.tpot},
      {"Inter-token Latency", &s.itl}, {"End-to-end Latency", &s.e2e}};
  const char* names[] = {"TTFT", "TPOT", "ITL", "E2EL"};
  for (int i = 0; i < 4; ++i) {
    const LatencyStats& stats = *sections[i].second;
    if (&stats == &s.itl && !s.has_itl) continue;  // the simulator has no ITL
    out += Header(sections[i].first, '-');
    out += Line(absl::StrCat("Mean ", names[i], " (ms):"), stats.mean);
    out += Line(absl::StrCat("Median ", names[i], " (ms):"), stats.median);
    if (stats.percentiles.empty()) {
      out += Line(absl::StrCat("P90 ", names[i], " (ms):"), stats.p90);
      out += Line(absl::StrCat("P99 ", names[i], " (ms):"), stats.p99);
    }
    for (const auto& [q, value] : stats.percentiles) {
      out += Line(absl::StrCat(PercentileLabel(q), " ", names[i], " (ms):"), value);
    }
  }
  out += Header("SLO Attainment", '-');
  if (s.classes.empty()) {
    out += Line(absl::StrFormat("Attainment TTFT<=%gms (%%):", slo.ttft_ms), 100 * s.attainment_ttft);
    out += Line(absl::StrFormat("Attainment TPOT<=%gms (%%):", slo.tpot_ms), 100 * s.attainment_tpot);
  } else {  // every request against its own class's SLO
    out += Line("Attainment TTFT, own SLO (%):", 100 * s.attainment_ttft);
    out += Line("Attainment TPOT, own SLO (%):", 100 * s.attainment_tpot);
  }
  out += Line("Attainment both (%):", 100 * s.attainment);
  for (const Summary::ClassAttainment& c : s.classes) {
    out += Line(absl::StrFormat("  %s, %d req, TTFT<=%g TPOT<=%g (%%):", c.name, c.num_requests, c.ttft_slo_ms,
                                c.tpot_slo_ms),
                100 * c.attainment);
  }
  if (num_gpus > 0) {
    out += Line("GPUs:", static_cast<int64_t>(num_gpus));
    out += Line("Request rate per GPU (req/s/GPU):", request_rate / num_gpus);
    out += Line("Request goodput per GPU (req/s/GPU):", s.request_goodput / num_gpus);
  }
  out += Header(" Stage breakdown (mean ms) ", '-');
  const char* stage_names[] = {"Prefill queue (ms):", "Prefill compute (ms):", "KV transfer (ms):",
                               "Decode queue (ms):", "Decode compute (ms):"};
  for (int i = 0; i < 5; ++i) out += Line(stage_names[i], s.stage_ms[i]);
  out += std::string(50, '=') + "\n";
  return out;
}

std::optional<double> GoodputRate(std::span<const SweepPoint> points) {
  std::optional<double> best;
  for (const SweepPoint& p : points) {
    if (p.summary.meets_target && (!best.has_value() || p.rate > *best)) best = p.rate;
  }
  return best;
}

std::string FormatSweepTable(std::span<const SweepPoint> points, const SloSpec& slo) {
  std::string out = "=================== Rate Sweep ===================\n";
  absl::StrAppendFormat(&out, "%-12s %-12s %-14s %-14s %-12s %-12s\n", "Rate(req/s)", "Attain(%)", "P90 TTFT(ms)",
                        "P90 TPOT(ms)", "Thru(req/s)", "Out(tok/s)");
  for (const SweepPoint& p : points) {
    const Summary& s = p.summary;
    absl::StrAppendFormat(&out, "%-12.2f %-12.2f %-14.2f %-14.2f %-12.2f %-12.2f%s\n", p.rate, 100 * s.attainment,
                          s.ttft.p90, s.tpot.p90, s.request_throughput, s.output_throughput,
                          s.meets_target ? "" : "  (below target)");
  }
  const std::optional<double> goodput = GoodputRate(points);
  const std::string label = absl::StrFormat("Goodput (req/s, attainment >= %g%%):", 100 * slo.target);
  if (goodput.has_value()) {
    absl::StrAppendFormat(&out, "%-40s %-10.2f\n", label, *goodput);
  } else {
    absl::StrAppendFormat(&out, "%-40s %s\n", label, "none of the rates");
  }
  out += std::string(50, '=') + "\n";
  return out;
}

}  // namespace tandem::sim
