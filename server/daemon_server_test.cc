#include "server/daemon_server.h"

#include <atomic>

#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "proto/tandem.grpc.pb.h"
#include "router/health_client.h"

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

// RELIABILITY.md F8: an engine that stops moving while the process and its health service still answer
// turns the worker NOT_SERVING within the stall timeout, and SERVING again once it moves; a drain
// (SetServing(false)) is not undone by the engine moving.
TEST(DaemonServerTest, ProgressWatchdogTurnsAStalledEngineNotServingAndBack) {
  auto server = DaemonServer::Start({"127.0.0.1", 0, -1}, {AnyService()}, nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  std::atomic<int64_t> beat_ns{absl::ToUnixNanos(absl::Now())};
  std::atomic<bool> beating{true}, quit{false};
  std::thread engine([&] {  // a live engine beats every 20 ms
    while (!quit.load()) {
      if (beating.load()) beat_ns.store(absl::ToUnixNanos(absl::Now()));
      absl::SleepFor(absl::Milliseconds(20));
    }
  });
  (*server)->WatchProgress([&] { return absl::FromUnixNanos(beat_ns.load()); }, absl::Milliseconds(400), "test");
  router::HealthClient health(grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()),
                              (*server)->address());
  auto wait_for = [&](bool serving) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      if (health.CheckNow("", absl::Seconds(1)).ok() == serving) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  };
  absl::SleepFor(absl::Milliseconds(600));
  EXPECT_FALSE((*server)->stalled());
  EXPECT_TRUE(health.CheckNow("", absl::Seconds(1)).ok());

  beating.store(false);  // the engine hangs
  const absl::Time hung = absl::Now();
  ASSERT_TRUE(wait_for(false));
  EXPECT_TRUE((*server)->stalled());
  EXPECT_GE(absl::Now() - hung, absl::Milliseconds(400));
  EXPECT_TRUE(router::IsNotServing(health.CheckNow("", absl::Seconds(1))));

  beating.store(true);  // it moves again
  ASSERT_TRUE(wait_for(true));
  EXPECT_FALSE((*server)->stalled());

  (*server)->SetServing(false);  // drain: stays NOT_SERVING while the engine moves
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_TRUE(router::IsNotServing(health.CheckNow("", absl::Seconds(1))));
  quit.store(true);
  engine.join();
  (*server)->Shutdown(absl::ZeroDuration());
}

// RELIABILITY.md V9: a message over the 64 MiB receive limit is refused with RESOURCE_EXHAUSTED before
// any handler sees it; one under the limit reaches the service (here: UNIMPLEMENTED).
TEST(DaemonServerTest, AMessageOverTheReceiveLimitIsResourceExhausted) {
  auto server = DaemonServer::Start({"127.0.0.1", 0, -1}, {AnyService()}, nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(-1);
  auto stub = v1::Tandem::NewStub(
      grpc::CreateCustomChannel((*server)->address(), grpc::InsecureChannelCredentials(), args));
  for (const auto& [bytes, code] : std::vector<std::pair<size_t, grpc::StatusCode>>{
           {(64u << 20) + 1024, grpc::StatusCode::RESOURCE_EXHAUSTED}, {1u << 20, grpc::StatusCode::UNIMPLEMENTED}}) {
    v1::TokenizeRequest request;
    request.set_text(std::string(bytes, 'a'));
    v1::TokenizeResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    const grpc::Status status = stub->Tokenize(&context, request, &response);
    EXPECT_EQ(status.error_code(), code) << bytes << " bytes: " << status.error_message();
  }
}

// RELIABILITY.md H2: a health check for a service the daemon does not know is NOT_FOUND (gRPC's health
// service), not SERVING and not a hang; the whole-server check ("") answers SERVING.
TEST(DaemonServerTest, HealthCheckOfAnUnknownServiceIsNotFound) {
  auto server = DaemonServer::Start({"127.0.0.1", 0, -1}, {AnyService()}, nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  router::HealthClient health(grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()),
                              (*server)->address());
  EXPECT_TRUE(health.CheckNow("", absl::Seconds(2)).ok());
  const absl::Status unknown = health.CheckNow("no.such.Service", absl::Seconds(2));
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound) << unknown;
}

// RELIABILITY.md S5: a client pinging far more often than the server's policy (one ping per 10 s without
// data) is sent GOAWAY (too_many_pings) and its connection drops; a client within the policy keeps it.
TEST(DaemonServerTest, APingFloodingClientIsDisconnected) {
  auto server = DaemonServer::Start({"127.0.0.1", 0, -1}, {AnyService()}, nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  auto connect = [&](int keepalive_ms) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, keepalive_ms);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    auto channel = grpc::CreateCustomChannel((*server)->address(), grpc::InsecureChannelCredentials(), args);
    EXPECT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5)));
    return channel;
  };
  auto flooder = connect(100);
  auto polite = connect(10000);
  bool flooder_dropped = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!flooder_dropped && absl::Now() < deadline) {
    flooder_dropped = flooder->GetState(false) != GRPC_CHANNEL_READY;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(flooder_dropped) << "a client pinging every 100 ms was still connected after 5 s";
  EXPECT_EQ(polite->GetState(false), GRPC_CHANNEL_READY);
}

}  // namespace
}  // namespace tandem
