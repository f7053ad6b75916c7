// A minimal blocking HTTP/1.1 client for tests and benchmarks of the router's HTTP API: one request
// per connection (Connection: close), chunked bodies decoded, server-sent events split.
#ifndef TANDEM_ROUTER_TESTING_HTTP_CLIENT_H_
#define TANDEM_ROUTER_TESTING_HTTP_CLIENT_H_

#include <string>
#include <vector>

namespace tandem::router::testing {

struct HttpResult {
  int status = 0;        // 0: no response
  std::string headers;
  std::string body;      // de-chunked
};

// A connected socket to 127.0.0.1:port, or -1.
int ConnectLoopback(int port);
// "METHOD PATH HTTP/1.1" with a JSON body and Connection: close.
std::string HttpRequestText(const std::string& method, const std::string& path, const std::string& body);
void SendAll(int fd, const std::string& data);
// Reads until the peer closes (or `timeout_ms` passes without data).
std::string ReadAll(int fd, int timeout_ms = 20000);
HttpResult ParseHttpResponse(const std::string& raw);
// Connect, send, read, close.
HttpResult HttpCall(int port, const std::string& method, const std::string& path, const std::string& body = "");
// The data payloads of a server-sent-event body ("[DONE]" included).
std::vector<std::string> SseEvents(const std::string& body);

}  // namespace tandem::router::testing

#endif  // TANDEM_ROUTER_TESTING_HTTP_CLIENT_H_
