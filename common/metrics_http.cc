#include "common/metrics_http.h"

#include <chrono>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/asio.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"

namespace tandem {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr auto kIdleTimeout = std::chrono::seconds(10);

std::string JoinHostPort(const std::string& host, int port) {
  if (absl::StrContains(host, ":") && !absl::StartsWith(host, "[")) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

// One connection: read one request, answer it, close.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const MetricsRegistry& registry) : stream_(std::move(socket)), registry_(registry) {}

  void Start() {
    stream_.expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, request_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (!ec) self->Respond();
    });
  }

 private:
  void Respond() {
    response_.version(request_.version());
    response_.keep_alive(false);
    if (request_.method() == http::verb::get && request_.target() == "/metrics") {
      response_.result(http::status::ok);
      response_.set(http::field::content_type, kContentType);
      response_.body() = registry_.Render();
    } else {
      response_.result(http::status::not_found);
      response_.set(http::field::content_type, "text/plain");
      response_.body() = "not found: only GET /metrics\n";
    }
    response_.prepare_payload();
    stream_.expires_after(kIdleTimeout);
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code, size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    });
  }

  beast::tcp_stream stream_;
  const MetricsRegistry& registry_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

}  // namespace

class MetricsHttpServer::Impl {
 public:
  explicit Impl(const MetricsRegistry& registry) : registry(registry), acceptor(ioc) {}

  void Accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) std::make_shared<Session>(std::move(socket), registry)->Start();
      Accept();
    });
  }

  const MetricsRegistry& registry;
  net::io_context ioc;
  tcp::acceptor acceptor;
  std::thread thread;
};

MetricsHttpServer::MetricsHttpServer(const MetricsRegistry& registry) : registry_(registry) {}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

absl::StatusOr<int> MetricsHttpServer::Start(const std::string& host, int port) {
  if (impl_ != nullptr) return absl::InvalidArgumentError("metrics server: Start was called twice");
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("metrics port must be in [0, 65535], got ", port));
  }
  auto impl = std::make_unique<Impl>(registry_);
  beast::error_code ec;
  const net::ip::address address = net::ip::make_address(host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("metrics server: bad host ", host, ": ", ec.message()));
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  impl->acceptor.open(endpoint.protocol(), ec);
  // SO_REUSEADDR only (restart while old connections sit in TIME_WAIT); no SO_REUSEPORT, so a second
  // server cannot bind the same port and share the scrapes.
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("metrics server: cannot listen on ", JoinHostPort(host, port), ": ", ec.message()));
  }
  host_ = host;
  port_ = impl->acceptor.local_endpoint().port();
  impl->Accept();
  impl->thread = std::thread([raw = impl.get()] { raw->ioc.run(); });
  impl_ = std::move(impl);
  return port_;
}

void MetricsHttpServer::Stop() {
  if (impl_ == nullptr || !impl_->thread.joinable()) return;
  // Pending reads and writes are abandoned: a scrape in flight sees its connection closed.
  impl_->ioc.stop();
  impl_->thread.join();
}

std::string MetricsHttpServer::address() const { return port_ == 0 ? "" : JoinHostPort(host_, port_); }

absl::StatusOr<std::string> ScrapeMetrics(const std::string& address, absl::Duration timeout) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError(absl::StrCat("bad address ", address));
  std::string host = address.substr(0, colon);
  if (absl::StartsWith(host, "[")) host = host.substr(1, host.size() - 2);
  const std::string port = address.substr(colon + 1);
  const std::string where = absl::StrCat("GET http://", address, "/metrics");
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  const auto endpoints = resolver.resolve(host, port, ec);
  if (ec) return absl::UnavailableError(absl::StrCat(where, ": ", ec.message()));
  stream.expires_after(absl::ToChronoMilliseconds(timeout));
  // Synchronous calls on a tcp_stream ignore its expiry; run them as async operations with a deadline.
  std::optional<absl::Status> result;
  std::string body;
  http::request<http::empty_body> request{http::verb::get, "/metrics", 11};
  request.set(http::field::host, address);
  http::response<http::string_body> response;
  beast::flat_buffer buffer;
  stream.async_connect(endpoints, [&](beast::error_code connect_ec, const tcp::endpoint&) {
    if (connect_ec) {
      result = absl::UnavailableError(absl::StrCat(where, ": ", connect_ec.message()));
      return;
    }
    http::async_write(stream, request, [&](beast::error_code write_ec, size_t) {
      if (write_ec) {
        result = absl::UnavailableError(absl::StrCat(where, ": ", write_ec.message()));
        return;
      }
      http::async_read(stream, buffer, response, [&](beast::error_code read_ec, size_t) {
        if (read_ec) {
          result = absl::UnavailableError(absl::StrCat(where, ": ", read_ec.message()));
        } else if (response.result_int() != 200) {
          const std::string message = absl::StrCat(where, ": HTTP ", response.result_int());
          result = response.result_int() == 404 ? absl::NotFoundError(message) : absl::InternalError(message);
        } else {
          body = std::move(response.body());
          result = absl::OkStatus();
        }
      });
    });
  });
  ioc.run();
  if (!result.has_value()) return absl::UnavailableError(absl::StrCat(where, ": no answer"));
  if (!result->ok()) return *result;
  return body;
}

}  // namespace tandem
