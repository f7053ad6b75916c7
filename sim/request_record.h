// One request's record, as the simulator produces it and as tandem bench measures it on a live
// cluster: the common currency of sim/metrics.h, so that the load generator shares the metrics and the
// workloads (the tandem_workload library) without linking the simulator.
#ifndef TANDEM_SIM_REQUEST_RECORD_H_
#define TANDEM_SIM_REQUEST_RECORD_H_

#include <cstdint>

namespace tandem::sim {

// One request's life. Times are seconds from the start of the run; -1 where the stage never happened.
struct RequestRecord {
  int64_t id = 0;
  int64_t prompt_len = 0;
  int64_t output_len = 0;
  int prefill_instance = -1;  // colocated mode: the colocated instance
  int decode_instance = -1;   // colocated mode: the same instance
  bool rejected = false;      // the policy rejected it (reason in Simulator::reject_reasons)
  bool finished = false;
  double arrival_s = -1;
  double prefill_start_s = -1;
  double first_token_s = -1;  // end of prefill
  double kv_start_s = -1;     // transfer start (disaggregated)
  double kv_end_s = -1;
  double decode_start_s = -1;  // first decode step that included it
  double finish_s = -1;
  // The request's own SLO (a class of a mixed workload, a client's SLO); 0: the run's SloSpec.
  double ttft_slo_ms = 0.0;
  double tpot_slo_ms = 0.0;
  int32_t slo_class = -1;  // index into the workload's class names; -1: none
};

}  // namespace tandem::sim

#endif  // TANDEM_SIM_REQUEST_RECORD_H_
