#include "backend/registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backend/cpu/cpu_backend.h"
#if TANDEM_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace tandem {

std::vector<std::string> AvailableBackends() {
  std::vector<std::string> names = {"cpu", "cpu-reference"};
#if TANDEM_WITH_CUDA
  names.push_back("cuda");
#endif
  return names;
}

absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(const BackendOptions& options) {
  if (options.name == "cpu" || options.name == "cpu-reference") {
    CpuBackendOptions cpu;
    if (options.dtype == "float32") {
      cpu.matrix_dtype = DType::kF32;
    } else if (options.dtype == "bfloat16") {
      cpu.matrix_dtype = DType::kBF16;
    } else if (options.dtype == "float16") {
      cpu.matrix_dtype = DType::kF16;
    } else if (!options.dtype.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--dtype ", options.dtype, ": the ", options.name,
                                                     " backend holds weights in float32, bfloat16 or float16"));
    }
    cpu.fast = options.name == "cpu";
    cpu.num_threads = options.num_threads;
    cpu.batch_invariant = options.batch_invariant;
    return std::make_unique<CpuBackend>(cpu);
  }
  if (options.name == "cuda") {
    if (options.batch_invariant) {
      return absl::UnimplementedError("--batch-invariant: the cuda backend has no batch-invariant kernels yet (cpu only)");
    }
#if TANDEM_WITH_CUDA
    CudaBackendOptions cuda;
    cuda.device = options.device;
    if (options.dtype.empty() || options.dtype == "bfloat16") {
      cuda.dtype = DType::kBF16;
    } else if (options.dtype == "float16") {
      cuda.dtype = DType::kF16;
    } else if (options.dtype == "float32") {
      cuda.dtype = DType::kF32;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--dtype: '", options.dtype, "' is not one of bfloat16, float16, float32"));
    }
    return MakeCudaBackend(cuda);
#else
    return absl::UnimplementedError("--backend cuda: built without CUDA");
#endif
  }
  return absl::InvalidArgumentError(absl::StrCat("--backend: unknown backend '", options.name,
                                                 "' (available: ", absl::StrJoin(AvailableBackends(), ", "),
                                                 ")"));
}

}  // namespace tandem
