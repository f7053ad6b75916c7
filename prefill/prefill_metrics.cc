#include "prefill/prefill_metrics.h"

#include <utility>

#include "common/status_macros.h"

namespace tandem {

absl::Status AddPrefillStepMetrics(MetricsRegistry& metrics, PrefillEngineOptions& options) {
  TANDEM_ASSIGN_OR_RETURN(Histogram * step,
                          metrics.AddHistogram("tandem_engine_step_seconds", "Engine step (forward pass) time.",
                                               LatencyBuckets(0.0001, 60), {{"phase", "prefill"}}));
  TANDEM_ASSIGN_OR_RETURN(Counter * tokens, metrics.AddCounter("tandem_prefill_tokens_total",
                                                              "Prompt tokens run through the model."));
  TANDEM_ASSIGN_OR_RETURN(Counter * batches,
                          metrics.AddCounter("tandem_prefill_batches_total", "Prefill forward passes."));
  options.on_step = [step, tokens, batches, previous = std::move(options.on_step)](
                        absl::Duration compute, int32_t batch_requests, int64_t batch_tokens) {
    step->Observe(absl::ToDoubleSeconds(compute));
    tokens->Increment(static_cast<double>(batch_tokens));
    batches->Increment();
    if (previous) previous(compute, batch_requests, batch_tokens);
  };
  return absl::OkStatus();
}

absl::Status AddPrefillLoadMetrics(MetricsRegistry& metrics, const PrefillEngine& engine) {
  const MetricLabels phase = {{"phase", "prefill"}};
  const PrefillEngine* e = &engine;
  TANDEM_RETURN_IF_ERROR(metrics.AddGaugeCallback("tandem_engine_queued_requests", "Requests waiting for the engine.",
                                                  phase, [e] { return 1.0 * e->Load().queued_requests; }));
  TANDEM_RETURN_IF_ERROR(metrics.AddGaugeCallback("tandem_engine_queued_tokens",
                                                  "Prompt tokens of the requests waiting for the engine.", phase,
                                                  [e] { return 1.0 * e->Load().queued_tokens; }));
  TANDEM_RETURN_IF_ERROR(metrics.AddGaugeCallback("tandem_engine_running_requests",
                                                  "Requests in the batch the engine is running.", phase,
                                                  [e] { return 1.0 * e->Load().running_requests; }));
  TANDEM_RETURN_IF_ERROR(metrics.AddGaugeCallback("tandem_engine_kv_blocks_free", "Free KV cache blocks.", phase,
                                                  [e] { return 1.0 * e->Load().blocks_free; }));
  TANDEM_RETURN_IF_ERROR(metrics.AddGaugeCallback("tandem_engine_kv_blocks_used", "KV cache blocks in use.", phase,
                                                  [e] {
                                                    const PrefillLoad load = e->Load();
                                                    return 1.0 * (load.blocks_total - load.blocks_free);
                                                  }));
  return metrics.AddGaugeCallback("tandem_prefill_leases_held",
                                  "Prompt KV leases held until a decode worker pulls them.", {},
                                  [e] { return 1.0 * e->Load().leases_held; });
}

}  // namespace tandem
