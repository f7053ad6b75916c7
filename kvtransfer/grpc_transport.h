// The gRPC host-staged KV transport: works across hosts and without GPUs.
//
// Client: GrpcKvTransport::Pull calls PrefillWorker.PullKv on handle.source (host:port) and writes each
// KvChunk into the sink as it arrives, so memory stays at one chunk whatever the prompt length. Every
// chunk goes through ValidatingKvSink (kv_chunking.h): a chunk with a layer or token range out of
// bounds, wrong k/v sizes, a token written twice, or a stream that ends with (layer, token) pairs
// missing is DATA_LOSS and the sink's contents must not be used. gRPC statuses map by canonical code
// (FromGrpcStatus): nothing listening is UNAVAILABLE, the deadline (set on the ClientContext)
// DEADLINE_EXCEEDED, and the source's FAILED_PRECONDITION / NOT_FOUND pass through.
//
// Server: NewPullKvReactor is what the prefill worker's CallbackService::PullKv returns. It refuses a
// layout mismatch (FAILED_PRECONDITION naming the field) and an unknown lease (NOT_FOUND), then streams
// layer by layer, chunks of TokensPerChunk(layout, request.max_chunk_bytes) tokens, reading each chunk
// with KvSource::ReadTokens just before writing it: one chunk in flight per call. A cancelled call
// finishes at the next write; the reactor deletes itself in OnDone.
//
// Thread safety: GrpcKvTransport is thread-safe (channels are cached per address and shared). The
// KvSource passed to NewPullKvReactor must outlive the call (in practice: the server). ReadTokens runs
// on a gRPC callback thread and must be a bounded copy, not a wait on other work.
#ifndef TANDEM_KVTRANSFER_GRPC_TRANSPORT_H_
#define TANDEM_KVTRANSFER_GRPC_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "kvtransfer/kv_transport.h"
#include "kvtransfer/peer_stubs.h"
#include "proto/worker.grpc.pb.h"

namespace tandem {

struct GrpcKvTransportOptions {
  // Upper bound on K plus V bytes per chunk asked of the source (0: the source's default, 1 MiB).
  int64_t max_chunk_bytes = 0;
  // The channel's receive limit; must exceed the largest chunk (sources clamp chunks to 32 MiB).
  int32_t max_receive_message_bytes = 64 << 20;
};

class GrpcKvTransport : public KvTransport {
 public:
  explicit GrpcKvTransport(GrpcKvTransportOptions options = {});

  std::string_view name() const override { return "grpc"; }
  absl::StatusOr<PullStats> Pull(const KvHandle& handle, KvSink& sink, absl::Time deadline) override;

 private:
  const GrpcKvTransportOptions options_;
  PrefillStubCache stubs_;
  // One channel (and its stub) per prefill worker address, kept for the transport's lifetime.
};

// The reactor for one PullKv call; `source` is not owned.
grpc::ServerWriteReactor<worker::v1::KvChunk>* NewPullKvReactor(
    grpc::CallbackServerContext* context, const worker::v1::PullKvRequest* request,
    KvSource* source);

// PullKv reactors constructed and destroyed since the process started (RELIABILITY.md L2: equal once
// the server is idle).
struct PullKvReactorCounts {
  int64_t constructed = 0;
  int64_t destroyed = 0;
};
PullKvReactorCounts GetPullKvReactorCounts();

}  // namespace tandem

#endif  // TANDEM_KVTRANSFER_GRPC_TRANSPORT_H_
