#include "backend/registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backend/cpu/cpu_backend.h"

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
    if (!options.dtype.empty() && options.dtype != "float32") {
      return absl::InvalidArgumentError(absl::StrCat("--dtype ", options.dtype, ": the ", options.name,
                                                     " backend computes in float32 only"));
    }
    CpuBackendOptions cpu;
    cpu.fast = options.name == "cpu";
    cpu.num_threads = options.num_threads;
    return std::make_unique<CpuBackend>(cpu);
  }
  if (options.name == "cuda") {
#if TANDEM_WITH_CUDA
    return absl::UnimplementedError("--backend cuda: the CUDA backend is not written yet (issue 10)");
#else
    return absl::UnimplementedError("--backend cuda: built without CUDA");
#endif
  }
  return absl::InvalidArgumentError(absl::StrCat("--backend: unknown backend '", options.name,
                                                 "' (available: ", absl::StrJoin(AvailableBackends(), ", "),
                                                 ")"));
}

}  // namespace tandem
