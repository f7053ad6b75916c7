#include "kvtransfer/kv_proto.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tandem {
namespace {

// Strict on purpose: ParseDType also accepts the torch spellings, the wire does not.
absl::StatusOr<DType> ParseWireDType(const std::string& name, absl::string_view field) {
  if (name == "F32") return DType::kF32;
  if (name == "F16") return DType::kF16;
  if (name == "BF16") return DType::kBF16;
  return absl::InvalidArgumentError(absl::StrCat(field, ".dtype: unknown dtype '", name,
                                                 "' (want F32, F16 or BF16)"));
}

absl::Status CheckPositive(int64_t value, absl::string_view field, absl::string_view name) {
  if (value > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ".", name, ": must be positive, got ", value));
}

}  // namespace

void LayoutToProto(const KvLayout& layout, worker::v1::KvLayout* proto) {
  proto->set_model_fingerprint(layout.model_fingerprint);
  proto->set_num_layers(layout.num_layers);
  proto->set_num_kv_heads(layout.num_kv_heads);
  proto->set_head_dim(layout.head_dim);
  proto->set_dtype(std::string(DTypeName(layout.dtype)));
}

absl::StatusOr<KvLayout> LayoutFromProto(const worker::v1::KvLayout& proto,
                                         absl::string_view field) {
  KvLayout layout;
  layout.model_fingerprint = proto.model_fingerprint();
  TANDEM_RETURN_IF_ERROR(CheckPositive(proto.num_layers(), field, "num_layers"));
  TANDEM_RETURN_IF_ERROR(CheckPositive(proto.num_kv_heads(), field, "num_kv_heads"));
  TANDEM_RETURN_IF_ERROR(CheckPositive(proto.head_dim(), field, "head_dim"));
  layout.num_layers = proto.num_layers();
  layout.num_kv_heads = proto.num_kv_heads();
  layout.head_dim = proto.head_dim();
  TANDEM_ASSIGN_OR_RETURN(layout.dtype, ParseWireDType(proto.dtype(), field));
  return layout;
}

void HandleToProto(const KvHandle& handle, worker::v1::KvHandle* proto) {
  proto->set_lease_id(handle.lease_id);
  proto->set_source(handle.source);
  proto->set_num_tokens(handle.num_tokens);
  LayoutToProto(handle.layout, proto->mutable_layout());
  proto->set_lease_ms(handle.lease_ms);
  proto->set_transport(handle.transport);
}

absl::StatusOr<KvHandle> HandleFromProto(const worker::v1::KvHandle& proto,
                                         absl::string_view field) {
  KvHandle handle;
  if (proto.lease_id().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".lease_id: is empty"));
  }
  if (proto.source().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".source: is empty"));
  }
  if (proto.num_tokens() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".num_tokens: must not be negative, got ", proto.num_tokens()));
  }
  if (proto.lease_ms() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".lease_ms: must not be negative, got ", proto.lease_ms()));
  }
  handle.lease_id = proto.lease_id();
  handle.source = proto.source();
  handle.num_tokens = proto.num_tokens();
  TANDEM_ASSIGN_OR_RETURN(handle.layout,
                          LayoutFromProto(proto.layout(), absl::StrCat(field, ".layout")));
  handle.lease_ms = proto.lease_ms();
  // An empty transport is an old sender: gRPC is the one every source offers.
  handle.transport = proto.transport().empty() ? "grpc" : proto.transport();
  return handle;
}

}  // namespace tandem
