#include "profiler/profiler.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "model/random_model.h"
#include "nlohmann/json.hpp"
#include "router/policy/latency_model.h"

namespace tandem::profiler {
namespace {

TEST(ProfilerTest, TinyModelEndToEndGivesALoadableMonotoneModel) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/profiler_test_", getpid());
  std::filesystem::create_directories(dir + "/tiny");
  absl::StatusOr<ModelConfig> config = PresetConfig("tiny");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(WriteRandomModel(*config, DType::kF32, 1, dir + "/tiny").ok());

  ProfileOptions options;
  options.model_dir = dir + "/tiny";
  options.num_threads = 1;
  options.max_prompt = 128;
  options.max_batch = 8;
  options.repeats = 2;
  int lines = 0;
  absl::StatusOr<ProfileResult> result = Profile(options, [&](const std::string&) { ++lines; });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(lines, static_cast<int>(PrefillGrid(128).size() + DecodeGrid(8, 128).size()));
  EXPECT_EQ(result->prefill_samples.size(), PrefillGrid(128).size());
  // tiny: 2 layers x 2 KV heads x head_dim 16 (64 / 4 heads) x K and V x 4 bytes.
  EXPECT_EQ(result->kv_bytes_per_token, 2.0 * 2 * 2 * 16 * 4);
  EXPECT_TRUE(result->kv_bandwidth_measured);
  EXPECT_GT(result->kv_bandwidth_bytes_per_s, 0);

  const std::string path = dir + "/latency.json";
  {
    std::ofstream out(path);
    out << ProfileJson(*result, options);
  }
  absl::StatusOr<policy::LatencyModel> loaded = policy::LatencyModel::FromFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->params().model, "tiny");
  EXPECT_EQ(loaded->params().engine, "tandem");
  EXPECT_EQ(loaded->params().kv_bytes_per_token, result->kv_bytes_per_token);
  std::ifstream in(path);
  const nlohmann::json json = nlohmann::json::parse(in);
  EXPECT_TRUE(json["fit_stats"]["max_rel_err"].is_number());

  // Positive and monotone over (and beyond) the profiled range.
  double previous = 0;
  for (int64_t len = 1; len <= 1024; len *= 2) {
    const double ms = loaded->PrefillMsFromSums(len, static_cast<double>(len) * len);
    EXPECT_GT(ms, 0);
    EXPECT_GE(ms, previous) << len;
    previous = ms;
  }
  for (int64_t context : {0, 100, 1000, 10000}) {
    previous = 0;
    for (int64_t batch = 1; batch <= 64; batch *= 2) {
      const double ms = loaded->DecodeStepMs(batch, batch * context);
      EXPECT_GT(ms, 0);
      EXPECT_GE(ms, previous) << batch << " x " << context;
      previous = ms;
    }
  }
  EXPECT_GE(loaded->KvTransferMs(1e6), loaded->KvTransferMs(1e3));
  std::filesystem::remove_all(dir);
}

TEST(ProfilerTest, BadOptionsNameTheFlag) {
  ProfileOptions options;
  EXPECT_NE(Profile(options).status().message().find("--model"), std::string::npos);
  options.model_dir = "/nonexistent";
  options.max_prompt = 4;
  EXPECT_NE(Profile(options).status().message().find("--max-prompt"), std::string::npos);
  options.max_prompt = 64;
  options.max_batch = 1;
  EXPECT_NE(Profile(options).status().message().find("--max-batch"), std::string::npos);
}

}  // namespace
}  // namespace tandem::profiler
