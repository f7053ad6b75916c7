#include "worker/engine_metrics.h"

#include <utility>

#include "common/status_macros.h"

namespace tandem {
namespace {

// One gauge showing the field `pick` chooses from a fresh `read()`.
absl::Status AddPickedGauge(MetricsRegistry& metrics, const MetricLabels& labels,
                            const std::function<EngineGaugeValues()>& read, const char* name, const char* help,
                            double (*pick)(const EngineGaugeValues&)) {
  return metrics.AddGaugeCallback(name, help, labels, [read, pick] { return pick(read()); });
}

}  // namespace

absl::Status AddEngineGauges(MetricsRegistry& metrics, const std::string& phase,
                             std::function<EngineGaugeValues()> read) {
  const MetricLabels labels = {{"phase", phase}};
  const EngineGaugeValues now = read();
  using V = EngineGaugeValues;
  TANDEM_RETURN_IF_ERROR(AddPickedGauge(metrics, labels, read, "tandem_engine_queued_requests",
                                        "Requests waiting for the engine.",
                                        [](const V& v) { return v.queued_requests; }));
  if (now.queued_tokens.has_value()) {
    TANDEM_RETURN_IF_ERROR(AddPickedGauge(metrics, labels, read, "tandem_engine_queued_tokens",
                                          "Prompt tokens of the requests waiting for the engine.",
                                          [](const V& v) { return v.queued_tokens.value_or(0); }));
  }
  TANDEM_RETURN_IF_ERROR(AddPickedGauge(metrics, labels, read, "tandem_engine_running_requests",
                                        "Requests in the batch the engine is running.",
                                        [](const V& v) { return v.running_requests; }));
  if (now.context_tokens.has_value()) {
    TANDEM_RETURN_IF_ERROR(AddPickedGauge(metrics, labels, read, "tandem_engine_context_tokens",
                                          "Context tokens of the requests in the running batch.",
                                          [](const V& v) { return v.context_tokens.value_or(0); }));
  }
  TANDEM_RETURN_IF_ERROR(AddPickedGauge(metrics, labels, read, "tandem_engine_kv_blocks_free", "Free KV cache blocks.",
                                        [](const V& v) { return v.blocks_free; }));
  return AddPickedGauge(metrics, labels, read, "tandem_engine_kv_blocks_used", "KV cache blocks in use.",
                        [](const V& v) { return v.blocks_total - v.blocks_free; });
}

}  // namespace tandem
