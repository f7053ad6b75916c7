// An engine thread's heartbeat, for the progress watchdog (server/daemon_server.h WatchProgress;
// RELIABILITY.md F8: an engine hung while its process and health service still answer). The engine
// thread beats each time it comes around its loop (its wait wakes at least every 100 ms when idle) and
// after each model step; anyone reads the last beat without a lock. A beat older than the stall timeout
// means the engine thread is stuck (a hung kernel, a deadlock), or inside one step longer than that.
#ifndef TANDEM_WORKER_HEARTBEAT_H_
#define TANDEM_WORKER_HEARTBEAT_H_

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tandem {

class Heartbeat {
 public:
  Heartbeat() { Beat(); }
  void Beat() { unix_ns_.store(absl::ToUnixNanos(absl::Now()), std::memory_order_relaxed); }
  absl::Time last() const { return absl::FromUnixNanos(unix_ns_.load(std::memory_order_relaxed)); }

 private:
  std::atomic<int64_t> unix_ns_{0};
};

}  // namespace tandem

#endif  // TANDEM_WORKER_HEARTBEAT_H_
