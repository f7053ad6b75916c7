// The prefill worker's metrics (common/metrics.h), served on GET /metrics by PrefillServer:
//
//   tandem_engine_step_seconds{phase="prefill"}      histogram  compute time of each batch
//   tandem_prefill_tokens_total                      counter    prompt tokens run through the model
//   tandem_prefill_batches_total                     counter    forward passes
//   tandem_engine_queued_requests{phase="prefill"}   gauge      prompts waiting for a batch
//   tandem_engine_queued_tokens{phase="prefill"}     gauge      their tokens
//   tandem_engine_running_requests{phase="prefill"}  gauge      prompts in the batch now running
//   tandem_engine_kv_blocks_free / _used{phase="prefill"}  gauge  the KV pool
//   tandem_prefill_leases_held                       gauge      KV leases waiting for a decode worker
//
// The engine knows nothing of metrics: the counters and the histogram are fed by its on_step observer,
// the gauges read PrefillEngine::Load() at scrape time.
#ifndef TANDEM_PREFILL_PREFILL_METRICS_H_
#define TANDEM_PREFILL_PREFILL_METRICS_H_

#include "absl/status/status.h"
#include "common/metrics.h"
#include "prefill/prefill_engine.h"

namespace tandem {

// Registers the step metrics and sets `options.on_step` to feed them (chaining an observer already
// set). `metrics` must outlive the engine built with `options`.
absl::Status AddPrefillStepMetrics(MetricsRegistry& metrics, PrefillEngineOptions& options);
// Registers the gauges read from `engine`, which must outlive every Render of `metrics`.
absl::Status AddPrefillLoadMetrics(MetricsRegistry& metrics, const PrefillEngine& engine);

}  // namespace tandem

#endif  // TANDEM_PREFILL_PREFILL_METRICS_H_
