// Moving a prompt's KV cache from a prefill worker to a decode worker.
//
// The prefill side exports leased KV through a KvSource; the decode side imports it into blocks it
// reserved beforehand through a KvSink; a KvTransport moves the bytes between them. The unit on the
// wire is a chunk: K and V of a range of tokens of one layer, token-major
// ([num_tokens, num_kv_heads, head_dim] each), in the layout's dtype.
//
// Contracts:
// - A KvSource's leased KV is immutable until the lease is released or expires, so ReadTokens may run
//   on any thread while the engine keeps running other sequences.
// - A KvSink's destination blocks are reserved before Pull starts and are touched by nobody else until
//   Pull returns, so WriteTokens may run on the transport's thread.
// - Pull succeeds only when every token of every layer has been written exactly once; anything less
//   (a dropped chunk, a short stream, a size mismatch) is an error and the sink's contents must not be
//   used (RELIABILITY.md F5).
// - Pull honours `deadline` and returns DEADLINE_EXCEEDED past it; a peer that is gone is UNAVAILABLE; a
//   layout mismatch is FAILED_PRECONDITION; an unknown or expired lease is NOT_FOUND.
//
// Thread safety: KvTransport::Pull may be called concurrently from many threads. KvSource methods are
// called concurrently by transports. A KvSink is used by one Pull at a time.
#ifndef TANDEM_KVTRANSFER_KV_TRANSPORT_H_
#define TANDEM_KVTRANSFER_KV_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "types/dtype.h"

namespace tandem {

// Both sides compare this before any byte moves.
struct KvLayout {
  std::string model_fingerprint;
  int32_t num_layers = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  DType dtype = DType::kF32;

  int64_t bytes_per_token_per_layer() const {  // K or V alone
    return static_cast<int64_t>(num_kv_heads) * head_dim * DTypeSize(dtype);
  }
  int64_t bytes_per_token() const { return 2 * bytes_per_token_per_layer() * num_layers; }
};

bool SameLayout(const KvLayout& a, const KvLayout& b);
// FailedPrecondition describing the first difference, or OK.
absl::Status CheckSameLayout(const KvLayout& expected, const KvLayout& actual);

// Where a prompt's KV lives (mirrors worker.proto KvHandle; engines never see generated types).
struct KvHandle {
  std::string lease_id;
  std::string source;     // host:port of the prefill worker (or an in-process name)
  int32_t num_tokens = 0;
  KvLayout layout;
  int64_t lease_ms = 0;
  std::string transport = "grpc";
};

class KvSource {
 public:
  virtual ~KvSource() = default;
  // NotFound for an unknown or expired lease. Renews the lease while a pull is under way.
  virtual absl::StatusOr<int32_t> LeaseTokens(const std::string& lease_id) = 0;
  virtual const KvLayout& layout() const = 0;
  // Copies K and V of tokens [token_begin, token_begin + num_tokens) of `layer` into host memory
  // (each num_tokens * bytes_per_token_per_layer bytes).
  virtual absl::Status ReadTokens(const std::string& lease_id, int32_t layer, int32_t token_begin,
                                  int32_t num_tokens, void* k_out, void* v_out) = 0;
};

class KvSink {
 public:
  virtual ~KvSink() = default;
  virtual const KvLayout& layout() const = 0;
  // Tokens the sink expects per layer.
  virtual int32_t num_tokens() const = 0;
  virtual absl::Status WriteTokens(int32_t layer, int32_t token_begin, int32_t num_tokens,
                                   const void* k, const void* v) = 0;
};

struct PullStats {
  int64_t bytes = 0;
  int32_t chunks = 0;
  absl::Duration elapsed;
};

class KvTransport {
 public:
  virtual ~KvTransport() = default;
  virtual std::string_view name() const = 0;
  // Moves all of the handle's KV into `sink` (see the contract above).
  virtual absl::StatusOr<PullStats> Pull(const KvHandle& handle, KvSink& sink, absl::Time deadline) = 0;
};

}  // namespace tandem

#endif  // TANDEM_KVTRANSFER_KV_TRANSPORT_H_
