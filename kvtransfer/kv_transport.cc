#include "kvtransfer/kv_transport.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace tandem {

bool SameLayout(const KvLayout& a, const KvLayout& b) { return CheckSameLayout(a, b).ok(); }

absl::Status CheckSameLayout(const KvLayout& expected, const KvLayout& actual) {
  // The first difference is named so an operator can tell a wrong model from a wrong dtype flag.
  auto mismatch = [](const char* field, const std::string& want, const std::string& got) {
    return absl::FailedPreconditionError(absl::StrCat("KV layout mismatch: ", field, " is ", got,
                                                      ", expected ", want));
  };
  if (expected.model_fingerprint != actual.model_fingerprint) {
    return mismatch("model_fingerprint", absl::StrCat("'", expected.model_fingerprint, "'"),
                    absl::StrCat("'", actual.model_fingerprint, "'"));
  }
  if (expected.num_layers != actual.num_layers) {
    return mismatch("num_layers", absl::StrCat(expected.num_layers), absl::StrCat(actual.num_layers));
  }
  if (expected.num_kv_heads != actual.num_kv_heads) {
    return mismatch("num_kv_heads", absl::StrCat(expected.num_kv_heads),
                    absl::StrCat(actual.num_kv_heads));
  }
  if (expected.head_dim != actual.head_dim) {
    return mismatch("head_dim", absl::StrCat(expected.head_dim), absl::StrCat(actual.head_dim));
  }
  if (expected.dtype != actual.dtype) {
    return mismatch("dtype", std::string(DTypeName(expected.dtype)),
                    std::string(DTypeName(actual.dtype)));
  }
  return absl::OkStatus();
}

}  // namespace tandem
