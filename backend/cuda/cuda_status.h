// Foreign error codes to absl::Status, in one place (STYLE.md rule 2): CUDA runtime and cuBLAS.
#ifndef TANDEM_BACKEND_CUDA_CUDA_STATUS_H_
#define TANDEM_BACKEND_CUDA_CUDA_STATUS_H_

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <string_view>

#include "absl/status/status.h"

namespace tandem::cuda {

// OK for cudaSuccess; otherwise "<what>: <error name>: <description>" with the canonical code:
// ResourceExhausted for out-of-memory, InvalidArgument for invalid values or launch configurations
// (our arguments were wrong), FailedPrecondition for a missing or unusable device, Internal otherwise.
absl::Status CudaStatus(cudaError_t error, std::string_view what);
absl::Status CublasStatus(cublasStatus_t status, std::string_view what);

}  // namespace tandem::cuda

#define TANDEM_CUDA_RETURN_IF_ERROR(expr, what)                                       \
  do {                                                                                \
    if (const cudaError_t tandem_cuda_error = (expr); tandem_cuda_error != cudaSuccess) \
      return ::tandem::cuda::CudaStatus(tandem_cuda_error, what);                     \
  } while (0)

#endif  // TANDEM_BACKEND_CUDA_CUDA_STATUS_H_
