// The CUDA backend: weights, activations and the KV cache in device memory, in bfloat16 (default),
// float16, or float32 (TF32 off: the mode compared token for token with the CPU backend); accumulation
// is float32 everywhere.
//
// Linear runs our bandwidth-bound kernel for 1 to 8 rows (decode) or cuBLASLt, chosen per shape by
// timing both on the shape's first eager use (TANDEM_CUDA_LINEAR=gemv|cublas forces one); every other op
// is our own kernel (backend/cuda/kernels). All ops run on one non-blocking engine stream; transfers on
// streams of their own (Backend's stream contract); Reserve() sizes every scratch buffer so steps
// allocate nothing and can be captured as CUDA graphs.
//
// Only the registry includes this header; it pulls in no CUDA header.
#ifndef TANDEM_BACKEND_CUDA_CUDA_BACKEND_H_
#define TANDEM_BACKEND_CUDA_CUDA_BACKEND_H_

#include <memory>

#include "absl/status/statusor.h"
#include "backend/backend.h"

namespace tandem {

struct CudaBackendOptions {
  int device = 0;
  DType dtype = DType::kBF16;
};

// FailedPrecondition "no CUDA device was found" on a machine without one (or without a driver);
// InvalidArgument for a device ordinal that does not exist or a dtype the backend does not run.
absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(const CudaBackendOptions& options);

}  // namespace tandem

#endif  // TANDEM_BACKEND_CUDA_CUDA_BACKEND_H_
