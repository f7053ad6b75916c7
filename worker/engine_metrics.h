// The load gauges every engine exports (common/metrics.h), labelled phase="prefill|decode|colocated" and
// read from the engine's Load() at scrape time:
//
//   tandem_engine_queued_requests   requests waiting for the engine
//   tandem_engine_queued_tokens     their prompt tokens (engines that batch prompts)
//   tandem_engine_running_requests  requests in the batch the engine runs
//   tandem_engine_context_tokens    context tokens of that batch (engines that decode)
//   tandem_engine_kv_blocks_free / _used
#ifndef TANDEM_WORKER_ENGINE_METRICS_H_
#define TANDEM_WORKER_ENGINE_METRICS_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "common/metrics.h"

namespace tandem {

struct EngineGaugeValues {
  double queued_requests = 0;
  std::optional<double> queued_tokens;   // unset: the engine has no such gauge
  double running_requests = 0;
  std::optional<double> context_tokens;  // unset: the engine has no such gauge
  double blocks_free = 0;
  double blocks_total = 0;
};

// Registers the gauges; `read` (the engine's Load(), converted) decides which optional ones exist by
// what it returns now, and must stay valid for every Render of `metrics`.
absl::Status AddEngineGauges(MetricsRegistry& metrics, const std::string& phase,
                             std::function<EngineGaugeValues()> read);

}  // namespace tandem

#endif  // TANDEM_WORKER_ENGINE_METRICS_H_
