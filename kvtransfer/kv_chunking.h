// The chunk plan and the receive-side checks every KvTransport shares.
//
// A source splits each layer's tokens into chunks of TokensPerChunk() tokens (the last one shorter),
// layer by layer. A receiver wraps the caller's KvSink in a ValidatingKvSink and calls Finish() after
// the last chunk: together they enforce the KvTransport contract that Pull succeeds only when every
// (layer, token) was written exactly once with the right byte sizes (RELIABILITY.md F5). Because the
// check sits on the receive side, any fault between the source and the sink (a dropped chunk, a short
// stream, a wrong size) is caught by the same code whatever the transport.
//
// Errors: DATA_LOSS naming the layer and token range, e.g.
//   "incomplete KV transfer: layer 3 tokens 16..31 missing" (ranges are inclusive).
//
// Thread safety: CoverageTracker and ValidatingKvSink are used by one Pull at a time (like KvSink).
#ifndef TANDEM_KVTRANSFER_KV_CHUNKING_H_
#define TANDEM_KVTRANSFER_KV_CHUNKING_H_

#include <cstdint>
#include <map>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kvtransfer/kv_transport.h"

namespace tandem {

// Upper bound on K plus V bytes per chunk when the puller asks for 0.
inline constexpr int64_t kDefaultMaxChunkBytes = int64_t{1} << 20;
// Larger requests are clamped so a chunk stays well under the client's 64 MiB receive limit.
inline constexpr int64_t kMaxChunkBytesLimit = int64_t{32} << 20;

// Tokens per chunk so that K + V of one chunk fit `max_chunk_bytes` (0: the default, clamped to
// kMaxChunkBytesLimit); at least 1 even when one token is larger.
int32_t TokensPerChunk(const KvLayout& layout, int64_t max_chunk_bytes);

// Which (layer, token) pairs have arrived. Memory is O(gaps), not O(tokens): chunks arriving in order
// merge into one interval per layer.
class CoverageTracker {
 public:
  CoverageTracker(int32_t num_layers, int32_t num_tokens);

  // DATA_LOSS when the layer or token range is out of bounds or empty, or any token of it has already
  // been covered; nothing is recorded then.
  absl::Status Add(int32_t layer, int32_t token_begin, int32_t num_tokens);
  // DATA_LOSS naming the first missing range (and how many tokens are missing in all), or OK.
  absl::Status CheckComplete() const;

 private:
  int32_t num_layers_;
  int32_t num_tokens_;
  // Per layer: covered [begin, end) intervals keyed by begin, never touching each other.
  std::vector<std::map<int32_t, int32_t>> covered_;
};

// The checks every Pull makes before moving a byte: the deadline has not passed (DEADLINE_EXCEEDED),
// the sink's layout equals the handle's (FAILED_PRECONDITION naming the field), and the sink expects the
// handle's token count (INVALID_ARGUMENT).
absl::Status CheckPullStart(const KvHandle& handle, const KvSink& sink, absl::Time deadline);

// A KvSink that checks every chunk before forwarding it to `inner` (not owned, must outlive this).
class ValidatingKvSink : public KvSink {
 public:
  explicit ValidatingKvSink(KvSink& inner);

  const KvLayout& layout() const override { return inner_.layout(); }
  int32_t num_tokens() const override { return inner_.num_tokens(); }
  // Sizes implied by the layout (k and v each num_tokens * bytes_per_token_per_layer bytes).
  absl::Status WriteTokens(int32_t layer, int32_t token_begin, int32_t num_tokens, const void* k,
                           const void* v) override;
  // For receivers that know the byte sizes on the wire: DATA_LOSS when `k` or `v` is not exactly
  // num_tokens * bytes_per_token_per_layer bytes, or the range fails the coverage check.
  absl::Status WriteChunk(int32_t layer, int32_t token_begin, int32_t num_tokens,
                          absl::string_view k, absl::string_view v);
  // Call after the last chunk: OK only when every (layer, token) was written exactly once.
  absl::Status Finish() const { return coverage_.CheckComplete(); }

  int64_t bytes() const { return bytes_; }
  int32_t chunks() const { return chunks_; }

 private:
  KvSink& inner_;
  CoverageTracker coverage_;
  int64_t bytes_ = 0;
  int32_t chunks_ = 0;
};

}  // namespace tandem

#endif  // TANDEM_KVTRANSFER_KV_CHUNKING_H_
