#include "prefill/prefill_metrics.h"

#include <utility>

#include "common/status_macros.h"
#include "worker/engine_metrics.h"

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
  const PrefillEngine* e = &engine;
  TANDEM_RETURN_IF_ERROR(AddEngineGauges(metrics, "prefill", [e] {
    const PrefillLoad load = e->Load();
    return EngineGaugeValues{.queued_requests = 1.0 * load.queued_requests,
                             .queued_tokens = 1.0 * load.queued_tokens,
                             .running_requests = 1.0 * load.running_requests,
                             .context_tokens = std::nullopt,
                             .blocks_free = 1.0 * load.blocks_free,
                             .blocks_total = 1.0 * load.blocks_total};
  }));
  return metrics.AddGaugeCallback("tandem_prefill_leases_held",
                                  "Prompt KV leases held until a decode worker pulls them.", {},
                                  [e] { return 1.0 * e->Load().leases_held; });
}

}  // namespace tandem
