// GEMMs through cuBLASLt: y[n, out] = x[n, in] · w[out, in]ᵀ (+ bias), fp32 accumulation (TF32 off),
// for prompts and large decode batches. Plans (descriptors, layouts and the heuristic's algorithm) are
// made once per shape and kept; a run sets the pointers and launches. Graph-capturable: the workspace
// is given at creation and nothing is allocated on a run.
//
// Thread safety: one thread at a time (the engine's).
#ifndef TANDEM_BACKEND_CUDA_CUBLAS_GEMM_H_
#define TANDEM_BACKEND_CUDA_CUBLAS_GEMM_H_

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "absl/status/statusor.h"
#include "types/dtype.h"

namespace tandem::cuda {

struct GemmShape {
  int64_t n = 0;    // rows of x and y
  int64_t in = 0;
  int64_t out = 0;
  DType dtype = DType::kBF16;      // of x and w
  DType out_dtype = DType::kBF16;  // of y: dtype or float32
  bool bias = false;               // f32 [out], fused into the epilogue
};

class CublasGemm {
 public:
  static absl::StatusOr<std::unique_ptr<CublasGemm>> Create(void* workspace, size_t workspace_bytes);
  ~CublasGemm();

  // UnimplementedError when cuBLASLt has no algorithm for the shape (with a bias: the caller adds it
  // itself and runs the shape without).
  absl::Status Run(const GemmShape& shape, const void* x, const void* w, const float* bias, void* y,
                   cudaStream_t stream);

 private:
  struct Plan;
  using Key = std::tuple<int64_t, int64_t, int64_t, int, int, bool>;

  CublasGemm(cublasLtHandle_t handle, void* workspace, size_t workspace_bytes);
  absl::StatusOr<Plan*> GetPlan(const GemmShape& shape);

  cublasLtHandle_t handle_;
  void* workspace_;
  size_t workspace_bytes_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace tandem::cuda

#endif  // TANDEM_BACKEND_CUDA_CUBLAS_GEMM_H_
