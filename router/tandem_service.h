// TandemService: the public tandem.v1.Tandem API on top of a RouterState.
//
// Generate: one GenerateReactor per call (generate_reactor.h). Tokenize and ListModels answer from
// the served model directly. Errors are gRPC statuses naming the field (request_validation.h).
//
// The methods are registered raw (bytes in and out) and parse their requests themselves: with typed
// handlers, a request protobuf refuses (a string field that is not UTF-8, bytes that are not a
// message) never reaches the service and gRPC answers UNIMPLEMENTED with no message (issue 11 item 7);
// here it is INVALID_ARGUMENT naming the field (ParseRequestNamingTheField).
//
// Thread safety: gRPC calls the handlers from many threads; the service keeps no state of its own.
#ifndef TANDEM_ROUTER_TANDEM_SERVICE_H_
#define TANDEM_ROUTER_TANDEM_SERVICE_H_

#include "proto/tandem.grpc.pb.h"
#include "router/router_state.h"

namespace tandem::router {

class TandemService final
    : public v1::Tandem::WithRawCallbackMethod_Generate<v1::Tandem::WithRawCallbackMethod_Tokenize<
          v1::Tandem::WithRawCallbackMethod_ListModels<v1::Tandem::Service>>> {
 public:
  explicit TandemService(RouterState& state) : state_(state) {}

  // Each takes a serialized request and answers serialized responses of the method's proto types.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Generate(grpc::CallbackServerContext* context,
                                                      const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;

 private:
  RouterState& state_;
};

}  // namespace tandem::router

#endif  // TANDEM_ROUTER_TANDEM_SERVICE_H_
