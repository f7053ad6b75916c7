// An in-process KvTransport for tests and single-process clusters: the "source" of a KvHandle names a
// KvSource registered in an InProcessKvRegistry, and Pull copies chunks straight from it into the
// sink with the same chunk plan and the same checks as the gRPC transport (kv_chunking.h).
//
// Errors follow the KvTransport contract: a source name that is not registered is UNAVAILABLE (the
// in-process equivalent of nothing listening), a layout mismatch FAILED_PRECONDITION, an unknown lease
// NOT_FOUND, a passed deadline DEADLINE_EXCEEDED. Source reads run on the caller's thread, so the
// deadline is checked between chunks: a ReadTokens that blocks forever blocks Pull.
//
// Thread safety: InProcessKvRegistry and InProcessKvTransport are thread-safe. Unregister blocks until
// every Pull reading from that source has returned, so the source may be destroyed right after it.
#ifndef TANDEM_KVTRANSFER_INPROC_TRANSPORT_H_
#define TANDEM_KVTRANSFER_INPROC_TRANSPORT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "kvtransfer/kv_transport.h"

namespace tandem {

class InProcessKvRegistry {
 public:
  // The registry MakeKvTransport("inproc") pulls from.
  static InProcessKvRegistry& Global();

  // `source` is not owned and must stay valid until Unregister(name) returns. ALREADY_EXISTS when the
  // name is taken; INVALID_ARGUMENT for an empty name or a null source.
  absl::Status Register(const std::string& name, KvSource* source);
  // NOT_FOUND when the name is not registered. New pulls fail at once; running ones finish first.
  absl::Status Unregister(const std::string& name);

 private:
  friend class InProcessKvTransport;
  struct Entry {
    KvSource* source = nullptr;
    int32_t pulls = 0;       // pulls reading from the source now
    bool closing = false;    // Unregister is waiting for `pulls` to drop to 0
  };
  // Pins the source for one pull (UNAVAILABLE when not registered); Release unpins it.
  absl::StatusOr<KvSource*> Acquire(const std::string& name);
  void Release(const std::string& name);

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

struct InProcessKvTransportOptions {
  // Upper bound on K plus V bytes per chunk (0: kDefaultMaxChunkBytes), as in PullKvRequest.
  int64_t max_chunk_bytes = 0;
};

class InProcessKvTransport : public KvTransport {
 public:
  // `registry` is not owned and must outlive the transport.
  explicit InProcessKvTransport(InProcessKvRegistry* registry = &InProcessKvRegistry::Global(),
                                InProcessKvTransportOptions options = {});

  std::string_view name() const override { return "inproc"; }
  absl::StatusOr<PullStats> Pull(const KvHandle& handle, KvSink& sink, absl::Time deadline) override;

 private:
  InProcessKvRegistry* registry_;
  InProcessKvTransportOptions options_;
};

}  // namespace tandem

#endif  // TANDEM_KVTRANSFER_INPROC_TRANSPORT_H_
