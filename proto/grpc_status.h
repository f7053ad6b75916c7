// gRPC <-> abseil status translation: the one place foreign error codes are mapped (STYLE.md rule 2).
// Both use the canonical codes, so the mapping is by number; messages pass through unchanged.
#ifndef TANDEM_PROTO_GRPC_STATUS_H_
#define TANDEM_PROTO_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "common/kv_source_failure.h"
#include "grpcpp/support/status.h"

namespace tandem {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  if (IsKvSourceFailure(status)) {
    return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()),
                        kKvSourceFailureDetails);
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  if (status.error_details() == kKvSourceFailureDetails) out = MarkKvSourceFailure(std::move(out));
  return out;
}

}  // namespace tandem

#endif  // TANDEM_PROTO_GRPC_STATUS_H_
