#include "router/testing/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tandem::router::testing {

int ConnectLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string HttpRequestText(const std::string& method, const std::string& path, const std::string& body) {
  return absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n",
                      "Connection: close\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
}

void SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

std::string ReadAll(int fd, int timeout_ms) {
  std::string out;
  char buffer[16384];
  pollfd p{fd, POLLIN, 0};
  while (poll(&p, 1, timeout_ms) > 0) {
    const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

HttpResult ParseHttpResponse(const std::string& raw) {
  HttpResult r;
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || raw.size() < 12) return r;
  r.headers = raw.substr(0, head_end);
  if (!absl::SimpleAtoi(r.headers.substr(9, 3), &r.status)) r.status = 0;
  const std::string rest = raw.substr(head_end + 4);
  if (!absl::StrContains(r.headers, "chunked")) {
    r.body = rest;
    return r;
  }
  size_t at = 0;
  while (at < rest.size()) {
    const size_t eol = rest.find("\r\n", at);
    if (eol == std::string::npos) break;
    size_t size = 0;
    if (!absl::SimpleHexAtoi(rest.substr(at, eol - at), &size) || size == 0) break;
    r.body += rest.substr(eol + 2, size);
    at = eol + 2 + size + 2;
  }
  return r;
}

HttpResult HttpCall(int port, const std::string& method, const std::string& path, const std::string& body) {
  const int fd = ConnectLoopback(port);
  if (fd < 0) return {};
  SendAll(fd, HttpRequestText(method, path, body));
  HttpResult result = ParseHttpResponse(ReadAll(fd));
  close(fd);
  return result;
}

std::vector<std::string> SseEvents(const std::string& body) {
  std::vector<std::string> events;
  for (absl::string_view block : absl::StrSplit(body, "\n\n", absl::SkipEmpty())) {
    if (absl::StartsWith(block, "data: ")) events.emplace_back(block.substr(6));
  }
  return events;
}

}  // namespace tandem::router::testing
