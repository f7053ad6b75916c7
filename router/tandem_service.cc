#include "router/tandem_service.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/impl/codegen/proto_utils.h"
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

// The request's bytes parsed as `T`, or INVALID_ARGUMENT naming what protobuf refused.
template <typename T>
absl::Status ParseRaw(const grpc::ByteBuffer& buffer, T* request) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return absl::InvalidArgumentError("request: unreadable message bytes");
  std::string bytes;
  bytes.reserve(buffer.Length());
  for (const grpc::Slice& slice : slices) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  return ParseRequestNamingTheField(bytes, request);
}

grpc::Status SerializeRaw(const google::protobuf::Message& response, grpc::ByteBuffer* buffer) {
  bool own_buffer = false;
  return grpc::SerializationTraits<google::protobuf::Message>::Serialize(response, buffer, &own_buffer);
}

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* TandemService::Generate(grpc::CallbackServerContext* context,
                                                                   const grpc::ByteBuffer* raw_request) {
  absl::StatusOr<std::string> client = state_.Authenticate(Authorization(*context));
  if (!client.ok()) return FinishedWriteReactor<grpc::ByteBuffer>(ToGrpcStatus(client.status()));
  v1::GenerateRequest request;
  if (absl::Status parsed = ParseRaw(*raw_request, &request); !parsed.ok()) {
    return FinishedWriteReactor<grpc::ByteBuffer>(ToGrpcStatus(parsed));
  }
  return new GenerateReactor(state_, context, request, *std::move(client));
}

grpc::ServerUnaryReactor* TandemService::Tokenize(grpc::CallbackServerContext* context,
                                                  const grpc::ByteBuffer* raw_request, grpc::ByteBuffer* raw_response) {
  v1::TokenizeRequest request;
  v1::TokenizeResponse response;
  absl::Status status = state_.api_keys().Check(Authorization(*context));
  if (status.ok()) status = ParseRaw(*raw_request, &request);
  if (status.ok()) status = DoTokenize(state_, request, &response);
  if (!status.ok()) return FinishedUnaryReactor(context, ToGrpcStatus(status));
  return FinishedUnaryReactor(context, SerializeRaw(response, raw_response));
}

grpc::ServerUnaryReactor* TandemService::ListModels(grpc::CallbackServerContext* context,
                                                    const grpc::ByteBuffer* raw_request,
                                                    grpc::ByteBuffer* raw_response) {
  v1::ListModelsRequest request;
  absl::Status status = state_.api_keys().Check(Authorization(*context));
  if (status.ok()) status = ParseRaw(*raw_request, &request);
  if (!status.ok()) return FinishedUnaryReactor(context, ToGrpcStatus(status));
  v1::ListModelsResponse response;
  v1::ModelInfo* info = response.add_models();
  info->set_name(state_.model().name);
  info->set_vocab_size(state_.model().vocab_size);
  info->set_max_context(state_.model().max_context);
  return FinishedUnaryReactor(context, SerializeRaw(response, raw_response));
}

}  // namespace tandem::router
