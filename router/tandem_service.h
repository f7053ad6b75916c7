// TandemService: the public tandem.v1.Tandem API on top of a RouterState.
//
// Generate: one GenerateReactor per call (generate_reactor.h). Tokenize and ListModels answer from
// the served model directly. Errors are gRPC statuses naming the field (request_validation.h).
//
// Thread safety: gRPC calls the handlers from many threads; the service keeps no state of its own.
#ifndef TANDEM_ROUTER_TANDEM_SERVICE_H_
#define TANDEM_ROUTER_TANDEM_SERVICE_H_

#include "proto/tandem.grpc.pb.h"
#include "router/router_state.h"

namespace tandem::router {

class TandemService final : public v1::Tandem::CallbackService {
 public:
  explicit TandemService(RouterState& state) : state_(state) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(grpc::CallbackServerContext* context,
                                                          const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context, const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;

 private:
  RouterState& state_;
};

}  // namespace tandem::router

#endif  // TANDEM_ROUTER_TANDEM_SERVICE_H_
