// API keys for the router's public APIs (gRPC `tandem.v1.Tandem` and the OpenAI-compatible HTTP API):
// `--api-keys-file FILE`, one key per line (blank lines and lines starting with '#' ignored). A call
// must carry `authorization: Bearer KEY` (gRPC metadata, or the HTTP header OpenAI clients send with
// their api_key); otherwise it is refused UNAUTHENTICATED (HTTP 401) before anything else is read.
// Health checks (`grpc.health.v1`, GET /health) and GET /metrics stay open. Without a file, nothing
// is checked.
//
// Thread safety: immutable after FromFile; Check is thread-safe.
#ifndef TANDEM_ROUTER_API_KEYS_H_
#define TANDEM_ROUTER_API_KEYS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tandem::router {

class ApiKeys {
 public:
  ApiKeys() = default;  // no keys: every call is let through
  // InvalidArgument naming `flag` and the path: unreadable, no key, a key under 16 characters or with
  // spaces or control characters.
  static absl::StatusOr<ApiKeys> FromFile(absl::string_view flag, const std::string& path);
  static absl::StatusOr<ApiKeys> FromText(absl::string_view source, absl::string_view text);

  bool enabled() const { return !keys_.empty(); }
  size_t size() const { return keys_.size(); }
  // `authorization` is the header's value ("" when absent). OK, or UNAUTHENTICATED saying what is wrong
  // (never echoing the key). Every key is compared in constant time.
  absl::Status Check(absl::string_view authorization) const { return Match(authorization).status(); }
  // Like Check, returning which key matched (its line order among the keys), or -1 without keys.
  absl::StatusOr<int> Match(absl::string_view authorization) const;

 private:
  std::vector<std::string> keys_;
};

}  // namespace tandem::router

#endif  // TANDEM_ROUTER_API_KEYS_H_
