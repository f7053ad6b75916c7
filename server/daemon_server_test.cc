#include "server/daemon_server.h"

#include "gtest/gtest.h"
#include "proto/tandem.grpc.pb.h"

namespace tandem {
namespace {

// A service whose methods all answer UNIMPLEMENTED: a gRPC server needs at least one.
v1::Tandem::CallbackService* AnyService() {
  static auto* service = new v1::Tandem::CallbackService;
  return service;
}

TEST(DaemonServerTest, ServesOnAFreePortWithMetrics) {
  MetricsRegistry metrics;
  auto server = DaemonServer::Start({"127.0.0.1", 0, 0}, {AnyService()}, &metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_GT((*server)->port(), 0);
  EXPECT_EQ((*server)->address(), "127.0.0.1:" + std::to_string((*server)->port()));
  EXPECT_FALSE((*server)->metrics_address().empty());
  EXPECT_TRUE(ScrapeMetrics((*server)->metrics_address()).ok());
  (*server)->Shutdown(absl::ZeroDuration());
  (*server)->Shutdown(absl::ZeroDuration());  // idempotent
}

// gRPC sets SO_REUSEPORT unless told not to: a second daemon on the same port would start and share
// the traffic with the first (issue 11, item 5). It must fail instead.
TEST(DaemonServerTest, ASecondDaemonOnAPortInUseFailsToStart) {
  auto first = DaemonServer::Start({"127.0.0.1", 0, -1}, {AnyService()}, nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = DaemonServer::Start({"127.0.0.1", (*first)->port(), -1}, {AnyService()}, nullptr);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find(std::to_string((*first)->port())), std::string::npos) << second.status();
}

TEST(DaemonServerTest, PortsOutOfRangeAreRefusedNamingTheFlag) {
  auto bad_port = DaemonServer::Start({"127.0.0.1", 70000, -1}, {}, nullptr);
  EXPECT_EQ(bad_port.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_port.status().message().find("--port"), std::string::npos);
  MetricsRegistry metrics;
  auto bad_metrics = DaemonServer::Start({"127.0.0.1", 0, -2}, {}, &metrics);
  EXPECT_NE(bad_metrics.status().message().find("--metrics-port"), std::string::npos);
}

}  // namespace
}  // namespace tandem
