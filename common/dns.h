// DNS targets: "dns:NAME:PORT" names every address NAME resolves to, each at PORT. That is how a
// Docker Compose service name (one A record per replica) or a Kubernetes headless Service (one per
// ready pod) lists a scaled set of workers; the router re-resolves it to follow membership.
//
// Thread safety: the functions are thread-safe (getaddrinfo is).
#ifndef TANDEM_COMMON_DNS_H_
#define TANDEM_COMMON_DNS_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tandem {

inline constexpr absl::string_view kDnsPrefix = "dns:";

struct DnsTarget {
  std::string host;
  int port = 0;
  std::string ToString() const;  // "dns:NAME:PORT"
};

// True when `text` starts with "dns:".
bool IsDnsTarget(absl::string_view text);

// Parses "dns:NAME:PORT"; InvalidArgument naming `flag` for anything else (no name, bad port).
absl::StatusOr<DnsTarget> ParseDnsTarget(absl::string_view flag, absl::string_view text);

// Every address `host` resolves to (IPv4 and IPv6), as "a.b.c.d:PORT" / "[v6]:PORT", sorted and
// without duplicates. NotFound when the name does not resolve (or resolves to nothing).
absl::StatusOr<std::vector<std::string>> ResolveHostPorts(const std::string& host, int port);

// Resolves a name to "ip:port" addresses; ResolveHostPorts unless a test injects another.
using HostResolver = std::function<absl::StatusOr<std::vector<std::string>>(const std::string& host, int port)>;

// Which peers may be dialled: fixed "host:port" entries and "dns:NAME:PORT" entries. An address a
// DNS entry lists is allowed; an address not in the cached answers triggers a fresh resolution, at
// most once per `refresh` (a scaled-up worker is allowed within that long, a stranger costs one
// lookup per `refresh` at most). An empty list allows everything.
// Thread safety: thread-safe.
class AddressAllowList {
 public:
  // InvalidArgument naming `flag` for a malformed entry.
  static absl::StatusOr<AddressAllowList> Create(absl::string_view flag, const std::vector<std::string>& entries,
                                                 HostResolver resolver = nullptr,
                                                 absl::Duration refresh = absl::Seconds(1));
  AddressAllowList() = default;
  AddressAllowList(AddressAllowList&& other) noexcept;
  AddressAllowList& operator=(AddressAllowList&& other) noexcept;

  bool empty() const { return fixed_.empty() && targets_.empty(); }
  bool Allows(const std::string& address);

 private:
  std::vector<std::string> fixed_;
  std::vector<DnsTarget> targets_;
  HostResolver resolver_;
  absl::Duration refresh_ = absl::Seconds(1);
  absl::Mutex mu_;
  std::vector<std::string> resolved_ ABSL_GUARDED_BY(mu_);
  absl::Time resolved_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace tandem

#endif  // TANDEM_COMMON_DNS_H_
