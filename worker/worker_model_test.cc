// LoadWorkerModel's readiness canary (RELIABILITY H4): a worker whose model cannot give a finite 1-token
// step never comes up, and says why.
#include "worker/worker_model.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/random_model.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

std::string WriteModel(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  std::filesystem::remove_all(dir);
  absl::StatusOr<ModelConfig> config = PresetConfig("tiny");
  EXPECT_TRUE(config.ok());
  EXPECT_TRUE(WriteRandomModel(*config, DType::kF32, 5, dir).ok());
  return dir;
}

WorkerModelOptions Options(const std::string& dir) {
  WorkerModelOptions options;
  options.model_dir = dir;
  options.num_threads = 1;
  options.kv_cache_mb = 4;
  return options;
}

TEST(WorkerModelTest, HealthyModelPassesTheCanaryAndGetsItsBlockBack) {
  absl::StatusOr<WorkerModel> w = LoadWorkerModel(Options(WriteModel("canary_ok")));
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->cache->allocator().num_free(), w->cache->allocator().num_total());
}

// The last 64 KiB of the checkpoint (its last tensors' values) overwritten with all-ones bits: NaN in
// float32. The load itself succeeds (the file is well-formed); the canary's step does not.
TEST(WorkerModelTest, NanWeightsFailTheCanaryNamingWhy) {
  const std::string dir = WriteModel("canary_nan");
  const std::string file = dir + "/model.safetensors";
  const auto size = std::filesystem::file_size(file);
  ASSERT_GT(size, 65536u);
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size - 65536));
    const std::vector<char> ones(65536, static_cast<char>(0xff));
    f.write(ones.data(), static_cast<std::streamsize>(ones.size()));
  }
  absl::StatusOr<WorkerModel> w = LoadWorkerModel(Options(dir));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kFailedPrecondition) << w.status();
  EXPECT_THAT(w.status().message(), HasSubstr("readiness canary"));
  EXPECT_THAT(w.status().message(), HasSubstr("non-finite logits"));
}

}  // namespace
}  // namespace tandem
