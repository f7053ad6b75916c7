// Launch shapes of every CUDA kernel, checked on the host against an H100/H200's limits (and an
// A100's shared memory) for every shape of the conformance table and of the benchmark models.
#include "backend/cuda/launch_shapes.h"

#include <algorithm>
#include <vector>

#include "gtest/gtest.h"

namespace tandem::cuda {
namespace {

struct ModelShape {
  const char* name;
  int64_t hidden, inter, vocab;
  int32_t heads, kv_heads, head_dim;
};

// The benchmark models (tests/gpu) and the tiny shapes of the conformance tests and stories260K.
const std::vector<ModelShape> kModels = {
    {"stories260K", 64, 172, 512, 8, 4, 8},
    {"conformance-gqa8", 67, 45, 50, 8, 1, 128},
    {"TinyLlama-1.1B", 2048, 5632, 32000, 32, 4, 64},
    {"Llama-3.2-1B", 2048, 8192, 128256, 32, 8, 64},
    {"Llama-3-8B", 4096, 14336, 128256, 32, 8, 128},
    {"Llama-3-70B", 8192, 28672, 128256, 64, 8, 128},
};

DeviceLimits A100() {
  DeviceLimits limits;
  limits.max_shared_per_block_optin = 163 * 1024;
  limits.num_sms = 108;
  return limits;
}

TEST(LaunchShapesTest, RowAndElementwiseKernelsFitForEveryModel) {
  for (const DeviceLimits& limits : {DeviceLimits{}, A100()}) {
    for (const ModelShape& m : kModels) {
      for (int64_t tokens : {1, 7, 256, 8192}) {
        EXPECT_TRUE(Fits(RowShape(tokens, m.hidden), limits)) << m.name << " " << tokens;
        EXPECT_TRUE(Fits(RowShape(tokens, (m.heads + m.kv_heads) * m.head_dim / 2), limits)) << m.name;
        const LaunchShape e = ElementwiseShape(tokens * m.inter, limits);
        EXPECT_TRUE(Fits(e, limits)) << m.name;
        // A grid-stride loop covers every element.
        EXPECT_GE(e.grid_x * e.block * 4096, tokens * m.inter) << m.name;
      }
      EXPECT_TRUE(Fits(GemvShape(m.vocab), limits)) << m.name;
      EXPECT_TRUE(Fits(GemvShape(1), limits));
      // One warp per output feature: the grid covers every output.
      EXPECT_GE(GemvShape(m.vocab).grid_x * kGemvWarps, m.vocab);
    }
  }
}

TEST(LaunchShapesTest, RowShapeHasAtLeastAWarpAndAtMost1024Threads) {
  EXPECT_EQ(RowShape(5, 1).block, 32);
  EXPECT_EQ(RowShape(5, 67).block, 96);
  EXPECT_EQ(RowShape(5, 2048).block, 256);
  EXPECT_EQ(RowShape(5, 1 << 20).block, 1024);
  EXPECT_EQ(RowShape(0, 64).grid_x, 1);
}

TEST(LaunchShapesTest, AttentionFitsForEveryModelContextAndBatch) {
  for (const DeviceLimits& limits : {DeviceLimits{}, A100()}) {
    for (const ModelShape& m : kModels) {
      for (int32_t context : {1, 17, 512, 2048, 8192}) {
        for (int32_t seqs : {1, 8, 32, 128, 256}) {
          // Decode: one token per sequence, splits allowed.
          AttentionDims d{seqs, seqs, m.heads, m.kv_heads, m.head_dim, 1, context};
          AttentionPlan plan = PlanAttention(d, 256, limits);
          ASSERT_TRUE(Fits(plan.main, limits)) << m.name << " ctx " << context << " seqs " << seqs;
          ASSERT_TRUE(Fits(plan.combine, limits)) << m.name;
          EXPECT_GE(plan.num_splits, 1);
          EXPECT_LE(plan.num_splits, kAttentionMaxSplits);
          EXPECT_EQ(plan.partition % kAttentionKeyTile, 0);
          // The splits cover the context, and none is empty.
          EXPECT_GE(static_cast<int64_t>(plan.partition) * plan.num_splits, context) << m.name;
          EXPECT_LT(static_cast<int64_t>(plan.partition) * (plan.num_splits - 1), context) << m.name;
          EXPECT_EQ(plan.combine.block % 32, 0);
          EXPECT_GE(plan.combine.block, m.head_dim);
          // The scratch CudaBackend::Reserve sizes (256 tokens, ceil(context / 64) splits at most) holds
          // what the plan writes.
          const int64_t reserved_splits =
              std::min<int64_t>((context + kAttentionMinPartition - 1) / kAttentionMinPartition, kAttentionMaxSplits);
          EXPECT_LE(AttentionScratchFloats(d, plan), int64_t{256} * m.heads * reserved_splits * (m.head_dim + 2));
        }
        // A prompt of `context` tokens in one sequence: no split, every row covered.
        AttentionDims p{1, context, m.heads, m.kv_heads, m.head_dim, context, context};
        AttentionPlan plan = PlanAttention(p, 256, limits);
        ASSERT_TRUE(Fits(plan.main, limits)) << m.name << " prompt " << context;
        if (context > 256) {
          EXPECT_EQ(plan.num_splits, 1);
        }
        const int32_t group = m.heads / m.kv_heads;
        EXPECT_GE(plan.main.grid_x * kAttentionRows, static_cast<int64_t>(context) * group);
      }
    }
  }
}

TEST(LaunchShapesTest, DecodeAtSmallBatchSplitsToFillTheDevice) {
  // TinyLlama batch 1, context 512: 4 kv heads alone would use 4 of 132 SMs.
  AttentionDims d{1, 1, 32, 4, 64, 1, 512};
  AttentionPlan plan = PlanAttention(d, 256, DeviceLimits{});
  EXPECT_EQ(plan.partition, kAttentionMinPartition);
  EXPECT_EQ(plan.num_splits, 8);
  // A large batch needs no split.
  AttentionDims big{256, 256, 32, 4, 64, 1, 512};
  EXPECT_EQ(PlanAttention(big, 256, DeviceLimits{}).num_splits, 1);
  // Steps above the token limit never split (their scratch would be too large).
  AttentionDims prompt{1, 300, 32, 4, 64, 300, 300};
  EXPECT_EQ(PlanAttention(prompt, 256, DeviceLimits{}).num_splits, 1);
}

TEST(LaunchShapesTest, SharedMemoryOfTheLargestHeadNeedsTheOptIn) {
  AttentionDims d{1, 1, 8, 8, kAttentionMaxHeadDim, 1, 64};
  const AttentionPlan plan = PlanAttention(d, 256, DeviceLimits{});
  EXPECT_GT(plan.main.shared_bytes, DeviceLimits{}.max_shared_per_block);
  EXPECT_TRUE(Fits(plan.main, DeviceLimits{}));
  EXPECT_TRUE(Fits(plan.main, A100()));
  DeviceLimits tiny;
  tiny.max_shared_per_block_optin = 48 * 1024;
  EXPECT_FALSE(Fits(plan.main, tiny));
}

}  // namespace
}  // namespace tandem::cuda
