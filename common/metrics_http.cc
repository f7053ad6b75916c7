#include "common/metrics_http.h"

#include <sys/socket.h>

#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"

namespace tandem {
namespace {

constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

std::string JoinHostPort(const std::string& host, int port) {
  if (absl::StrContains(host, ":") && !absl::StartsWith(host, "[")) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

}  // namespace

MetricsHttpServer::MetricsHttpServer(const MetricsRegistry& registry) : registry_(registry) {}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

absl::StatusOr<int> MetricsHttpServer::Start(const std::string& host, int port) {
  if (server_ != nullptr) return absl::InvalidArgumentError("metrics server: Start was called twice");
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("metrics port must be in [0, 65535], got ", port));
  }
  auto server = std::make_unique<httplib::Server>();
  // Scrapes are small and rare: two handler threads instead of httplib's one per core. Short idle
  // timeouts bound how long Stop waits for a connection a scraper keeps open.
  server->new_task_queue = [] { return new httplib::ThreadPool(2); };
  server->set_keep_alive_timeout(1);
  server->set_read_timeout(std::chrono::seconds(2));
  server->set_write_timeout(std::chrono::seconds(2));
  // httplib's default also sets SO_REUSEPORT, which would let a second server bind the same port and
  // share the scrapes; keep SO_REUSEADDR only (restart while old connections sit in TIME_WAIT).
  server->set_socket_options([](socket_t socket) {
    const int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server->Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(registry_.Render(), kContentType);
  });
  const int bound = port == 0 ? server->bind_to_any_port(host) : (server->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(absl::StrCat("metrics server: cannot listen on ", JoinHostPort(host, port)));
  }
  host_ = host;
  port_ = bound;
  server_ = std::move(server);
  listen_returned_ = false;
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    listen_returned_ = true;
  });
  return port_;
}

void MetricsHttpServer::Stop() {
  if (!thread_.joinable()) return;
  // httplib's stop() does nothing until the accept loop runs: wait for it (or for it to have failed).
  while (!server_->is_running() && !listen_returned_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server_->stop();
  thread_.join();
}

std::string MetricsHttpServer::address() const { return port_ == 0 ? "" : JoinHostPort(host_, port_); }

absl::StatusOr<std::string> ScrapeMetrics(const std::string& address, absl::Duration timeout) {
  httplib::Client client(absl::StrCat("http://", address));
  const auto chrono_timeout = absl::ToChronoMicroseconds(timeout);
  client.set_connection_timeout(chrono_timeout);
  client.set_read_timeout(chrono_timeout);
  httplib::Result result = client.Get("/metrics");
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat("GET http://", address, "/metrics: ", httplib::to_string(result.error())));
  }
  if (result->status != 200) {
    const std::string message = absl::StrCat("GET http://", address, "/metrics: HTTP ", result->status);
    return result->status == 404 ? absl::NotFoundError(message) : absl::InternalError(message);
  }
  return result->body;
}

}  // namespace tandem
