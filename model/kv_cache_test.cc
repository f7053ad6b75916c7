#include "model/kv_cache.h"

#include <algorithm>
#include <set>

#include "backend/cpu/cpu_backend.h"
#include "gtest/gtest.h"

namespace tandem {
namespace {

TEST(BlockAllocatorTest, AllocatesDistinctBlocksAndReturnsThem) {
  BlockAllocator allocator(8);
  auto a = allocator.Allocate(3);
  ASSERT_TRUE(a.ok());
  auto b = allocator.Allocate(5);
  ASSERT_TRUE(b.ok());
  std::set<int32_t> all(a->begin(), a->end());
  all.insert(b->begin(), b->end());
  EXPECT_EQ(all.size(), 8u);
  EXPECT_EQ(allocator.num_free(), 0);
  ASSERT_TRUE(allocator.Free(*a).ok());
  EXPECT_EQ(allocator.num_free(), 3);
}

TEST(BlockAllocatorTest, RefusesMoreThanFreeWithoutPartialAllocation) {
  BlockAllocator allocator(4);
  ASSERT_TRUE(allocator.Allocate(3).ok());
  auto too_many = allocator.Allocate(2);
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(too_many.status().message().find("2 blocks wanted, 1 of 4 free"), std::string::npos)
      << too_many.status();
  EXPECT_EQ(allocator.num_free(), 1);
}

TEST(BlockAllocatorTest, DoubleFreeAndForeignIdsAreRefused) {
  BlockAllocator allocator(4);
  auto a = allocator.Allocate(2);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(allocator.Free(*a).ok());
  EXPECT_EQ(allocator.Free(*a).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(allocator.Free({7}).code(), absl::StatusCode::kFailedPrecondition);
  auto b = allocator.Allocate(1);
  ASSERT_TRUE(b.ok());
  // A list naming one block twice frees nothing.
  EXPECT_EQ(allocator.Free({(*b)[0], (*b)[0]}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(allocator.num_free(), 3);
}

TEST(KvCacheTest, BlocksForTokensRoundsUp) {
  EXPECT_EQ(BlocksForTokens(0, 16), 0);
  EXPECT_EQ(BlocksForTokens(1, 16), 1);
  EXPECT_EQ(BlocksForTokens(16, 16), 1);
  EXPECT_EQ(BlocksForTokens(17, 16), 2);
}

TEST(KvCacheTest, CreateAllocatesEveryLayerWithTheSpecShape) {
  CpuBackend backend({.fast = true, .num_threads = 1});
  KvCacheSpec spec{.num_layers = 3, .num_kv_heads = 2, .head_dim = 8, .block_size = 4, .num_blocks = 5};
  auto cache = KvCache::Create(backend, spec);
  ASSERT_TRUE(cache.ok()) << cache.status();
  for (int l = 0; l < 3; ++l) {
    EXPECT_EQ((*cache)->layer(l).k.shape, (Shape{5, 4, 2, 8}));
    EXPECT_NE((*cache)->layer(l).k.data, (*cache)->layer(l).v.data);
  }
  EXPECT_EQ(spec.bytes_per_token(), 2 * 3 * 2 * 8 * 4);
  EXPECT_EQ((*cache)->allocator().num_free(), 5);
  spec.num_blocks = 0;
  EXPECT_EQ(KvCache::Create(backend, spec).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tandem

namespace tandem {
namespace {

TEST(KvCacheTest, WriteThenReadTokensRoundTripsAcrossBlockBoundaries) {
  CpuBackend backend({.fast = true, .num_threads = 1});
  KvCacheSpec spec{.num_layers = 2, .num_kv_heads = 2, .head_dim = 4, .block_size = 4, .num_blocks = 6};
  auto cache = KvCache::Create(backend, spec);
  ASSERT_TRUE(cache.ok());
  const std::vector<int32_t> blocks = {5, 1, 3};  // out of order, with gaps
  const int tokens = 11, row = 2 * 4;
  std::vector<float> k(tokens * row), v(tokens * row);
  for (int i = 0; i < tokens * row; ++i) {
    k[i] = i + 0.5f;
    v[i] = -i - 0.25f;
  }
  ASSERT_TRUE((*cache)->WriteTokens(blocks, 1, 0, tokens, k.data(), v.data()).ok());
  // Token 5 lives in block blocks[1] = 1 at offset 1 of layer 1.
  EXPECT_EQ((*cache)->layer(1).k.as<float>()[(1 * 4 + 1) * row], k[5 * row]);
  std::vector<float> k2(7 * row), v2(7 * row);
  ASSERT_TRUE((*cache)->ReadTokens(blocks, 1, 3, 7, k2.data(), v2.data()).ok());
  EXPECT_TRUE(std::equal(k2.begin(), k2.end(), k.begin() + 3 * row));
  EXPECT_TRUE(std::equal(v2.begin(), v2.end(), v.begin() + 3 * row));
  EXPECT_EQ((*cache)->ReadTokens(blocks, 1, 10, 3, k2.data(), v2.data()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*cache)->ReadTokens(blocks, 2, 0, 1, k2.data(), v2.data()).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tandem
