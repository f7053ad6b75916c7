// Conversions between the engine-side KV types (kv_transport.h) and their worker.proto mirrors.
//
// This is the service layer's edge: engines use KvLayout/KvHandle and never include generated types.
// The wire spells dtypes "F32", "F16" and "BF16"; anything else, or a non-positive dimension, is
// InvalidArgument naming the field ("kv.layout.dtype: unknown dtype 'F64' ...").
//
// Thread safety: pure functions.
#ifndef TANDEM_KVTRANSFER_KV_PROTO_H_
#define TANDEM_KVTRANSFER_KV_PROTO_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kvtransfer/kv_transport.h"
#include "proto/worker.pb.h"

namespace tandem {

void LayoutToProto(const KvLayout& layout, worker::v1::KvLayout* proto);
// `field` names the message in error messages (e.g. "request.layout").
absl::StatusOr<KvLayout> LayoutFromProto(const worker::v1::KvLayout& proto,
                                         absl::string_view field = "layout");

void HandleToProto(const KvHandle& handle, worker::v1::KvHandle* proto);
absl::StatusOr<KvHandle> HandleFromProto(const worker::v1::KvHandle& proto,
                                         absl::string_view field = "kv");

}  // namespace tandem

#endif  // TANDEM_KVTRANSFER_KV_PROTO_H_
