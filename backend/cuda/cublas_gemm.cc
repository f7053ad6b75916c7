#include "backend/cuda/cublas_gemm.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "backend/cuda/cuda_status.h"
#include "common/status_macros.h"

namespace tandem::cuda {
namespace {

cudaDataType_t CudaType(DType dtype) {
  switch (dtype) {
    case DType::kF16: return CUDA_R_16F;
    case DType::kBF16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
  }
}

std::string ShapeName(const GemmShape& s) {
  return absl::StrCat("GEMM ", s.n, "x", s.in, " -> ", s.out, " (", std::string(DTypeName(s.dtype)), " -> ",
                      std::string(DTypeName(s.out_dtype)), s.bias ? ", bias" : "", ")");
}

}  // namespace

struct CublasGemm::Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t w = nullptr, x = nullptr, y = nullptr;
  cublasLtMatmulAlgo_t algo{};

  ~Plan() {
    if (w) cublasLtMatrixLayoutDestroy(w);
    if (x) cublasLtMatrixLayoutDestroy(x);
    if (y) cublasLtMatrixLayoutDestroy(y);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

CublasGemm::CublasGemm(cublasLtHandle_t handle, void* workspace, size_t workspace_bytes)
    : handle_(handle), workspace_(workspace), workspace_bytes_(workspace_bytes) {}

absl::StatusOr<std::unique_ptr<CublasGemm>> CublasGemm::Create(void* workspace, size_t workspace_bytes) {
  cublasLtHandle_t handle = nullptr;
  TANDEM_RETURN_IF_ERROR(CublasStatus(cublasLtCreate(&handle), "cublasLtCreate"));
  return std::unique_ptr<CublasGemm>(new CublasGemm(handle, workspace, workspace_bytes));
}

CublasGemm::~CublasGemm() {
  plans_.clear();
  if (handle_) cublasLtDestroy(handle_);
}

absl::StatusOr<CublasGemm::Plan*> CublasGemm::GetPlan(const GemmShape& s) {
  const Key key{s.n, s.in, s.out, static_cast<int>(s.dtype), static_cast<int>(s.out_dtype), s.bias};
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second.get();
  const std::string name = ShapeName(s);
  auto plan = std::make_unique<Plan>();
  // Column-major view of row-major tensors: w [out, in] is in x out (ld in), used transposed; x [n, in]
  // is in x n (ld in); y [n, out] is out x n (ld out). So y = wᵀ x with m = out, n = n, k = in.
  TANDEM_RETURN_IF_ERROR(CublasStatus(cublasLtMatmulDescCreate(&plan->op, CUBLAS_COMPUTE_32F, CUDA_R_32F), name));
  const cublasOperation_t transpose = CUBLAS_OP_T, no_transpose = CUBLAS_OP_N;
  TANDEM_RETURN_IF_ERROR(CublasStatus(
      cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof(transpose)), name));
  TANDEM_RETURN_IF_ERROR(CublasStatus(
      cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSB, &no_transpose, sizeof(no_transpose)),
      name));
  if (s.bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    const cudaDataType_t bias_type = CUDA_R_32F;
    TANDEM_RETURN_IF_ERROR(CublasStatus(
        cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)), name));
    TANDEM_RETURN_IF_ERROR(CublasStatus(cublasLtMatmulDescSetAttribute(
        plan->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)), name));
  }
  TANDEM_RETURN_IF_ERROR(CublasStatus(cublasLtMatrixLayoutCreate(&plan->w, CudaType(s.dtype), s.in, s.out, s.in), name));
  TANDEM_RETURN_IF_ERROR(CublasStatus(cublasLtMatrixLayoutCreate(&plan->x, CudaType(s.dtype), s.in, s.n, s.in), name));
  TANDEM_RETURN_IF_ERROR(
      CublasStatus(cublasLtMatrixLayoutCreate(&plan->y, CudaType(s.out_dtype), s.out, s.n, s.out), name));

  cublasLtMatmulPreference_t preference = nullptr;
  TANDEM_RETURN_IF_ERROR(CublasStatus(cublasLtMatmulPreferenceCreate(&preference), name));
  size_t workspace = workspace_bytes_;
  cublasStatus_t set = cublasLtMatmulPreferenceSetAttribute(
      preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasStatus_t heuristic = set == CUBLAS_STATUS_SUCCESS
                                 ? cublasLtMatmulAlgoGetHeuristic(handle_, plan->op, plan->w, plan->x, plan->y,
                                                                  plan->y, preference, 1, &result, &found)
                                 : set;
  cublasLtMatmulPreferenceDestroy(preference);
  TANDEM_RETURN_IF_ERROR(CublasStatus(heuristic, name));
  if (found == 0) return absl::UnimplementedError(absl::StrCat(name, ": cuBLASLt has no algorithm"));
  plan->algo = result.algo;
  Plan* raw = plan.get();
  plans_[key] = std::move(plan);
  return raw;
}

absl::Status CublasGemm::Run(const GemmShape& s, const void* x, const void* w, const float* bias, void* y,
                             cudaStream_t stream) {
  TANDEM_ASSIGN_OR_RETURN(Plan * plan, GetPlan(s));
  if (s.bias) {
    TANDEM_RETURN_IF_ERROR(CublasStatus(
        cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)),
        "GEMM bias pointer"));
  }
  const float alpha = 1.0f, beta = 0.0f;
  return CublasStatus(cublasLtMatmul(handle_, plan->op, &alpha, w, plan->w, x, plan->x, &beta, y, plan->y, y,
                                     plan->y, &plan->algo, workspace_, workspace_bytes_, stream),
                      ShapeName(s));
}

}  // namespace tandem::cuda
