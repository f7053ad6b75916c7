#include "worker/kv_pool_sizing.h"

#include "gtest/gtest.h"

namespace tandem {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

KvPoolRequest Base() {
  KvPoolRequest r;
  r.block_bytes = 16 * 2 * 22 * 4 * 64 * 2;  // TinyLlama bf16: 16 tokens x K,V x 22 layers x 4 heads x 64
  r.blocks_needed = 128;                     // 2048 tokens
  r.block_size = 16;
  r.max_context = 2048;
  return r;
}

TEST(KvPoolSizingTest, FixedPoolInMib) {
  KvPoolRequest r = Base();
  r.kv_cache_mb = 256;
  EXPECT_EQ(*KvPoolBlocks(r), 256 * (int64_t{1} << 20) / r.block_bytes);
  r.kv_cache_mb = 1;
  absl::StatusOr<int32_t> small = KvPoolBlocks(r);
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(small.status().message().find("--kv-cache-mb 1"), std::string::npos) << small.status();
  EXPECT_NE(small.status().message().find("2048 tokens"), std::string::npos) << small.status();
}

TEST(KvPoolSizingTest, DeviceFractionLeavesWhatThisWorkerAllocated) {
  KvPoolRequest r = Base();
  r.gpu_memory_fraction = 0.9;
  r.device_total_bytes = 140 * kGiB;
  r.device_free_bytes = 136 * kGiB;  // the CUDA context and our 3 GiB loaded
  r.allocated_bytes = 3 * kGiB;      // weights, workspaces and scratch
  // 0.9 * 140 = 126 GiB in all; 3 GiB taken: 123 GiB of KV.
  EXPECT_EQ(*KvPoolBlocks(r), 123 * kGiB / r.block_bytes);
}

TEST(KvPoolSizingTest, TwoWorkersOnOneDeviceEachGetTheirShare) {
  // tandem up puts a prefill and a decode worker on one GPU with 0.45 each. The second one to load sees
  // the first's pool as used memory, but its own share is still 0.45 of the device.
  KvPoolRequest r = Base();
  r.gpu_memory_fraction = 0.45;
  r.device_total_bytes = 140 * kGiB;
  r.allocated_bytes = 3 * kGiB;
  r.device_free_bytes = 140 * kGiB - 63 * kGiB - 3 * kGiB - kGiB;  // the first worker's 63 GiB, ours, contexts
  EXPECT_EQ(*KvPoolBlocks(r), (63 * kGiB - 3 * kGiB) / r.block_bytes);
}

TEST(KvPoolSizingTest, NeverMoreThanIsFreeLessTheMargin) {
  KvPoolRequest r = Base();
  r.gpu_memory_fraction = 1.0;
  r.device_total_bytes = 10 * kGiB;
  r.device_free_bytes = 4 * kGiB;  // another process holds most of the device
  r.allocated_bytes = kGiB;
  EXPECT_EQ(*KvPoolBlocks(r), (4 * kGiB - kDeviceMemoryMargin) / r.block_bytes);
}

TEST(KvPoolSizingTest, AnImpossibleFractionIsRefusedWithTheNumbers) {
  KvPoolRequest r = Base();
  r.gpu_memory_fraction = 0.1;
  r.device_total_bytes = 80 * kGiB;
  r.device_free_bytes = 60 * kGiB;
  r.allocated_bytes = 20 * kGiB;  // budget only 8 GiB
  absl::StatusOr<int32_t> got = KvPoolBlocks(r);
  ASSERT_FALSE(got.ok());
  std::string message(got.status().message());
  EXPECT_NE(message.find("--gpu-memory-fraction 0.1"), std::string::npos) << message;
  EXPECT_NE(message.find("81920.0 MiB"), std::string::npos) << message;
  EXPECT_NE(message.find("20480.0 MiB"), std::string::npos) << message;
  EXPECT_NE(message.find("2048 tokens"), std::string::npos) << message;
  // A full device names the free memory instead.
  r.gpu_memory_fraction = 0.9;
  r.device_free_bytes = 100 << 20;
  message = std::string(KvPoolBlocks(r).status().message());
  EXPECT_NE(message.find("100.0 MiB free"), std::string::npos) << message;
  r.gpu_memory_fraction = 1.5;
  EXPECT_NE(KvPoolBlocks(r).status().message().find("(0, 1]"), std::string::npos);
}

}  // namespace
}  // namespace tandem
