// Chooses a Backend by name: the one place that knows which backends were built (STYLE.md rule 8).
//
//   "cpu"           threaded / BLAS CPU backend (default)
//   "cpu-reference" plain-loop CPU reference
//   "cuda"          the CUDA backend; UnimplementedError where it was not built, FailedPrecondition
//                   when no CUDA device is found
#ifndef TANDEM_BACKEND_REGISTRY_H_
#define TANDEM_BACKEND_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backend/backend.h"

namespace tandem {

struct BackendOptions {
  std::string name = "cpu";
  int num_threads = 0;  // CPU backends: 0 means one per hardware thread
  int device = 0;       // CUDA: device ordinal
  // CUDA: weights, activations and KV in "bfloat16" (default when empty), "float16" or "float32"
  // (TF32 off: the mode that matches the CPU backend token for token). CPU: the dtype weight matrices
  // are held in, "float32", "bfloat16" or "float16"; empty keeps the checkpoint's (16-bit stays 16-bit);
  // activations and KV are float32.
  std::string dtype;
  // CPU: every row of a prompt summed as a batch-1 decode step sums it (CpuBackendOptions). The CUDA
  // backend has no such kernels: Unimplemented.
  bool batch_invariant = false;
};

absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(const BackendOptions& options);

// Names MakeBackend accepts in this build.
std::vector<std::string> AvailableBackends();

}  // namespace tandem

#endif  // TANDEM_BACKEND_REGISTRY_H_
