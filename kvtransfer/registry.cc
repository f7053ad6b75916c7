#include "kvtransfer/registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kvtransfer/grpc_transport.h"
#include "kvtransfer/inproc_transport.h"

namespace tandem {

std::vector<std::string> KvTransportNames() { return {"grpc", "inproc", "cuda_ipc", "nccl"}; }

absl::StatusOr<std::unique_ptr<KvTransport>> MakeKvTransport(const std::string& name) {
  if (name == "grpc") return std::make_unique<GrpcKvTransport>();
  if (name == "inproc") return std::make_unique<InProcessKvTransport>();
  if (name == "cuda_ipc" || name == "nccl") {
#if TANDEM_CUDA_ENABLED
    return absl::UnimplementedError(absl::StrCat("kv transport ", name, ": not implemented yet"));
#else
    return absl::UnimplementedError(absl::StrCat("kv transport ", name, ": built without CUDA"));
#endif
  }
  return absl::InvalidArgumentError(absl::StrCat("--kv-transport: unknown transport '", name,
                                                 "' (want ", absl::StrJoin(KvTransportNames(), ", "),
                                                 ")"));
}

}  // namespace tandem
