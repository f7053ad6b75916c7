#include "common/metrics_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// One raw HTTP/1.1 exchange on loopback (no HTTP library on the client side): the whole response.
std::string RawRequest(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) response.append(buffer, n);
  close(fd);
  return response;
}

class MetricsHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    (*registry_.AddCounter("tandem_requests_total", "Finished requests.", {{"outcome", "ok"}}))->Increment(2);
    (*registry_.AddGauge("tandem_inflight", "In flight."))->Set(1);
    (*registry_.AddHistogram("tandem_e2e_seconds", "End to end.", {1}))->Observe(0.5);
  }
  MetricsRegistry registry_;
};

TEST_F(MetricsHttpTest, ServesTheExpositionOverLoopback) {
  MetricsHttpServer server(registry_);
  absl::StatusOr<int> port = server.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_GT(*port, 0);
  EXPECT_EQ(server.port(), *port);
  EXPECT_EQ(server.address(), absl::StrCat("127.0.0.1:", *port));

  const std::string response =
      RawRequest(*port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(response, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(response, HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  EXPECT_THAT(response, EndsWith("\r\n\r\n" + registry_.Render()));
  EXPECT_THAT(response, HasSubstr("# TYPE tandem_requests_total counter\n"
                                  "tandem_requests_total{outcome=\"ok\"} 2\n"));
  EXPECT_THAT(response, HasSubstr("tandem_e2e_seconds_bucket{le=\"+Inf\"} 1\n"));

  // Values are read at every scrape.
  (*registry_.AddCounter("tandem_requests_total", "Finished requests.", {{"outcome", "ok"}}))->Increment();
  absl::StatusOr<std::string> body = ScrapeMetrics(server.address());
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, registry_.Render());
  EXPECT_THAT(*body, HasSubstr("tandem_requests_total{outcome=\"ok\"} 3\n"));
  server.Stop();
  server.Stop();  // idempotent
  EXPECT_EQ(ScrapeMetrics(absl::StrCat("127.0.0.1:", *port), absl::Seconds(1)).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(MetricsHttpTest, OtherPathsAre404) {
  MetricsHttpServer server(registry_);
  ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  EXPECT_THAT(RawRequest(server.port(), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
              StartsWith("HTTP/1.1 404 Not Found\r\n"));
  EXPECT_THAT(RawRequest(server.port(), "GET /metricsx HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
              StartsWith("HTTP/1.1 404 Not Found\r\n"));
}

TEST_F(MetricsHttpTest, PortInUseAndBadPortAreErrors) {
  MetricsHttpServer first(registry_);
  ASSERT_TRUE(first.Start("127.0.0.1", 0).ok());
  MetricsHttpServer second(registry_);
  absl::StatusOr<int> taken = second.Start("127.0.0.1", first.port());
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(taken.status().message(), HasSubstr(absl::StrCat("127.0.0.1:", first.port())));
  MetricsHttpServer third(registry_);
  EXPECT_EQ(third.Start("127.0.0.1", 70000).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(first.Start("127.0.0.1", 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(MetricsHttpTest, StopRightAfterStartAndWithAnIdleConnectionReturnsPromptly) {
  for (int i = 0; i < 20; ++i) {
    MetricsHttpServer server(registry_);
    ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
    server.Stop();
  }
  MetricsHttpServer server(registry_);
  ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  // A keep-alive client that stays connected after its scrape.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  char buffer[4096];
  ASSERT_GT(read(fd, buffer, sizeof(buffer)), 0);
  const absl::Time start = absl::Now();
  server.Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  close(fd);
}

// 64 idle connections (connected, saying nothing) starved cpp-httplib's handler threads and /metrics
// stopped answering (issue 11, item 8). Connections hold no thread now.
TEST_F(MetricsHttpTest, IdleConnectionsDoNotStarveScrapes) {
  MetricsHttpServer server(registry_);
  ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  std::vector<int> idle;
  for (int i = 0; i < 64; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server.port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    idle.push_back(fd);
  }
  for (int i = 0; i < 5; ++i) {
    const absl::StatusOr<std::string> page = ScrapeMetrics(server.address(), absl::Seconds(1));
    ASSERT_TRUE(page.ok()) << page.status();
  }
  for (int fd : idle) close(fd);
  server.Stop();
}

}  // namespace
}  // namespace tandem
