#include "common/dns.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tandem {

std::string DnsTarget::ToString() const { return absl::StrCat(kDnsPrefix, host, ":", port); }

bool IsDnsTarget(absl::string_view text) { return absl::StartsWith(text, kDnsPrefix); }

absl::StatusOr<DnsTarget> ParseDnsTarget(absl::string_view flag, absl::string_view text) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": '", text, "' is not dns:NAME:PORT (", why, ")"));
  };
  if (!IsDnsTarget(text)) return bad("no dns: prefix");
  absl::string_view rest = text.substr(kDnsPrefix.size());
  const size_t colon = rest.rfind(':');
  if (colon == absl::string_view::npos) return bad("no port");
  DnsTarget target;
  target.host = std::string(rest.substr(0, colon));
  if (target.host.empty()) return bad("no name");
  if (!absl::SimpleAtoi(rest.substr(colon + 1), &target.port) || target.port <= 0 || target.port > 65535) {
    return bad("the port must be in [1, 65535]");
  }
  return target;
}

absl::StatusOr<std::vector<std::string>> ResolveHostPorts(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &list);
  if (rc != 0) {
    return absl::NotFoundError(absl::StrCat("cannot resolve '", host, "': ", gai_strerror(rc)));
  }
  std::vector<std::string> out;
  for (const addrinfo* a = list; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    if (a->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr, text, sizeof text);
      out.push_back(absl::StrCat(text, ":", port));
    } else if (a->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr, text, sizeof text);
      out.push_back(absl::StrCat("[", text, "]:", port));
    }
  }
  freeaddrinfo(list);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.empty()) return absl::NotFoundError(absl::StrCat("'", host, "' resolves to no address"));
  return out;
}

absl::StatusOr<AddressAllowList> AddressAllowList::Create(absl::string_view flag,
                                                          const std::vector<std::string>& entries,
                                                          HostResolver resolver, absl::Duration refresh) {
  AddressAllowList list;
  for (const std::string& entry : entries) {
    if (IsDnsTarget(entry)) {
      absl::StatusOr<DnsTarget> target = ParseDnsTarget(flag, entry);
      if (!target.ok()) return target.status();
      list.targets_.push_back(*std::move(target));
    } else {
      list.fixed_.push_back(entry);
    }
  }
  list.resolver_ = resolver ? std::move(resolver) : HostResolver(ResolveHostPorts);
  list.refresh_ = refresh;
  return list;
}

AddressAllowList::AddressAllowList(AddressAllowList&& other) noexcept { *this = std::move(other); }

AddressAllowList& AddressAllowList::operator=(AddressAllowList&& other) noexcept {
  if (this == &other) return *this;
  fixed_ = std::move(other.fixed_);
  targets_ = std::move(other.targets_);
  resolver_ = std::move(other.resolver_);
  refresh_ = other.refresh_;
  absl::MutexLock a(&mu_);
  absl::MutexLock b(&other.mu_);
  resolved_ = std::move(other.resolved_);
  resolved_at_ = other.resolved_at_;
  return *this;
}

bool AddressAllowList::Allows(const std::string& address) {
  if (empty()) return true;
  if (std::find(fixed_.begin(), fixed_.end(), address) != fixed_.end()) return true;
  if (targets_.empty()) return false;
  absl::MutexLock lock(&mu_);
  if (std::find(resolved_.begin(), resolved_.end(), address) != resolved_.end()) return true;
  const absl::Time now = absl::Now();
  if (now - resolved_at_ < refresh_) return false;
  resolved_at_ = now;
  std::vector<std::string> fresh;
  for (const DnsTarget& target : targets_) {
    absl::StatusOr<std::vector<std::string>> listed = resolver_(target.host, target.port);
    if (listed.ok()) fresh.insert(fresh.end(), listed->begin(), listed->end());
  }
  // Addresses once allowed stay allowed: a worker leaving DNS while its leases are pulled is fine.
  for (std::string& a : fresh) {
    if (std::find(resolved_.begin(), resolved_.end(), a) == resolved_.end()) resolved_.push_back(std::move(a));
  }
  return std::find(resolved_.begin(), resolved_.end(), address) != resolved_.end();
}

}  // namespace tandem
