#include "loadgen/report.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tandem::loadgen {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

nlohmann::json Number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

bool Completed(const RequestResult& r) { return r.ok() && r.first_token_s >= 0; }

nlohmann::json FinalToJson(const RouterFinal& f) {
  return {
      {"request_id", f.request_id},
      {"finish_reason", f.finish_reason},
      {"prompt_tokens", f.prompt_tokens},
      {"completion_tokens", f.completion_tokens},
      {"timing",
       {{"prefill_queue_ms", f.prefill_queue_ms},
        {"prefill_compute_ms", f.prefill_compute_ms},
        {"kv_transfer_ms", f.kv_transfer_ms},
        {"decode_queue_ms", f.decode_queue_ms},
        {"decode_compute_ms", f.decode_compute_ms},
        {"ttft_ms", f.ttft_ms},
        {"tpot_ms", f.tpot_ms},
        {"e2e_ms", f.e2e_ms}}},
      {"slo",
       {{"ttft_met", f.ttft_met},
        {"tpot_met", f.tpot_met},
        {"missed_stage", f.missed_stage},
        {"explanation", f.explanation}}},
      {"prefill_worker", f.prefill_worker},
      {"decode_worker", f.decode_worker},
  };
}

}  // namespace

sim::SloSpec MakeSloSpec(double ttft_slo_ms, double tpot_slo_ms, double target, sim::AttainmentMode mode) {
  sim::SloSpec slo;
  slo.ttft_ms = ttft_slo_ms > 0 ? ttft_slo_ms : kInf;
  slo.tpot_ms = tpot_slo_ms > 0 ? tpot_slo_ms : kInf;
  slo.target = target;
  slo.tpot_definition = sim::TpotDefinition::kClient;
  slo.mode = mode;
  return slo;
}

sim::RequestRecord ToSimRecord(const RequestResult& r) {
  sim::RequestRecord record;
  record.id = r.index;
  record.prompt_len = r.input_len;
  record.output_len = r.output_len;
  record.rejected = r.status_name == "RESOURCE_EXHAUSTED";
  record.finished = Completed(r);
  record.arrival_s = r.start_s;
  record.first_token_s = r.first_token_s;
  if (record.finished) record.finish_s = r.end_s;
  return record;
}

double ClientTtftMs(const RequestResult& r) {
  return r.first_token_s >= 0 ? (r.first_token_s - r.start_s) * 1e3 : kNan;
}

double ClientTpotMs(const RequestResult& r) {
  if (!Completed(r)) return kNan;
  if (r.output_len <= 1) return 0.0;
  return (r.end_s - r.first_token_s) * 1e3 / static_cast<double>(r.output_len - 1);
}

double ClientE2eMs(const RequestResult& r) { return Completed(r) ? (r.end_s - r.start_s) * 1e3 : kNan; }

sim::Summary SummarizeRun(std::span<const RequestResult> results, const sim::SloSpec& slo,
                          const SummaryOptions& options) {
  std::vector<sim::RequestRecord> records;
  records.reserve(results.size());
  for (const RequestResult& r : results) records.push_back(ToSimRecord(r));
  sim::Summary s = sim::Summarize(records, slo);

  // Recomputed from the same values as sim::Summarize, adding the explicitly requested percentiles.
  std::vector<double> ttft, tpot, e2e, itl;
  double stage_sum[5] = {0, 0, 0, 0, 0};
  int64_t with_final = 0;
  for (const RequestResult& r : results) {
    if (!Completed(r)) continue;
    ttft.push_back(ClientTtftMs(r));
    if (r.output_len > 1) tpot.push_back(ClientTpotMs(r));
    e2e.push_back(ClientE2eMs(r));
    itl.insert(itl.end(), r.itls_ms.begin(), r.itls_ms.end());
    if (r.has_final) {
      ++with_final;
      stage_sum[0] += r.final.prefill_queue_ms;
      stage_sum[1] += r.final.prefill_compute_ms;
      stage_sum[2] += r.final.kv_transfer_ms;
      stage_sum[3] += r.final.decode_queue_ms;
      stage_sum[4] += r.final.decode_compute_ms;
    }
  }
  const std::span<const double> q(options.metric_percentiles);
  s.ttft = sim::ComputeLatencyStats(std::move(ttft), q);
  s.tpot = sim::ComputeLatencyStats(std::move(tpot), q);
  s.e2e = sim::ComputeLatencyStats(std::move(e2e), q);
  s.itl = sim::ComputeLatencyStats(std::move(itl), q);
  s.has_itl = true;
  for (int i = 0; i < 5; ++i) s.stage_ms[i] = with_final > 0 ? stage_sum[i] / with_final : 0.0;
  s.max_concurrency = options.max_concurrency;
  return s;
}

nlohmann::json RequestToJson(const RequestResult& r, const sim::SloSpec& slo) {
  const sim::RequestRecord record = ToSimRecord(r);
  const bool met_ttft = sim::MetTtft(record, slo);
  const bool met_tpot = sim::MetTpot(record, slo);
  return {
      {"index", r.index},
      {"input_len", r.input_len},
      {"output_len", r.output_len},
      {"requested_output_len", r.requested_output_len},
      {"scheduled_time", r.scheduled_s},
      {"start_time", Number(r.start_s >= 0 ? r.start_s : kNan)},
      {"ttft_ms", Number(ClientTtftMs(r))},
      {"tpot_ms", Number(ClientTpotMs(r))},
      {"e2e_ms", Number(ClientE2eMs(r))},
      {"itls_ms", r.itls_ms},
      {"status", r.status_name},
      {"error", r.error},
      {"met_ttft", met_ttft},
      {"met_tpot", met_tpot},
      {"met_all", met_ttft && met_tpot},
      {"router", r.has_final ? FinalToJson(r.final) : nlohmann::json(nullptr)},
  };
}

nlohmann::json RunToJson(const RunInfo& info, const sim::Summary& summary, const sim::SloSpec& slo,
                         std::span<const RequestResult> results) {
  nlohmann::json out = {
      {"backend", "tandem"},
      {"router", info.router},
      {"model_id", info.model},
      {"dataset", info.dataset},
      {"trace", info.trace},
      {"seed", info.seed},
      {"burstiness", Number(info.burstiness)},
      {"max_concurrency", info.max_concurrency > 0 ? nlohmann::json(info.max_concurrency) : nlohmann::json(nullptr)},
      {"max_total_tokens", info.max_total_tokens},
  };
  const nlohmann::json fields = nlohmann::json::parse(sim::SummaryToJson(summary, slo, info.request_rate));
  for (const auto& [key, value] : fields.items()) out[key] = value;
  // vLLM writes an unbounded rate as the string "inf"; infinite SLOs (none given) as null.
  out["request_rate"] = std::isinf(info.request_rate) ? nlohmann::json("inf") : nlohmann::json(info.request_rate);
  out["slo_ttft_ms"] = Number(slo.ttft_ms);
  out["slo_tpot_ms"] = Number(slo.tpot_ms);
  nlohmann::json requests = nlohmann::json::array();
  for (const RequestResult& r : results) requests.push_back(RequestToJson(r, slo));
  out["requests"] = std::move(requests);
  return out;
}

}  // namespace tandem::loadgen
