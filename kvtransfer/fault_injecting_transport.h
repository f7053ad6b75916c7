// A KvTransport wrapper that injects the transfer faults of RELIABILITY.md F2, F5 and F7, for fault
// tests (STYLE.md rule 7: a real implementation, not a mock).
//
// The wrapper hands the wrapped transport a sink that applies the faults on their way to a
// ValidatingKvSink around the caller's sink, and checks coverage itself after the wrapped Pull returns.
// So a chunk dropped or corrupted after the wrapped transport's own checks is caught by the same
// receive-side check (kv_chunking.h) as a fault on the wire: DATA_LOSS "incomplete KV transfer: ...".
//
// Chunks are counted from 0 in arrival order. Options are read once at the start of each Pull.
//
// Thread safety: as KvTransport; set_options may be called while pulls run (they keep the old ones).
#ifndef TANDEM_KVTRANSFER_FAULT_INJECTING_TRANSPORT_H_
#define TANDEM_KVTRANSFER_FAULT_INJECTING_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kvtransfer/kv_transport.h"

namespace tandem {

struct KvFaultOptions {
  // UNAVAILABLE without calling the wrapped transport (the peer is gone before the first byte).
  bool fail_before_first_byte = false;
  // >= 0: once this many chunks have reached the sink, the next one fails with UNAVAILABLE (the peer
  // died mid-transfer).
  int32_t fail_after_chunks = -1;
  // >= 0: this chunk silently never reaches the sink (a lost chunk).
  int32_t drop_chunk = -1;
  // >= 0: this chunk reaches the validating sink with its K one byte short (a size mismatch).
  int32_t corrupt_size_chunk = -1;
  // Slept before each chunk reaches the sink (a slow link).
  absl::Duration delay_per_chunk = absl::ZeroDuration();
  // >= 0: on this chunk the transfer stalls until the deadline, then fails with DEADLINE_EXCEEDED (a
  // peer alive but not completing; with no deadline it fails at once with UNAVAILABLE instead).
  int32_t stall_at_chunk = -1;
};

class FaultInjectingKvTransport : public KvTransport {
 public:
  FaultInjectingKvTransport(std::unique_ptr<KvTransport> inner, KvFaultOptions options);

  std::string_view name() const override { return name_; }
  absl::StatusOr<PullStats> Pull(const KvHandle& handle, KvSink& sink, absl::Time deadline) override;

  void set_options(const KvFaultOptions& options);
  KvTransport& inner() { return *inner_; }

 private:
  const std::unique_ptr<KvTransport> inner_;
  const std::string name_;  // "fault(<inner>)"
  absl::Mutex mu_;
  KvFaultOptions options_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tandem

#endif  // TANDEM_KVTRANSFER_FAULT_INJECTING_TRANSPORT_H_
