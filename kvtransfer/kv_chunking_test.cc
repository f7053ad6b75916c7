#include "kvtransfer/kv_chunking.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

KvLayout Layout(int32_t num_layers) {
  KvLayout layout;
  layout.model_fingerprint = "fp";
  layout.num_layers = num_layers;
  layout.num_kv_heads = 2;
  layout.head_dim = 4;
  layout.dtype = DType::kF32;  // 32 bytes per token per layer
  return layout;
}

TEST(TokensPerChunkTest, FitsKPlusVInTheBudget) {
  const KvLayout layout = Layout(1);
  EXPECT_EQ(TokensPerChunk(layout, 640), 10);  // 64 bytes of K+V per token
  EXPECT_EQ(TokensPerChunk(layout, 0), kDefaultMaxChunkBytes / 64);
  EXPECT_EQ(TokensPerChunk(layout, 10), 1);  // one token even when it does not fit
  EXPECT_EQ(TokensPerChunk(layout, int64_t{1} << 40), kMaxChunkBytesLimit / 64);
}

TEST(CoverageTrackerTest, CompleteWhenEveryTokenOfEveryLayerArrivesOnce) {
  CoverageTracker coverage(2, 10);
  for (int layer = 1; layer >= 0; --layer) {  // any order
    ASSERT_TRUE(coverage.Add(layer, 6, 4).ok());
    ASSERT_TRUE(coverage.Add(layer, 0, 3).ok());
    ASSERT_TRUE(coverage.Add(layer, 3, 3).ok());
  }
  EXPECT_TRUE(coverage.CheckComplete().ok());
}

TEST(CoverageTrackerTest, GapIsDataLossNamingLayerAndTokens) {
  CoverageTracker coverage(4, 48);
  for (int layer = 0; layer < 4; ++layer) {
    ASSERT_TRUE(coverage.Add(layer, 0, 16).ok());
    if (layer != 3) {
      ASSERT_TRUE(coverage.Add(layer, 16, 16).ok());
    }
    ASSERT_TRUE(coverage.Add(layer, 32, 16).ok());
  }
  const absl::Status status = coverage.CheckComplete();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("incomplete KV transfer: layer 3 tokens 16..31 missing"));
}

TEST(CoverageTrackerTest, ShortStreamIsIncomplete) {
  CoverageTracker coverage(1, 9);
  ASSERT_TRUE(coverage.Add(0, 0, 5).ok());
  EXPECT_THAT(coverage.CheckComplete().message(), HasSubstr("layer 0 tokens 5..8 missing"));
  CoverageTracker nothing(2, 3);
  EXPECT_THAT(nothing.CheckComplete().message(), HasSubstr("layer 0 tokens 0..2 missing"));
}

TEST(CoverageTrackerTest, OverlapAndOutOfRangeAreDataLoss) {
  CoverageTracker coverage(2, 10);
  ASSERT_TRUE(coverage.Add(0, 2, 4).ok());
  EXPECT_THAT(coverage.Add(0, 5, 2).message(), HasSubstr("layer 0 tokens 5..6 written twice"));
  EXPECT_THAT(coverage.Add(0, 0, 3).message(), HasSubstr("written twice"));
  EXPECT_EQ(coverage.Add(2, 0, 1).code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(coverage.Add(2, 0, 1).message(), HasSubstr("layer 2 out of range"));
  EXPECT_THAT(coverage.Add(1, 8, 3).message(), HasSubstr("outside the 10 tokens"));
  EXPECT_EQ(coverage.Add(1, -1, 2).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(coverage.Add(1, 0, 0).code(), absl::StatusCode::kDataLoss);
  // Refused chunks recorded nothing: the rest still fits.
  ASSERT_TRUE(coverage.Add(0, 0, 2).ok());
  ASSERT_TRUE(coverage.Add(0, 6, 4).ok());
  ASSERT_TRUE(coverage.Add(1, 0, 10).ok());
  EXPECT_TRUE(coverage.CheckComplete().ok());
}

class CountingSink : public KvSink {
 public:
  CountingSink(KvLayout layout, int32_t num_tokens) : layout_(layout), num_tokens_(num_tokens) {}
  const KvLayout& layout() const override { return layout_; }
  int32_t num_tokens() const override { return num_tokens_; }
  absl::Status WriteTokens(int32_t, int32_t, int32_t, const void*, const void*) override {
    ++writes;
    return absl::OkStatus();
  }
  int writes = 0;

 private:
  KvLayout layout_;
  int32_t num_tokens_;
};

TEST(ValidatingKvSinkTest, WrongByteSizeIsDataLossAndNotForwarded) {
  CountingSink inner(Layout(1), 4);
  ValidatingKvSink sink(inner);
  const std::string good(2 * 32, 'x');
  const std::string short_k(2 * 32 - 1, 'x');
  const absl::Status status = sink.WriteChunk(0, 0, 2, short_k, good);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("k is 63 bytes, expected 64"));
  EXPECT_EQ(inner.writes, 0);
  ASSERT_TRUE(sink.WriteChunk(0, 0, 2, good, good).ok());
  ASSERT_TRUE(sink.WriteChunk(0, 2, 2, good, good).ok());
  EXPECT_EQ(inner.writes, 2);
  EXPECT_EQ(sink.bytes(), 4 * 64);
  EXPECT_EQ(sink.chunks(), 2);
  EXPECT_TRUE(sink.Finish().ok());
}

TEST(CheckPullStartTest, RefusesPastDeadlineLayoutMismatchAndTokenCount) {
  CountingSink sink(Layout(2), 8);
  KvHandle handle;
  handle.lease_id = "l";
  handle.num_tokens = 8;
  handle.layout = Layout(2);
  EXPECT_TRUE(CheckPullStart(handle, sink, absl::InfiniteFuture()).ok());
  EXPECT_EQ(CheckPullStart(handle, sink, absl::Now() - absl::Seconds(1)).code(),
            absl::StatusCode::kDeadlineExceeded);
  handle.layout.head_dim = 8;
  EXPECT_EQ(CheckPullStart(handle, sink, absl::InfiniteFuture()).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(CheckPullStart(handle, sink, absl::InfiniteFuture()).message(),
              HasSubstr("head_dim"));
  handle.layout = Layout(2);
  handle.num_tokens = 9;
  EXPECT_EQ(CheckPullStart(handle, sink, absl::InfiniteFuture()).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tandem
