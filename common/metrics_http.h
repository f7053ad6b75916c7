// MetricsHttpServer: serves one MetricsRegistry as GET /metrics (Prometheus text format 0.0.4) over plain
// HTTP on host:port, from one background I/O thread (Boost.Asio: asynchronous, so idle or slow
// connections hold no thread and cannot starve scrapes; each is closed after its response or after 10 s
// of silence). Other paths and methods answer 404. Meant for loopback or a private network, like the
// workers' gRPC ports.
//
//   MetricsHttpServer http(registry);
//   TANDEM_ASSIGN_OR_RETURN(int port, http.Start("127.0.0.1", 0));   // 0 picks a free port
//   ...
//   http.Stop();                                                      // also run by the destructor
//
// ScrapeMetrics is the matching client (tests, tools): GET http://address/metrics.
//
// Ownership: the registry is not owned and must outlive Stop(). Every scrape renders the registry (and so
// runs its callbacks) on a handler thread: stop this server before what the callbacks read goes away.
// Thread safety: Start and Stop from one thread, Start at most once; port() and address() from any
// thread after Start returned.
#ifndef TANDEM_COMMON_METRICS_HTTP_H_
#define TANDEM_COMMON_METRICS_HTTP_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/metrics.h"

namespace tandem {

class MetricsHttpServer {
 public:
  explicit MetricsHttpServer(const MetricsRegistry& registry);
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Binds host:port (port 0: any free port) and starts serving; returns the bound port.
  // InvalidArgument for a port outside [0, 65535] or a second Start; Unavailable when the address
  // cannot be bound.
  absl::StatusOr<int> Start(const std::string& host, int port);
  // Stops accepting, lets requests being answered finish, joins the thread. Idempotent.
  void Stop();

  int port() const { return port_; }
  std::string address() const;  // host:port ([host]:port for IPv6); empty before Start

 private:
  class Impl;
  const MetricsRegistry& registry_;
  std::unique_ptr<Impl> impl_;
  std::string host_;
  int port_ = 0;
};

// GET http://`address`/metrics ("host:port"); the body on 200. Unavailable when the server cannot be
// reached, NotFound / Internal for another status code.
absl::StatusOr<std::string> ScrapeMetrics(const std::string& address,
                                          absl::Duration timeout = absl::Seconds(5));

}  // namespace tandem

#endif  // TANDEM_COMMON_METRICS_HTTP_H_
