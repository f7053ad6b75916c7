// Marks a status as a failure of a decode step's KV source (see MarkKvSourceFailure). Header-only, no
// gRPC: the engines set it, proto/grpc_status.h carries it between processes.
#ifndef TANDEM_COMMON_KV_SOURCE_FAILURE_H_
#define TANDEM_COMMON_KV_SOURCE_FAILURE_H_

#include "absl/status/status.h"
#include "absl/strings/cord.h"

namespace tandem {

// A decode step failed because its KV could not be pulled from its source (the prefill worker died, the
// lease was lost, the transfer broke), not because of the worker reporting it: the router redoes the
// prefill elsewhere and keeps the decode worker in the pool (RELIABILITY F4). Carried as an absl payload
// in the process and as the gRPC status's error details between processes.
inline constexpr char kKvSourceFailurePayload[] = "type.tandem.dev/kv-source-failure";
inline constexpr char kKvSourceFailureDetails[] = "tandem:kv-source-failure";

inline absl::Status MarkKvSourceFailure(absl::Status status) {
  if (!status.ok()) status.SetPayload(kKvSourceFailurePayload, absl::Cord(kKvSourceFailureDetails));
  return status;
}
inline bool IsKvSourceFailure(const absl::Status& status) {
  return status.GetPayload(kKvSourceFailurePayload).has_value();
}

}  // namespace tandem

#endif  // TANDEM_COMMON_KV_SOURCE_FAILURE_H_
