// Test doubles for the KV transfer: an in-memory KvSource holding random bytes per lease, and a KvSink
// that records what arrived. Used by the kvtransfer tests and by bench/kv_transfer_bench.cc.
//
// Thread safety: FakeKvSource is thread-safe (leases may be added while transports read). A
// RecordingKvSink is used by one Pull at a time, like any KvSink.
#ifndef TANDEM_KVTRANSFER_FAKE_KV_H_
#define TANDEM_KVTRANSFER_FAKE_KV_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "kvtransfer/kv_transport.h"

namespace tandem {

// A layout of `num_layers` layers, 2 KV heads of head_dim 8, fingerprint "fake-model".
KvLayout FakeLayout(int32_t num_layers, DType dtype);

class FakeKvSource : public KvSource {
 public:
  explicit FakeKvSource(KvLayout layout, uint64_t seed = 1);

  // A new lease of `num_tokens` tokens of random K and V per layer; returns its id.
  std::string AddLease(int32_t num_tokens);
  void RemoveLease(const std::string& lease_id);
  // [num_tokens, num_kv_heads, head_dim] bytes of one layer of a lease (the lease must exist).
  const std::string& K(const std::string& lease_id, int32_t layer) const;
  const std::string& V(const std::string& lease_id, int32_t layer) const;

  // From now on ReadTokens blocks until Unstall() (or 60 s pass): a source that stops producing.
  void Stall() { stalled_.store(true); }
  void Unstall() { unstall_.Notify(); }
  // ReadTokens calls so far.
  int64_t reads() const { return reads_.load(); }

  absl::StatusOr<int32_t> LeaseTokens(const std::string& lease_id) override;
  const KvLayout& layout() const override { return layout_; }
  absl::Status ReadTokens(const std::string& lease_id, int32_t layer, int32_t token_begin,
                          int32_t num_tokens, void* k_out, void* v_out) override;

 private:
  struct Lease {
    int32_t num_tokens = 0;
    std::vector<std::string> k;  // per layer: [num_tokens, num_kv_heads, head_dim]
    std::vector<std::string> v;
  };
  std::shared_ptr<const Lease> Find(const std::string& lease_id) const;

  const KvLayout layout_;
  uint64_t seed_;
  mutable absl::Mutex mu_;
  int64_t next_lease_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<std::string, std::shared_ptr<const Lease>> leases_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> stalled_{false};
  absl::Notification unstall_;
  std::atomic<int64_t> reads_{0};
};

class RecordingKvSink : public KvSink {
 public:
  RecordingKvSink(KvLayout layout, int32_t num_tokens);

  const KvLayout& layout() const override { return layout_; }
  int32_t num_tokens() const override { return num_tokens_; }
  absl::Status WriteTokens(int32_t layer, int32_t token_begin, int32_t num_tokens, const void* k,
                           const void* v) override;

  // [num_tokens, num_kv_heads, head_dim] bytes of one layer as written so far (zeros elsewhere).
  const std::string& K(int32_t layer) const { return k_[layer]; }
  const std::string& V(int32_t layer) const { return v_[layer]; }
  int32_t writes() const { return writes_; }
  // The write with this index (from 0) and every later one fail with INTERNAL (a sink error).
  void FailFromWrite(int32_t index) { fail_from_write_ = index; }

 private:
  const KvLayout layout_;
  const int32_t num_tokens_;
  std::vector<std::string> k_;
  std::vector<std::string> v_;
  int32_t writes_ = 0;
  int32_t fail_from_write_ = -1;
};

// OK when `sink` holds exactly the lease's K and V for every layer; INTERNAL naming the first
// differing layer and byte otherwise.
absl::Status CheckSameKv(const FakeKvSource& source, const std::string& lease_id,
                         const RecordingKvSink& sink);

}  // namespace tandem

#endif  // TANDEM_KVTRANSFER_FAKE_KV_H_
