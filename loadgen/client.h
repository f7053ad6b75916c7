// LoadClient: the open-loop client of `tandem bench`. It sends each request at its scheduled time on
// its own asynchronous gRPC call (the callback API, one ClientReadReactor per request), so a slow
// request never delays the next arrival, and records what the client sees: send time, first-token
// time, every inter-chunk gap, end time, token counts, status, and the router's Final (timing
// breakdown, SLO report, workers).
//
// Times are seconds from the start of Run() on the steady clock. Only --max-concurrency may hold an
// arrival back (as vLLM's semaphore does); the delay shows as start_s - scheduled_s.
//
// Thread safety: FetchModel and Run may be called from one thread at a time. Run blocks until every
// request has ended; reactor callbacks run on gRPC's threads and touch only their own record.
#ifndef TANDEM_LOADGEN_CLIENT_H_
#define TANDEM_LOADGEN_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "loadgen/workload.h"

namespace tandem::loadgen {

struct ModelInfo {
  std::string name;
  int64_t vocab_size = 0;
  int64_t max_context = 0;
};

// The router's Final message, copied out of the proto (generated types stop at this layer).
struct RouterFinal {
  std::string finish_reason;  // "length", "stop_token", "stop_string", "unspecified"
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  // Timing breakdown (ms): the five stages, then the router's own TTFT/TPOT/E2E.
  double prefill_queue_ms = 0, prefill_compute_ms = 0, kv_transfer_ms = 0, decode_queue_ms = 0,
         decode_compute_ms = 0;
  double ttft_ms = 0, tpot_ms = 0, e2e_ms = 0;
  bool ttft_met = false, tpot_met = false;
  std::string missed_stage;  // "" when met, else "prefill_queue", ..., "decode_compute"
  std::string explanation;
  std::string request_id;
  std::string prefill_worker, decode_worker;
};

struct RequestResult {
  int64_t index = 0;                 // BenchRequest::index
  int64_t input_len = 0;             // prompt tokens sent
  int64_t requested_output_len = 0;  // max_tokens sent
  int64_t output_len = 0;            // tokens received
  double scheduled_s = 0;            // when the arrival process wanted it sent
  double start_s = -1;               // when it was sent
  double first_token_s = -1;         // first message carrying tokens; -1: none
  double end_s = -1;                 // last message received (the Final), or the error
  std::vector<double> itls_ms;       // gaps between consecutive token-carrying messages
  int status_code = -1;              // gRPC canonical code (0 = OK); -1: never ended
  std::string status_name;           // "OK", "RESOURCE_EXHAUSTED", ...
  std::string error;                 // the status message when not OK
  bool has_final = false;
  RouterFinal final;
  bool interrupted_by_user = false;  // cancelled because the run was interrupted (Ctrl-C)

  bool ok() const { return status_code == 0; }
};

struct RunOptions {
  std::string model;          // sent as GenerateRequest.model ("" = the cluster's only model)
  int64_t vocab_size = 0;     // prompt ids are drawn in [0, vocab_size)
  uint64_t seed = 0;          // prompt ids: PromptTokenIds(seed, index, ...)
  double ttft_slo_ms = 0;     // sent as Slo (0: no objective)
  double tpot_slo_ms = 0;
  bool best_effort = false;
  int64_t max_concurrency = 0;  // > 0: at most this many requests in flight
  absl::Duration request_timeout = absl::Minutes(10);
  bool progress = false;        // progress on stderr
  bool progress_tty = true;     // redraw one line (a terminal); else a plain line every 10 s
  std::string progress_label;   // e.g. "rate 4.00"
  // Set (from a signal handler) to stop: nothing more is sent, requests in flight are cancelled, and
  // Run returns the results of the requests that were sent (interrupted_by_user marks the cancelled).
  const std::atomic<bool>* interrupt = nullptr;
};

// One line with \r updates: "[=====>    ] 12/20 done, 3 in flight, 4.1 req/s, 3.2 s".
std::string FormatProgress(std::string_view label, int64_t done, int64_t total, int64_t in_flight,
                           double elapsed_s);

class LoadClient {
 public:
  explicit LoadClient(const std::string& router_address);
  ~LoadClient();
  LoadClient(const LoadClient&) = delete;
  LoadClient& operator=(const LoadClient&) = delete;

  // ListModels, then the model named `name` (empty: the only one). Unavailable with a message naming
  // the address when the router cannot be reached within `timeout`; NotFound for an unknown model.
  absl::StatusOr<ModelInfo> FetchModel(std::string_view name, absl::Duration timeout);

  // Sends every request at its arrival time and waits for all to end. Results are in request order.
  std::vector<RequestResult> Run(std::span<const BenchRequest> requests, const RunOptions& options);

 private:
  struct Impl;
  std::string address_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem::loadgen

#endif  // TANDEM_LOADGEN_CLIENT_H_
