#include "kvtransfer/grpc_transport.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "kvtransfer/kv_chunking.h"
#include "kvtransfer/kv_proto.h"
#include "proto/grpc_status.h"

namespace tandem {
namespace {

using worker::v1::KvChunk;
using worker::v1::PullKvRequest;

std::atomic<int64_t> reactors_constructed{0};
std::atomic<int64_t> reactors_destroyed{0};

// Streams one lease. Every callback that can end the call (the constructor, OnWriteDone) runs
// serialized with the others, so Finish is called exactly once; OnCancel only raises a flag because it
// may race with OnWriteDone (a write is always in flight until Finish, and cancellation fails it, so
// the call still ends through OnWriteDone).
class PullKvReactor : public grpc::ServerWriteReactor<KvChunk> {
 public:
  PullKvReactor(const PullKvRequest& request, KvSource* source)
      : source_(source), lease_id_(request.lease_id()) {
    reactors_constructed.fetch_add(1, std::memory_order_relaxed);
    if (absl::Status s = Start(request); !s.ok()) {
      Finish(ToGrpcStatus(s));
      return;
    }
    WriteNext();
  }
  ~PullKvReactor() override { reactors_destroyed.fetch_add(1, std::memory_order_relaxed); }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      TANDEM_LOG(INFO, "kv") << "PullKv lease " << lease_id_ << ": client gone after "
                             << chunks_sent_ << " chunks";
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "kv pull cancelled by the client"));
      return;
    }
    ++chunks_sent_;
    WriteNext();
  }
  void OnCancel() override { cancelled_.store(true, std::memory_order_relaxed); }
  void OnDone() override { delete this; }

 private:
  absl::Status Start(const PullKvRequest& request) {
    if (source_ == nullptr) return absl::UnavailableError("PullKv: this worker has no KV source");
    TANDEM_ASSIGN_OR_RETURN(const KvLayout wanted,
                            LayoutFromProto(request.layout(), "request.layout"));
    if (absl::Status s = CheckSameLayout(source_->layout(), wanted); !s.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("PullKv lease ", lease_id_, ": ", s.message()));
    }
    TANDEM_ASSIGN_OR_RETURN(num_tokens_, source_->LeaseTokens(lease_id_));
    num_layers_ = wanted.num_layers;
    bytes_per_token_ = wanted.bytes_per_token_per_layer();
    tokens_per_chunk_ = TokensPerChunk(wanted, request.max_chunk_bytes());
    return absl::OkStatus();
  }

  // Reads the next chunk into the one reused message (its strings keep their capacity, so after the
  // first chunk nothing is allocated or zero-filled) and starts writing it; finishes after the last.
  void WriteNext() {
    if (cancelled_.load(std::memory_order_relaxed)) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "kv pull cancelled by the client"));
      return;
    }
    if (layer_ >= num_layers_ || num_tokens_ == 0) {
      Finish(grpc::Status::OK);
      return;
    }
    const int32_t count = std::min(tokens_per_chunk_, num_tokens_ - token_);
    const size_t size = static_cast<size_t>(count) * bytes_per_token_;
    chunk_.set_layer(layer_);
    chunk_.set_token_begin(token_);
    chunk_.set_num_tokens(count);
    std::string* k = chunk_.mutable_k();
    std::string* v = chunk_.mutable_v();
    k->resize(size);
    v->resize(size);
    if (absl::Status s = source_->ReadTokens(lease_id_, layer_, token_, count, k->data(), v->data());
        !s.ok()) {
      TANDEM_LOG(WARNING, "kv") << "PullKv lease " << lease_id_ << " layer " << layer_
                                << ": source read failed: " << s;
      Finish(ToGrpcStatus(s));
      return;
    }
    token_ += count;
    if (token_ >= num_tokens_) {
      token_ = 0;
      ++layer_;
    }
    StartWrite(&chunk_);
  }

  KvSource* const source_;
  const std::string lease_id_;
  int32_t num_layers_ = 0;
  int32_t num_tokens_ = 0;
  int64_t bytes_per_token_ = 0;  // K or V of one token of one layer
  int32_t tokens_per_chunk_ = 1;
  int32_t layer_ = 0;            // the next chunk to read
  int32_t token_ = 0;
  int64_t chunks_sent_ = 0;
  KvChunk chunk_;                // the one chunk in flight
  std::atomic<bool> cancelled_{false};
};

}  // namespace

grpc::ServerWriteReactor<KvChunk>* NewPullKvReactor(grpc::CallbackServerContext* context,
                                                    const PullKvRequest* request,
                                                    KvSource* source) {
  return new PullKvReactor(*request, source);
}

PullKvReactorCounts GetPullKvReactorCounts() {
  return {reactors_constructed.load(), reactors_destroyed.load()};
}

// Several pulls from one worker share the connection (KV bulk is the only traffic on it); at most 64
// peers are kept.
GrpcKvTransport::GrpcKvTransport(GrpcKvTransportOptions options)
    : options_(options), stubs_(64, options.max_receive_message_bytes) {}

absl::StatusOr<PullStats> GrpcKvTransport::Pull(const KvHandle& handle, KvSink& sink,
                                                absl::Time deadline) {
  const absl::Time start = absl::Now();
  TANDEM_RETURN_IF_ERROR(CheckPullStart(handle, sink, deadline));
  auto stub = stubs_.Get(handle.source);

  PullKvRequest request;
  request.set_lease_id(handle.lease_id);
  LayoutToProto(sink.layout(), request.mutable_layout());
  request.set_max_chunk_bytes(options_.max_chunk_bytes);

  grpc::ClientContext context;
  if (deadline != absl::InfiniteFuture()) context.set_deadline(absl::ToChronoTime(deadline));
  std::unique_ptr<grpc::ClientReader<KvChunk>> reader = stub->PullKv(&context, request);

  ValidatingKvSink validating(sink);
  absl::Status sink_status;
  KvChunk chunk;
  while (reader->Read(&chunk)) {
    sink_status = validating.WriteChunk(chunk.layer(), chunk.token_begin(), chunk.num_tokens(),
                                        chunk.k(), chunk.v());
    if (!sink_status.ok()) {
      // Stop the source at once rather than reading the rest of a transfer we will discard.
      context.TryCancel();
      while (reader->Read(&chunk)) {
      }
      break;
    }
  }
  const grpc::Status grpc_status = reader->Finish();
  if (!sink_status.ok()) return sink_status;
  if (!grpc_status.ok()) {
    const absl::Status s = FromGrpcStatus(grpc_status);
    return absl::Status(s.code(), absl::StrCat("kv pull of lease ", handle.lease_id, " from ",
                                               handle.source, ": ", s.message()));
  }
  TANDEM_RETURN_IF_ERROR(validating.Finish());
  return PullStats{validating.bytes(), validating.chunks(), absl::Now() - start};
}

}  // namespace tandem
