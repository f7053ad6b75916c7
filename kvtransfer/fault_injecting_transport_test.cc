#include "kvtransfer/fault_injecting_transport.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kvtransfer/fake_kv.h"
#include "kvtransfer/grpc_transport.h"
#include "kvtransfer/inproc_transport.h"
#include "kvtransfer/pull_kv_test_server.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

constexpr int32_t kTokens = 10;
constexpr int32_t kLayers = 2;
constexpr int32_t kChunks = 20;  // one token a chunk: K+V of a token is 128 bytes > max_chunk_bytes 64

// Every fault is checked over both the in-process and the gRPC transport (RELIABILITY.md F2/F5/F7).
class FaultTest : public ::testing::TestWithParam<std::string> {
 protected:
  FaultTest() : layout_(FakeLayout(kLayers, DType::kF32)), source_(layout_) {
    lease_ = source_.AddLease(kTokens);
    if (GetParam() == "grpc") {
      auto server = PullKvTestServer::Start(&source_);
      EXPECT_TRUE(server.ok()) << server.status();
      server_ = std::move(server).value();
      address_ = server_->address();
    } else {
      EXPECT_TRUE(registry_.Register("prefill", &source_).ok());
      address_ = "prefill";
    }
  }
  ~FaultTest() override {
    if (server_ != nullptr) server_->Shutdown();
    if (GetParam() != "grpc") {
      EXPECT_TRUE(registry_.Unregister("prefill").ok());
    }
  }

  std::unique_ptr<FaultInjectingKvTransport> Wrap(KvFaultOptions options) {
    std::unique_ptr<KvTransport> inner;
    if (GetParam() == "grpc") {
      inner = std::make_unique<GrpcKvTransport>(GrpcKvTransportOptions{.max_chunk_bytes = 64});
    } else {
      inner = std::make_unique<InProcessKvTransport>(&registry_,
                                                     InProcessKvTransportOptions{.max_chunk_bytes = 64});
    }
    return std::make_unique<FaultInjectingKvTransport>(std::move(inner), options);
  }

  absl::StatusOr<PullStats> Pull(KvTransport& transport, RecordingKvSink& sink,
                                 absl::Time deadline) {
    return transport.Pull(
        {.lease_id = lease_, .source = address_, .num_tokens = kTokens, .layout = layout_}, sink,
        deadline);
  }

  KvLayout layout_;
  FakeKvSource source_;
  std::string lease_;
  InProcessKvRegistry registry_;
  std::unique_ptr<PullKvTestServer> server_;
  std::string address_;
};

TEST_P(FaultTest, NoFaultsMovesEverything) {
  auto transport = Wrap({});
  EXPECT_EQ(transport->name(), "fault(" + GetParam() + ")");
  RecordingKvSink sink(layout_, kTokens);
  auto stats = Pull(*transport, sink, absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->chunks, kChunks);
  EXPECT_TRUE(CheckSameKv(source_, lease_, sink).ok());
}

TEST_P(FaultTest, DroppedChunkIsDetectedAsIncomplete) {
  auto transport = Wrap({.drop_chunk = 13});  // layer 1, token 3
  RecordingKvSink sink(layout_, kTokens);
  auto stats = Pull(*transport, sink, absl::Now() + absl::Seconds(10));
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(stats.status().message(),
              HasSubstr("incomplete KV transfer: layer 1 tokens 3..3 missing"));
  EXPECT_EQ(sink.writes(), kChunks - 1);
}

TEST_P(FaultTest, CorruptSizeIsDataLoss) {
  auto transport = Wrap({.corrupt_size_chunk = 4});
  RecordingKvSink sink(layout_, kTokens);
  auto stats = Pull(*transport, sink, absl::Now() + absl::Seconds(10));
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(stats.status().message(), HasSubstr("k is 63 bytes, expected 64"));
  EXPECT_EQ(sink.writes(), 4);
}

TEST_P(FaultTest, FailAfterNChunksIsUnavailableAfterExactlyN) {
  auto transport = Wrap({.fail_after_chunks = 7});
  RecordingKvSink sink(layout_, kTokens);
  auto stats = Pull(*transport, sink, absl::Now() + absl::Seconds(10));
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(stats.status().message(), HasSubstr("after 7 chunks"));
  EXPECT_EQ(sink.writes(), 7);
}

TEST_P(FaultTest, FailBeforeFirstByteNeverTouchesTheSource) {
  auto transport = Wrap({.fail_before_first_byte = true});
  RecordingKvSink sink(layout_, kTokens);
  EXPECT_EQ(Pull(*transport, sink, absl::Now() + absl::Seconds(10)).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(source_.reads(), 0);
  EXPECT_EQ(sink.writes(), 0);
}

TEST_P(FaultTest, DelayPerChunkIsRespected) {
  auto transport = Wrap({.delay_per_chunk = absl::Milliseconds(10)});
  RecordingKvSink sink(layout_, kTokens);
  const absl::Time start = absl::Now();
  auto stats = Pull(*transport, sink, absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GE(absl::Now() - start, kChunks * absl::Milliseconds(10));
  EXPECT_GE(stats->elapsed, kChunks * absl::Milliseconds(10));
  EXPECT_TRUE(CheckSameKv(source_, lease_, sink).ok());
}

TEST_P(FaultTest, DelayPastTheDeadlineIsDeadlineExceeded) {
  auto transport = Wrap({.delay_per_chunk = absl::Milliseconds(30)});
  RecordingKvSink sink(layout_, kTokens);
  const absl::Time deadline = absl::Now() + absl::Milliseconds(200);  // 20 chunks need 600 ms
  auto stats = Pull(*transport, sink, deadline);
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kDeadlineExceeded) << stats.status();
  EXPECT_LT(absl::Now(), deadline + absl::Seconds(1));
}

TEST_P(FaultTest, StallIsDeadlineExceededWithinOneSecondOfTheDeadline) {
  auto transport = Wrap({.stall_at_chunk = 3});
  RecordingKvSink sink(layout_, kTokens);
  const absl::Time deadline = absl::Now() + absl::Milliseconds(300);
  auto stats = Pull(*transport, sink, deadline);
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kDeadlineExceeded) << stats.status();
  EXPECT_GE(absl::Now(), deadline);
  EXPECT_LT(absl::Now(), deadline + absl::Seconds(1));
  EXPECT_EQ(sink.writes(), 3);
}

TEST_P(FaultTest, OptionsCanChangeBetweenPulls) {
  auto transport = Wrap({.drop_chunk = 0});
  RecordingKvSink first(layout_, kTokens);
  EXPECT_FALSE(Pull(*transport, first, absl::Now() + absl::Seconds(10)).ok());
  transport->set_options({});
  RecordingKvSink second(layout_, kTokens);
  EXPECT_TRUE(Pull(*transport, second, absl::Now() + absl::Seconds(10)).ok());
  EXPECT_TRUE(CheckSameKv(source_, lease_, second).ok());
}

INSTANTIATE_TEST_SUITE_P(Transports, FaultTest, ::testing::Values("inproc", "grpc"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace tandem
