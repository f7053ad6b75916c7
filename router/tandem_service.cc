#include "router/tandem_service.h"

#include "absl/strings/str_cat.h"
#include "proto/grpc_status.h"
#include "router/generate_reactor.h"
#include "router/request_validation.h"
#include "server/cluster_secret.h"

namespace tandem::router {
namespace {

absl::Status DoTokenize(const RouterState& state, const v1::TokenizeRequest& request,
                        v1::TokenizeResponse* response) {
  if (absl::Status s = ValidateModelName(request.model(), state.model()); !s.ok()) return s;
  const int64_t limit = state.model().max_context * kMaxPromptBytesPerToken;
  if (static_cast<int64_t>(request.text().size()) > limit) {
    return absl::InvalidArgumentError(absl::StrCat("text: ", request.text().size(), " bytes, at most ", limit,
                                                   " are accepted"));
  }
  if (const int64_t bad = FindInvalidUtf8(request.text()); bad >= 0) {
    return absl::InvalidArgumentError(absl::StrCat("text: not valid UTF-8 (at byte ", bad, ")"));
  }
  absl::StatusOr<std::vector<int32_t>> ids = state.tokenizer().Encode(request.text(), request.add_special_tokens());
  if (!ids.ok()) return absl::InvalidArgumentError(absl::StrCat("text: ", ids.status().message()));
  response->mutable_ids()->Add(ids->begin(), ids->end());
  return absl::OkStatus();
}

// The call's `authorization` metadata ("" when absent).
absl::string_view Authorization(const grpc::CallbackServerContext& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  return it == metadata.end() ? absl::string_view() : absl::string_view(it->second.data(), it->second.size());
}

}  // namespace

grpc::ServerWriteReactor<v1::GenerateResponse>* TandemService::Generate(grpc::CallbackServerContext* context,
                                                                       const v1::GenerateRequest* request) {
  absl::StatusOr<std::string> client = state_.Authenticate(Authorization(*context));
  if (!client.ok()) return FinishedWriteReactor<v1::GenerateResponse>(ToGrpcStatus(client.status()));
  return new GenerateReactor(state_, context, request, *std::move(client));
}

grpc::ServerUnaryReactor* TandemService::Tokenize(grpc::CallbackServerContext* context,
                                                  const v1::TokenizeRequest* request,
                                                  v1::TokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status status = state_.api_keys().Check(Authorization(*context));
  if (status.ok()) status = DoTokenize(state_, *request, response);
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* TandemService::ListModels(grpc::CallbackServerContext* context,
                                                    const v1::ListModelsRequest* request,
                                                    v1::ListModelsResponse* response) {
  if (absl::Status auth = state_.api_keys().Check(Authorization(*context)); !auth.ok()) {
    grpc::ServerUnaryReactor* refused = context->DefaultReactor();
    refused->Finish(ToGrpcStatus(auth));
    return refused;
  }
  v1::ModelInfo* info = response->add_models();
  info->set_name(state_.model().name);
  info->set_vocab_size(state_.model().vocab_size);
  info->set_max_context(state_.model().max_context);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace tandem::router
