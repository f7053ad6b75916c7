// The colocated worker's metrics (common/metrics.h), served on GET /metrics by ColocatedServer:
//
//   tandem_engine_step_seconds{phase="colocated"}      histogram  time of each mixed step
//   tandem_colocated_decode_tokens_total               counter    tokens decoded (first tokens excluded)
//   tandem_colocated_prefill_tokens_total              counter    prompt tokens run through the model
//   tandem_colocated_first_tokens_total                counter    prompts finished (first token sampled)
//   tandem_colocated_prefill_chunks_total              counter    prompt chunks run (> first tokens when
//                                                                 prompts were split across steps)
//   tandem_engine_queued_requests{phase="colocated"}   gauge      waiting for admission
//   tandem_engine_queued_tokens{phase="colocated"}     gauge      prompt tokens not yet prefilled
//   tandem_engine_running_requests{phase="colocated"}  gauge      decoding
//   tandem_engine_context_tokens{phase="colocated"}    gauge      their context tokens
//   tandem_engine_kv_blocks_free / _used{phase="colocated"}  gauge  the KV pool
#ifndef TANDEM_COLOCATED_COLOCATED_METRICS_H_
#define TANDEM_COLOCATED_COLOCATED_METRICS_H_

#include "absl/status/status.h"
#include "colocated/colocated_engine.h"
#include "common/metrics.h"

namespace tandem {

// Registers the step metrics and chains `options.on_step` to feed them. `metrics` must outlive the engine.
absl::Status AddColocatedStepMetrics(MetricsRegistry& metrics, ColocatedEngineOptions& options);
// Registers the gauges read from `engine`, which must outlive every Render of `metrics`.
absl::Status AddColocatedLoadMetrics(MetricsRegistry& metrics, const ColocatedEngine& engine);

}  // namespace tandem

#endif  // TANDEM_COLOCATED_COLOCATED_METRICS_H_
