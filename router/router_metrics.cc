#include "router/router_metrics.h"

#include <cctype>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace tandem::router {
namespace {


constexpr char kRejectionsHelp[] = "Generate calls refused before placement, by reason.";
constexpr char kSloMissedHelp[] =
    "Completed requests that missed their TTFT or TPOT SLO, by the stage that cost the most.";

// The rejection reason of a call refused before placement.
std::string RejectionReason(const absl::Status& status, bool admitted) {
  if (status.code() == absl::StatusCode::kUnauthenticated) return "unauthenticated";  // before admission
  if (!admitted) return "queue_full";
  switch (status.code()) {
    case absl::StatusCode::kUnavailable: return "no_healthy_worker";  // RouterState::Place
    case absl::StatusCode::kResourceExhausted: return "slo";          // the policy refused
    default: break;
  }
  std::string reason = absl::StatusCodeToString(status.code());  // "INVALID_ARGUMENT"
  for (char& c : reason) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return reason;
}

// One gauge per worker, read from its last load report (0 before the first one).
absl::Status AddWorkerGauge(MetricsRegistry& metrics, const WorkerRegistry& workers, WorkerRole role, int index,
                            const std::string& name, const std::string& help,
                            double (*read)(const worker::v1::LoadReport&)) {
  const MetricLabels labels = {{"role", RoleName(role)}, {"worker", workers.address(role, index)}};
  return metrics.AddGaugeCallback(name, help, labels, [&workers, role, index, read] {
    const std::optional<worker::v1::LoadReport> load = workers.last_load(role, index);
    return load.has_value() ? read(*load) : 0.0;
  });
}

// Every per-worker gauge of one worker slot.
absl::Status AddWorkerGauges(MetricsRegistry& metrics, const WorkerRegistry& workers, WorkerRole role, int i) {
  using Load = worker::v1::LoadReport;
  const MetricLabels labels = {{"role", RoleName(role)}, {"worker", workers.address(role, i)}};
  const WorkerRegistry* w = &workers;
  TANDEM_RETURN_IF_ERROR(metrics.AddGaugeCallback(
      "tandem_worker_healthy", "1 when the worker is in the placement pool (passing health checks).", labels,
      [w, role, i] { return w->healthy(role, i) ? 1.0 : 0.0; }));
  TANDEM_RETURN_IF_ERROR(AddWorkerGauge(metrics, workers, role, i, "tandem_worker_queue_depth",
                                        "Requests queued on the worker (last load report).",
                                        [](const Load& l) { return 1.0 * l.queued_requests(); }));
  TANDEM_RETURN_IF_ERROR(AddWorkerGauge(
      metrics, workers, role, i, "tandem_worker_running_batch",
      "Requests in the worker's running batch (last load report).",
      [](const Load& l) { return 1.0 * l.running_requests(); }));
  TANDEM_RETURN_IF_ERROR(AddWorkerGauge(metrics, workers, role, i, "tandem_worker_kv_blocks_free",
                                        "Free KV cache blocks on the worker (last load report).",
                                        [](const Load& l) { return 1.0 * l.kv_blocks_free(); }));
  TANDEM_RETURN_IF_ERROR(AddWorkerGauge(
      metrics, workers, role, i, "tandem_worker_kv_blocks_used",
      "KV cache blocks in use on the worker (last load report).",
      [](const Load& l) { return 1.0 * (l.kv_blocks_total() - l.kv_blocks_free()); }));
  TANDEM_RETURN_IF_ERROR(AddWorkerGauge(
      metrics, workers, role, i, "tandem_worker_step_seconds",
      "Moving average of the worker's engine step time (last load report).",
      [](const Load& l) { return l.recent_step_ms() / 1000; }));
  if (role == WorkerRole::kPrefill) {
    TANDEM_RETURN_IF_ERROR(AddWorkerGauge(metrics, workers, role, i, "tandem_worker_leases_held",
                                          "KV leases the prefill worker holds (last load report).",
                                          [](const Load& l) { return 1.0 * l.leases_held(); }));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<RouterMetrics>> RouterMetrics::Create(MetricsRegistry& metrics,
                                                                     WorkerRegistry& workers,
                                                                     std::function<double()> in_flight) {
  std::unique_ptr<RouterMetrics> m(new RouterMetrics);
  m->metrics_ = &metrics;
  const std::string requests_help = "Generate calls by how they ended.";
  TANDEM_ASSIGN_OR_RETURN(m->ok_, metrics.AddCounter("tandem_requests_total", requests_help, {{"outcome", "ok"}}));
  TANDEM_ASSIGN_OR_RETURN(m->error_,
                          metrics.AddCounter("tandem_requests_total", requests_help, {{"outcome", "error"}}));
  TANDEM_ASSIGN_OR_RETURN(m->cancelled_,
                          metrics.AddCounter("tandem_requests_total", requests_help, {{"outcome", "cancelled"}}));
  TANDEM_ASSIGN_OR_RETURN(m->rejected_,
                          metrics.AddCounter("tandem_requests_total", requests_help, {{"outcome", "rejected"}}));
  for (const char* reason : {"queue_full", "invalid_argument", "no_healthy_worker", "slo"}) {
    TANDEM_RETURN_IF_ERROR(
        metrics.AddCounter("tandem_rejections_total", kRejectionsHelp, {{"reason", reason}}).status());
  }
  // Milliseconds to minutes: a TTFT behind a long queue, an E2E of a long generation.
  TANDEM_ASSIGN_OR_RETURN(m->ttft_, metrics.AddHistogram("tandem_ttft_seconds",
                                                         "Time from receiving a request to its first token.",
                                                         LatencyBuckets(0.001, 300)));
  TANDEM_ASSIGN_OR_RETURN(m->tpot_, metrics.AddHistogram("tandem_tpot_seconds",
                                                         "Mean time per output token after the first.",
                                                         LatencyBuckets(0.0005, 10)));
  TANDEM_ASSIGN_OR_RETURN(m->e2e_, metrics.AddHistogram("tandem_e2e_seconds",
                                                        "Time from receiving a request to its final message.",
                                                        LatencyBuckets(0.001, 600)));
  TANDEM_ASSIGN_OR_RETURN(
      m->failovers_,
      metrics.AddCounter("tandem_failovers_total",
                         "Streams resumed on another prefill/decode pair after their decode worker failed mid-stream."));
  TANDEM_ASSIGN_OR_RETURN(m->slo_attained_,
                          metrics.AddCounter("tandem_slo_attained_total",
                                             "Completed requests that met every SLO they set (or set none)."));
  for (RequestStage stage : {RequestStage::kPrefillQueue, RequestStage::kPrefillCompute, RequestStage::kKvTransfer,
                             RequestStage::kDecodeQueue, RequestStage::kDecodeCompute}) {
    TANDEM_RETURN_IF_ERROR(metrics
                               .AddCounter("tandem_slo_missed_total", kSloMissedHelp,
                                           {{"stage", std::string(RequestStageName(stage))}})
                               .status());
  }
  TANDEM_RETURN_IF_ERROR(metrics.AddGaugeCallback("tandem_router_inflight_requests",
                                                  "Admitted Generate calls that have not ended.", {},
                                                  std::move(in_flight)));

  // Workers that join later (DNS targets) get theirs when they join, on the registry's poller thread.
  workers.SetWorkerAdded([&metrics, &workers](WorkerRole role, int index) {
    if (absl::Status s = AddWorkerGauges(metrics, workers, role, index); !s.ok()) {
      TANDEM_LOG(ERROR, "router") << "metrics for " << workers.address(role, index) << ": " << s;
    }
  });
  return m;
}

void RouterMetrics::RecordEnd(const absl::Status& status, bool admitted, bool placed) {
  if (status.ok()) {
    ok_->Increment();
  } else if (!placed) {
    rejected_->Increment();
    absl::StatusOr<Counter*> reason = metrics_->AddCounter("tandem_rejections_total", kRejectionsHelp,
                                                           {{"reason", RejectionReason(status, admitted)}});
    if (reason.ok()) (*reason)->Increment();
  } else if (status.code() == absl::StatusCode::kCancelled || status.code() == absl::StatusCode::kDeadlineExceeded) {
    cancelled_->Increment();
  } else {
    error_->Increment();
  }
}

void RouterMetrics::RecordCompleted(const RequestTiming& timing, const SloVerdict& verdict, int completion_tokens) {
  ttft_->Observe(timing.ttft_ms / 1000);
  if (completion_tokens >= 2) tpot_->Observe(timing.tpot_ms / 1000);
  e2e_->Observe(timing.e2e_ms / 1000);
  if (verdict.ttft_met && verdict.tpot_met) {
    slo_attained_->Increment();
    return;
  }
  absl::StatusOr<Counter*> missed = metrics_->AddCounter(
      "tandem_slo_missed_total", kSloMissedHelp, {{"stage", std::string(RequestStageName(verdict.missed_stage))}});
  if (missed.ok()) (*missed)->Increment();
}

}  // namespace tandem::router
