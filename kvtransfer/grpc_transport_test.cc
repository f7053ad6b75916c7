#include "kvtransfer/grpc_transport.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kvtransfer/fake_kv.h"
#include "kvtransfer/kv_chunking.h"
#include "kvtransfer/kv_proto.h"
#include "kvtransfer/pull_kv_test_server.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

// Waits until every PullKv reactor ever built has been destroyed (RELIABILITY.md L2).
bool AllReactorsGone(absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  while (absl::Now() < until) {
    const PullKvReactorCounts counts = GetPullKvReactorCounts();
    if (counts.constructed == counts.destroyed) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return false;
}

struct Shape {
  DType dtype;
  int32_t num_layers;
  int32_t num_tokens;
  int64_t max_chunk_bytes;
};

class GrpcTransferTest : public ::testing::TestWithParam<Shape> {};

TEST_P(GrpcTransferTest, MovesByteExactKvOverLoopback) {
  const Shape shape = GetParam();
  const KvLayout layout = FakeLayout(shape.num_layers, shape.dtype);
  FakeKvSource source(layout);
  const std::string lease = source.AddLease(shape.num_tokens);
  auto server = PullKvTestServer::Start(&source);
  ASSERT_TRUE(server.ok()) << server.status();
  GrpcKvTransport transport({.max_chunk_bytes = shape.max_chunk_bytes});

  RecordingKvSink sink(layout, shape.num_tokens);
  const KvHandle handle{.lease_id = lease, .source = (*server)->address(),
                        .num_tokens = shape.num_tokens, .layout = layout};
  auto stats = transport.Pull(handle, sink, absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_TRUE(CheckSameKv(source, lease, sink).ok()) << CheckSameKv(source, lease, sink);
  EXPECT_EQ(stats->bytes, int64_t{shape.num_tokens} * layout.bytes_per_token());
  const int32_t per_chunk = TokensPerChunk(layout, shape.max_chunk_bytes);
  EXPECT_EQ(stats->chunks, (shape.num_tokens + per_chunk - 1) / per_chunk * shape.num_layers);
  EXPECT_TRUE(AllReactorsGone(absl::Seconds(5)));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GrpcTransferTest,
    ::testing::Values(Shape{DType::kF32, 1, 1, 0}, Shape{DType::kF32, 3, 37, 0},
                      Shape{DType::kBF16, 5, 101, 0},
                      Shape{DType::kF32, 4, 37, 200},  // 3 tokens a chunk
                      Shape{DType::kBF16, 3, 67, 1},   // one token a chunk: 201 chunks
                      Shape{DType::kF16, 2, 4099, 1000}));

TEST(GrpcTransferTest, LargeLeaseInOneMiBChunks) {
  KvLayout layout = FakeLayout(4, DType::kBF16);
  layout.num_kv_heads = 8;
  layout.head_dim = 128;  // 2 KiB per token per layer: 256 tokens a 1 MiB chunk
  FakeKvSource source(layout);
  const std::string lease = source.AddLease(1001);
  auto server = PullKvTestServer::Start(&source);
  ASSERT_TRUE(server.ok());
  GrpcKvTransport transport;
  RecordingKvSink sink(layout, 1001);
  auto stats = transport.Pull(
      {.lease_id = lease, .source = (*server)->address(), .num_tokens = 1001, .layout = layout},
      sink, absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->chunks, 4 * 4);
  EXPECT_TRUE(CheckSameKv(source, lease, sink).ok());
}

class GrpcErrorsTest : public ::testing::Test {
 protected:
  GrpcErrorsTest() : layout_(FakeLayout(2, DType::kF32)), source_(layout_) {
    lease_ = source_.AddLease(50);
    auto server = PullKvTestServer::Start(&source_);
    EXPECT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
  }
  ~GrpcErrorsTest() override {
    source_.Unstall();
    server_->Shutdown();
    EXPECT_TRUE(AllReactorsGone(absl::Seconds(5)));
  }

  KvHandle Handle() const {
    return {.lease_id = lease_, .source = server_->address(), .num_tokens = 50, .layout = layout_};
  }

  KvLayout layout_;
  FakeKvSource source_;
  std::string lease_;
  std::unique_ptr<PullKvTestServer> server_;
  GrpcKvTransport transport_{{.max_chunk_bytes = 64}};  // one token a chunk: 100 chunks
};

TEST_F(GrpcErrorsTest, LayoutMismatchIsFailedPreconditionNamingTheField) {
  KvLayout other = layout_;
  other.head_dim = 16;
  RecordingKvSink sink(other, 50);
  KvHandle handle = Handle();
  handle.layout = other;
  auto stats = transport_.Pull(handle, sink, absl::Now() + absl::Seconds(10));
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(stats.status().message(), HasSubstr("head_dim is 16, expected 8"));
  EXPECT_EQ(source_.reads(), 0);
}

TEST_F(GrpcErrorsTest, HandleAndSinkDisagreeIsFailedPreconditionBeforeAnyCall) {
  KvLayout other = layout_;
  other.model_fingerprint = "another-model";
  RecordingKvSink sink(other, 50);
  auto stats = transport_.Pull(Handle(), sink, absl::Now() + absl::Seconds(10));
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(stats.status().message(), HasSubstr("model_fingerprint"));
  EXPECT_EQ(GetPullKvReactorCounts().constructed, GetPullKvReactorCounts().destroyed);
}

TEST_F(GrpcErrorsTest, UnknownLeaseIsNotFound) {
  RecordingKvSink sink(layout_, 50);
  KvHandle handle = Handle();
  handle.lease_id = "lease-404";
  auto stats = transport_.Pull(handle, sink, absl::Now() + absl::Seconds(10));
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(stats.status().message(), HasSubstr("lease-404"));
}

TEST_F(GrpcErrorsTest, ServerShutDownIsUnavailable) {
  const KvHandle handle = Handle();
  server_->Shutdown();
  RecordingKvSink sink(layout_, 50);
  const absl::Time start = absl::Now();
  auto stats = transport_.Pull(handle, sink, absl::Now() + absl::Seconds(10));
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kUnavailable) << stats.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));  // fails fast, not at the deadline
}

TEST_F(GrpcErrorsTest, NothingListeningIsUnavailable) {
  // Port 1 on loopback: privileged and unused in the test environment.
  KvHandle handle = Handle();
  handle.source = "127.0.0.1:1";
  RecordingKvSink sink(layout_, 50);
  auto stats = transport_.Pull(handle, sink, absl::Now() + absl::Seconds(10));
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kUnavailable) << stats.status();
}

TEST_F(GrpcErrorsTest, PastDeadlineIsDeadlineExceeded) {
  RecordingKvSink sink(layout_, 50);
  auto stats = transport_.Pull(Handle(), sink, absl::Now() - absl::Milliseconds(1));
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(source_.reads(), 0);
}

TEST_F(GrpcErrorsTest, StalledSourceIsDeadlineExceededWithinOneSecondOfTheDeadline) {
  source_.Stall();
  RecordingKvSink sink(layout_, 50);
  const absl::Time deadline = absl::Now() + absl::Milliseconds(300);
  auto stats = transport_.Pull(Handle(), sink, deadline);
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kDeadlineExceeded) << stats.status();
  EXPECT_LT(absl::Now(), deadline + absl::Seconds(1));
}

TEST(GrpcCancelTest, ClientCancelMidStreamLeavesNoReactorAlive) {
  // 64 MiB in 1 MiB chunks: far more than HTTP/2 flow control lets the server run ahead, so the
  // server is still streaming when the puller gives up.
  KvLayout layout = FakeLayout(4, DType::kBF16);
  layout.num_kv_heads = 8;
  layout.head_dim = 128;
  FakeKvSource source(layout);
  const std::string lease = source.AddLease(4096);
  auto server = PullKvTestServer::Start(&source);
  ASSERT_TRUE(server.ok());
  const PullKvReactorCounts before = GetPullKvReactorCounts();
  GrpcKvTransport transport;
  RecordingKvSink sink(layout, 4096);
  sink.FailFromWrite(2);  // the puller gives up after 2 of 64 chunks and cancels the call
  auto stats = transport.Pull(
      {.lease_id = lease, .source = (*server)->address(), .num_tokens = 4096, .layout = layout},
      sink, absl::Now() + absl::Seconds(30));
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(sink.writes(), 3);
  EXPECT_TRUE(AllReactorsGone(absl::Seconds(5)));
  EXPECT_EQ(GetPullKvReactorCounts().constructed, before.constructed + 1);
  EXPECT_LT(source.reads(), 64);  // the source stopped early
}

TEST_F(GrpcErrorsTest, ManyConcurrentPullsShareOneChannel) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      RecordingKvSink sink(layout_, 50);
      if (transport_.Pull(Handle(), sink, absl::Now() + absl::Seconds(30)).ok() &&
          CheckSameKv(source_, lease_, sink).ok()) {
        ++ok;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 8);
}

TEST(PullKvReactorTest, OtherPrefillMethodsAreUnimplemented) {
  FakeKvSource source(FakeLayout(1, DType::kF32));
  auto server = PullKvTestServer::Start(&source);
  ASSERT_TRUE(server.ok());
  auto stub = worker::v1::PrefillWorker::NewStub(
      grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  worker::v1::LoadReport report;
  EXPECT_EQ(stub->GetLoad(&context, {}, &report).error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST(PullKvReactorTest, BadRequestLayoutIsInvalidArgument) {
  FakeKvSource source(FakeLayout(1, DType::kF32));
  const std::string lease = source.AddLease(3);
  auto server = PullKvTestServer::Start(&source);
  ASSERT_TRUE(server.ok());
  auto stub = worker::v1::PrefillWorker::NewStub(
      grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  worker::v1::PullKvRequest request;
  request.set_lease_id(lease);
  LayoutToProto(source.layout(), request.mutable_layout());
  request.mutable_layout()->set_dtype("FP8");
  auto reader = stub->PullKv(&context, request);
  worker::v1::KvChunk chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("request.layout.dtype"));
  EXPECT_TRUE(AllReactorsGone(absl::Seconds(5)));
}

}  // namespace
}  // namespace tandem
