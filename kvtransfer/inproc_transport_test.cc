#include "kvtransfer/inproc_transport.h"

#include <thread>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kvtransfer/fake_kv.h"
#include "kvtransfer/kv_chunking.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

struct Shape {
  DType dtype;
  int32_t num_layers;
  int32_t num_tokens;
  int64_t max_chunk_bytes;
};

class InProcessTransferTest : public ::testing::TestWithParam<Shape> {};

TEST_P(InProcessTransferTest, MovesByteExactKv) {
  const Shape shape = GetParam();
  const KvLayout layout = FakeLayout(shape.num_layers, shape.dtype);
  FakeKvSource source(layout);
  const std::string lease = source.AddLease(shape.num_tokens);
  InProcessKvRegistry registry;
  ASSERT_TRUE(registry.Register("prefill-0", &source).ok());
  InProcessKvTransport transport(&registry, {.max_chunk_bytes = shape.max_chunk_bytes});

  RecordingKvSink sink(layout, shape.num_tokens);
  KvHandle handle{.lease_id = lease, .source = "prefill-0", .num_tokens = shape.num_tokens,
                  .layout = layout, .transport = "inproc"};
  auto stats = transport.Pull(handle, sink, absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_TRUE(CheckSameKv(source, lease, sink).ok()) << CheckSameKv(source, lease, sink);
  EXPECT_EQ(stats->bytes, int64_t{shape.num_tokens} * layout.bytes_per_token());
  const int32_t per_chunk = TokensPerChunk(layout, shape.max_chunk_bytes);
  const int32_t chunks_per_layer = (shape.num_tokens + per_chunk - 1) / per_chunk;
  EXPECT_EQ(stats->chunks, chunks_per_layer * shape.num_layers);
  EXPECT_EQ(sink.writes(), stats->chunks);
  ASSERT_TRUE(registry.Unregister("prefill-0").ok());
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, InProcessTransferTest,
    ::testing::Values(Shape{DType::kF32, 1, 1, 0}, Shape{DType::kF32, 3, 37, 0},
                      Shape{DType::kBF16, 5, 101, 0},
                      Shape{DType::kF32, 4, 37, 200},   // 3 tokens a chunk (64 B of K+V each)
                      Shape{DType::kBF16, 3, 67, 1},    // one token a chunk
                      Shape{DType::kF16, 2, 255, 1000}));

class InProcessErrorsTest : public ::testing::Test {
 protected:
  InProcessErrorsTest() : layout_(FakeLayout(2, DType::kF32)), source_(layout_) {
    lease_ = source_.AddLease(9);
    EXPECT_TRUE(registry_.Register("p", &source_).ok());
  }
  ~InProcessErrorsTest() override { (void)registry_.Unregister("p"); }

  KvHandle Handle() const {
    return {.lease_id = lease_, .source = "p", .num_tokens = 9, .layout = layout_};
  }

  KvLayout layout_;
  FakeKvSource source_;
  std::string lease_;
  InProcessKvRegistry registry_;
  InProcessKvTransport transport_{&registry_};
};

TEST_F(InProcessErrorsTest, LayoutMismatchIsFailedPreconditionNamingTheField) {
  KvLayout other = layout_;
  other.dtype = DType::kBF16;
  RecordingKvSink sink(other, 9);
  KvHandle handle = Handle();
  handle.layout = other;  // handle and sink agree; the source does not
  auto stats = transport_.Pull(handle, sink, absl::InfiniteFuture());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(stats.status().message(), HasSubstr("dtype"));
  EXPECT_EQ(source_.reads(), 0);
}

TEST_F(InProcessErrorsTest, UnknownLeaseIsNotFound) {
  RecordingKvSink sink(layout_, 9);
  KvHandle handle = Handle();
  handle.lease_id = "no-such-lease";
  auto stats = transport_.Pull(handle, sink, absl::InfiniteFuture());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(stats.status().message(), HasSubstr("no-such-lease"));
}

TEST_F(InProcessErrorsTest, UnregisteredSourceIsUnavailable) {
  RecordingKvSink sink(layout_, 9);
  KvHandle handle = Handle();
  handle.source = "gone";
  EXPECT_EQ(transport_.Pull(handle, sink, absl::InfiniteFuture()).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(InProcessErrorsTest, PastDeadlineIsDeadlineExceeded) {
  RecordingKvSink sink(layout_, 9);
  EXPECT_EQ(transport_.Pull(Handle(), sink, absl::Now() - absl::Seconds(1)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(source_.reads(), 0);
}

TEST_F(InProcessErrorsTest, SinkErrorStopsThePull) {
  RecordingKvSink sink(layout_, 9);
  sink.FailFromWrite(1);
  auto stats = transport_.Pull(Handle(), sink, absl::InfiniteFuture());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(sink.writes(), 2);
}

TEST_F(InProcessErrorsTest, LeaseLongerThanTheHandleSaysIsDataLoss) {
  const std::string longer = source_.AddLease(12);
  RecordingKvSink sink(layout_, 9);
  KvHandle handle = Handle();
  handle.lease_id = longer;
  auto stats = transport_.Pull(handle, sink, absl::InfiniteFuture());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kDataLoss);
}

TEST(InProcessKvRegistryTest, RegisterTwiceAndUnregisterUnknownAreErrors) {
  FakeKvSource source(FakeLayout(1, DType::kF32));
  InProcessKvRegistry registry;
  ASSERT_TRUE(registry.Register("a", &source).ok());
  EXPECT_EQ(registry.Register("a", &source).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.Register("", &source).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.Register("b", nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.Unregister("b").code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(registry.Unregister("a").ok());
}

TEST(InProcessKvRegistryTest, UnregisterWaitsForRunningPulls) {
  const KvLayout layout = FakeLayout(1, DType::kF32);
  FakeKvSource source(layout);
  const std::string lease = source.AddLease(4);
  InProcessKvRegistry registry;
  ASSERT_TRUE(registry.Register("a", &source).ok());
  source.Stall();
  InProcessKvTransport transport(&registry);
  absl::StatusOr<PullStats> result;
  std::thread puller([&] {
    RecordingKvSink sink(layout, 4);
    result = transport.Pull({.lease_id = lease, .source = "a", .num_tokens = 4, .layout = layout},
                            sink, absl::InfiniteFuture());
  });
  while (source.reads() == 0) absl::SleepFor(absl::Milliseconds(1));
  absl::Notification unregistered;
  std::thread closer([&] {
    EXPECT_TRUE(registry.Unregister("a").ok());
    unregistered.Notify();
  });
  EXPECT_FALSE(unregistered.WaitForNotificationWithTimeout(absl::Milliseconds(100)));
  source.Unstall();
  EXPECT_TRUE(unregistered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  puller.join();
  closer.join();
  EXPECT_TRUE(result.ok()) << result.status();
}

}  // namespace
}  // namespace tandem
