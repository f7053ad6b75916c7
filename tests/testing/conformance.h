// The op conformance harness: every op of a backend under test against the plain-loop CPU reference
// (backend/cpu/reference_ops), on random shapes and dtypes. tests/testing/conformance.cc holds the
// tests; each test binary says which backends it instantiates them for by defining
// ConformanceParams() (tests/backend_conformance_test.cc: the CPU fast path; tests/gpu: CUDA).
//
// Inputs are drawn in float, rounded to the dtype under test and given, so rounded, to both sides: the
// errors measured are the backend's own (accumulation order, output rounding), never the inputs'.
// Every comparison's error is recorded per (op, dtype) and the worst of each is printed as a table at
// the end of the run.
#ifndef TANDEM_TESTS_TESTING_CONFORMANCE_H_
#define TANDEM_TESTS_TESTING_CONFORMANCE_H_

#include <string>
#include <vector>

namespace tandem::conformance {

struct ConformanceParam {
  std::string backend;   // a MakeBackend name
  std::string dtype;     // "float32", "bfloat16", "float16" ("" = the backend's default)
  std::string linear;    // CUDA: TANDEM_CUDA_LINEAR for this run ("", "gemv", "cublas")
  double tolerance = 0;  // max |a - b| / max |b| allowed per comparison
  bool long_contexts = false;  // attention up to 8192 tokens of context (slow on the CPU reference)
  // The backend rounds the activations of a Linear on bf16 matrices with more rows than this to bf16
  // (the CPU's bf16 dot products, backend/cpu/bf16_dot.h: 0, every Linear); the reference is given
  // them rounded the same way. -1: never.
  int bf16_activations_above_rows = -1;
};

std::vector<ConformanceParam> ConformanceParams();

}  // namespace tandem::conformance

#endif  // TANDEM_TESTS_TESTING_CONFORMANCE_H_
