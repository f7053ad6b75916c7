#include "model/step_plan.h"

#include <vector>

#include "gtest/gtest.h"

namespace tandem {
namespace {

TEST(PlanChunksTest, AStepThatFitsIsOneChunkOfWholeSequences) {
  const std::vector<int64_t> sizes = {5, 1, 7};
  auto chunks = PlanChunks(sizes, 16, 4);
  ASSERT_EQ(chunks.size(), 1u);
  ASSERT_EQ(chunks[0].size(), 3u);
  for (int s = 0; s < 3; ++s) {
    EXPECT_EQ(chunks[0][s].seq, s);
    EXPECT_EQ(chunks[0][s].token_begin, 0);
    EXPECT_EQ(chunks[0][s].num_tokens, sizes[s]);
    EXPECT_TRUE(chunks[0][s].last);
  }
}

TEST(PlanChunksTest, ALongPromptIsSplitInOrderAndOnlyItsLastPieceHasLogits) {
  const std::vector<int64_t> sizes = {3, 20};
  auto chunks = PlanChunks(sizes, 8, 4);
  // [s0:0-3, s1:0-5] [s1:5-13] [s1:13-20]
  ASSERT_EQ(chunks.size(), 3u);
  ASSERT_EQ(chunks[0].size(), 2u);
  EXPECT_TRUE(chunks[0][0].last);
  EXPECT_EQ(chunks[0][1].num_tokens, 5);
  EXPECT_FALSE(chunks[0][1].last);
  EXPECT_EQ(chunks[1][0].token_begin, 5);
  EXPECT_EQ(chunks[1][0].num_tokens, 8);
  EXPECT_FALSE(chunks[1][0].last);
  EXPECT_EQ(chunks[2][0].token_begin, 13);
  EXPECT_EQ(chunks[2][0].num_tokens, 7);
  EXPECT_TRUE(chunks[2][0].last);
  // Every token is covered exactly once.
  std::vector<int64_t> covered(2, 0);
  for (const auto& chunk : chunks) {
    int64_t tokens = 0;
    for (const ChunkPiece& p : chunk) {
      EXPECT_EQ(p.token_begin, covered[p.seq]);
      covered[p.seq] += p.num_tokens;
      tokens += p.num_tokens;
    }
    EXPECT_LE(tokens, 8);
  }
  EXPECT_EQ(covered, sizes);
}

TEST(PlanChunksTest, SequenceCapacitySplitsDecodeBatches) {
  const std::vector<int64_t> sizes(10, 1);
  auto chunks = PlanChunks(sizes, 100, 4);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].size(), 4u);
  EXPECT_EQ(chunks[1].size(), 4u);
  EXPECT_EQ(chunks[2].size(), 2u);
  EXPECT_EQ(chunks[2][1].seq, 9);
}

TEST(GraphBucketsTest, BucketsAscendEndAtTheMaximumAndBoundPadding) {
  const std::vector<int32_t> buckets = GraphBuckets(256);
  ASSERT_FALSE(buckets.empty());
  EXPECT_EQ(buckets.front(), 1);
  EXPECT_EQ(buckets.back(), 256);
  for (size_t i = 1; i < buckets.size(); ++i) EXPECT_LT(buckets[i - 1], buckets[i]);
  for (int32_t n = 1; n <= 256; ++n) {
    const int32_t b = ChooseGraphBucket(n, buckets);
    ASSERT_GE(b, n);
    // Padding wastes at most a fifth of the bucket.
    EXPECT_LE(5 * (b - n), b) << n << " -> " << b;
  }
  EXPECT_EQ(ChooseGraphBucket(257, buckets), 0);
  EXPECT_EQ(GraphBuckets(1), std::vector<int32_t>{1});
  EXPECT_EQ(GraphBuckets(7), (std::vector<int32_t>{1, 2, 3, 4, 6, 7}));
  EXPECT_EQ(ChooseGraphBucket(5, GraphBuckets(7)), 6);
  EXPECT_EQ(GraphBuckets(256).size(), 26u);
  EXPECT_EQ(GraphBuckets(0), std::vector<int32_t>{});
}

}  // namespace
}  // namespace tandem
