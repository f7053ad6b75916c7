// Every CUDA op against the CPU reference (tests/testing/conformance.cc) in float32, bfloat16 and
// float16, with cuBLASLt and the matrix-vector kernel each forced once, and contexts up to 8192.
// Skips (with the reason) where no CUDA device is found. ctest label: gpu.
#include "tests/testing/conformance.h"

namespace tandem {

std::vector<conformance::ConformanceParam> conformance::ConformanceParams() {
  return {
      // float32, TF32 off: float accumulation against the reference's double.
      {.backend = "cuda", .dtype = "float32", .linear = "", .tolerance = 1e-4, .long_contexts = true},
      {.backend = "cuda", .dtype = "float32", .linear = "gemv", .tolerance = 1e-4, .long_contexts = false},
      {.backend = "cuda", .dtype = "float32", .linear = "cublas", .tolerance = 1e-4, .long_contexts = false},
      // 16-bit outputs are rounded once more than the reference's (8 and 11 mantissa bits).
      {.backend = "cuda", .dtype = "bfloat16", .linear = "", .tolerance = 2e-2, .long_contexts = true},
      {.backend = "cuda", .dtype = "bfloat16", .linear = "gemv", .tolerance = 2e-2, .long_contexts = false},
      {.backend = "cuda", .dtype = "bfloat16", .linear = "cublas", .tolerance = 2e-2, .long_contexts = false},
      {.backend = "cuda", .dtype = "float16", .linear = "", .tolerance = 5e-3, .long_contexts = true},
  };
}

}  // namespace tandem
