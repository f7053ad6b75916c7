// Chooses a KvTransport by name (the `--kv-transport` flag). The one place that knows which optional
// transports were built (STYLE.md rule 8): asking for one that was not is UNIMPLEMENTED, never a link
// error.
//
//   "grpc"      host-staged chunk stream; works everywhere (the default)
//   "inproc"    in-process, through InProcessKvRegistry::Global() (tests, single-process clusters)
//   "cuda_ipc"  same node, GPU memory handles (not built yet)
//   "nccl"      GPU to GPU across nodes (not built yet)
//
// Thread safety: MakeKvTransport is thread-safe; see each transport for its own.
#ifndef TANDEM_KVTRANSFER_REGISTRY_H_
#define TANDEM_KVTRANSFER_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kvtransfer/kv_transport.h"

namespace tandem {

// INVALID_ARGUMENT naming the flag for an unknown name; UNIMPLEMENTED for a known transport that this
// build lacks.
absl::StatusOr<std::unique_ptr<KvTransport>> MakeKvTransport(const std::string& name);

// Every name MakeKvTransport knows, built or not (for --help).
std::vector<std::string> KvTransportNames();

}  // namespace tandem

#endif  // TANDEM_KVTRANSFER_REGISTRY_H_
