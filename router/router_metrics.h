// RouterMetrics: what the router exposes on GET /metrics (common/metrics.h, common/metrics_http.h).
//
//   tandem_requests_total{outcome}          counter    every Generate call once it ends: ok, error,
//                                                      cancelled (client cancel or deadline), rejected
//   tandem_rejections_total{reason}         counter    refused before placement: queue_full,
//                                                      invalid_argument, not_found, no_healthy_worker, slo
//   tandem_ttft_seconds / tandem_tpot_seconds / tandem_e2e_seconds
//                                           histogram  per completed request (TPOT with >= 2 tokens)
//   tandem_slo_attained_total               counter    completed requests that met every SLO they set
//   tandem_failovers_total                  counter    streams resumed on another pair after a decode worker failed
//   tandem_slo_missed_total{stage}          counter    completed requests that missed one, by the stage
//                                                      that cost the most (prefill_queue, ...)
//   tandem_router_inflight_requests         gauge      admitted Generate calls not yet ended
//   tandem_worker_healthy{role,worker}      gauge      1 when the worker is in the placement pool
//   tandem_worker_queue_depth{role,worker}  gauge      from the worker's last load report, as are:
//   tandem_worker_running_batch, tandem_worker_kv_blocks_free, tandem_worker_kv_blocks_used,
//   tandem_worker_leases_held (prefill), tandem_worker_step_seconds (moving average of its step time)
//
// Thread safety: the Record* methods are thread-safe (counter and histogram updates only).
#ifndef TANDEM_ROUTER_ROUTER_METRICS_H_
#define TANDEM_ROUTER_ROUTER_METRICS_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "router/slo_report.h"
#include "router/worker_registry.h"

namespace tandem::router {

class RouterMetrics {
 public:
  // Registers the router's metrics in `metrics`. The per-worker gauges read `workers` and the in-flight
  // gauge calls `in_flight` at scrape time: all three must outlive every Render of `metrics`.
  static absl::StatusOr<std::unique_ptr<RouterMetrics>> Create(MetricsRegistry& metrics,
                                                               WorkerRegistry& workers,
                                                               std::function<double()> in_flight);

  // A Generate call ended with `status`. `admitted`: it got past the router's admission bound;
  // `placed`: a (prefill, decode) pair was chosen. Not placed and not OK counts as a rejection.
  void RecordEnd(const absl::Status& status, bool admitted, bool placed);
  // A request completed (its final message is queued): latency histograms and SLO attainment.
  void RecordCompleted(const RequestTiming& timing, const SloVerdict& verdict, int completion_tokens);
  // A decode worker failed mid-stream and the stream was resumed on another pair.
  void RecordFailover() { failovers_->Increment(); }

 private:
  RouterMetrics() = default;

  MetricsRegistry* metrics_ = nullptr;
  Counter* ok_ = nullptr;
  Counter* error_ = nullptr;
  Counter* cancelled_ = nullptr;
  Counter* rejected_ = nullptr;
  Histogram* ttft_ = nullptr;
  Histogram* tpot_ = nullptr;
  Histogram* e2e_ = nullptr;
  Counter* slo_attained_ = nullptr;
  Counter* failovers_ = nullptr;
};

}  // namespace tandem::router

#endif  // TANDEM_ROUTER_ROUTER_METRICS_H_
