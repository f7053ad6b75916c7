// GenerateReactor: the gRPC adapter of one public Generate call. The request logic lives in
// FrontDoorSession (router/front_door.h); this class turns the session's chunks and final report into
// serialized GenerateResponse messages (one write in flight at a time, the rest queued; the method is
// registered raw, see tandem_service.h), and the client's cancellation or a broken stream into
// FrontDoorSession::Cancel.
//
// Lifetime: owns itself and deletes itself in OnDone, after giving the session its reference back.
// Thread safety: gRPC reactions and session callbacks may run on different threads; state is guarded
// by mu_ and no gRPC operation is started while it is held.
#ifndef TANDEM_ROUTER_GENERATE_REACTOR_H_
#define TANDEM_ROUTER_GENERATE_REACTOR_H_

#include <deque>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "proto/tandem.pb.h"
#include "router/front_door.h"
#include "router/router_state.h"

namespace tandem::router {

class GenerateReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer>, public ResponseSink {
 public:
  // Starts the request (copied as needed; it need not outlive the call); `context` is gRPC's and
  // outlives OnDone. `client`: the caller's API key identity ("" without keys), for the per-client bound.
  GenerateReactor(RouterState& state, grpc::CallbackServerContext* context, const v1::GenerateRequest& request,
                  std::string client = "");

  // ResponseSink.
  void OnChunk(GenerateChunk chunk) override;
  void OnFinal(GenerateFinal final) override;
  void OnDone(absl::Status status) override;

  // grpc::ServerWriteReactor.
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // Starts the next write, or Finish once the queue is drained and the outcome is known.
  void Pump();

  FrontDoorSession* session_ = nullptr;
  absl::Mutex mu_;
  std::deque<v1::GenerateResponse> writes_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer current_write_;  // owned by the write in flight
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_status_ ABSL_GUARDED_BY(mu_);
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
};

// The public API's message for a final report.
void ToProto(const GenerateFinal& final, v1::GenerateResponse* response);

}  // namespace tandem::router

#endif  // TANDEM_ROUTER_GENERATE_REACTOR_H_
