// The registry: names, dtypes, and the CUDA backend's answers on a machine without a GPU (or a build
// without CUDA), which must say why instead of failing later.
#include "backend/registry.h"

#include <algorithm>

#include "gtest/gtest.h"

namespace tandem {
namespace {

// The CPU backends compute in float32 and hold weight matrices as the checkpoint stores them, unless
// --dtype says which.
TEST(RegistryTest, CpuBackendsComputeInFloat32AndHoldMatricesAsAsked) {
  for (const char* name : {"cpu", "cpu-reference"}) {
    BackendOptions options;
    options.name = name;
    options.num_threads = 1;
    auto backend = MakeBackend(options);
    ASSERT_TRUE(backend.ok()) << backend.status();
    EXPECT_EQ((*backend)->activation_dtype(), DType::kF32);
    EXPECT_EQ((*backend)->matrix_dtype(DType::kBF16), DType::kBF16);
    EXPECT_EQ((*backend)->matrix_dtype(DType::kF16), DType::kF16);
    EXPECT_EQ((*backend)->matrix_dtype(DType::kF32), DType::kF32);
    for (auto [flag, dtype] : {std::pair{"float32", DType::kF32}, std::pair{"bfloat16", DType::kBF16},
                               std::pair{"float16", DType::kF16}}) {
      options.dtype = flag;
      auto chosen = MakeBackend(options);
      ASSERT_TRUE(chosen.ok()) << chosen.status();
      EXPECT_EQ((*chosen)->activation_dtype(), DType::kF32) << flag;
      EXPECT_EQ((*chosen)->matrix_dtype(DType::kBF16), dtype) << flag;
      EXPECT_EQ((*chosen)->matrix_dtype(DType::kF32), dtype) << flag;
    }
    options.dtype = "float8";
    auto refused = MakeBackend(options);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(refused.status().message().find("--dtype float8"), std::string::npos) << refused.status();
  }
}

TEST(RegistryTest, UnknownBackendNamesTheAvailableOnes) {
  BackendOptions options;
  options.name = "tpu";
  auto refused = MakeBackend(options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("cpu-reference"), std::string::npos) << refused.status();
}

TEST(RegistryTest, CudaWithoutADeviceSaysSo) {
  BackendOptions options;
  options.name = "cuda";
  auto backend = MakeBackend(options);
  const std::vector<std::string> names = AvailableBackends();
  const bool built = std::find(names.begin(), names.end(), "cuda") != names.end();
  if (backend.ok()) GTEST_SKIP() << "a CUDA device is present: the no-device path cannot be checked here";
  if (!built) {
    EXPECT_EQ(backend.status().code(), absl::StatusCode::kUnimplemented);
    EXPECT_NE(backend.status().message().find("built without CUDA"), std::string::npos) << backend.status();
    return;
  }
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kFailedPrecondition) << backend.status();
  EXPECT_NE(backend.status().message().find("no CUDA device was found"), std::string::npos) << backend.status();
}

TEST(RegistryTest, CudaDtypeIsCheckedBeforeAnyDevice) {
  const std::vector<std::string> names = AvailableBackends();
  if (std::find(names.begin(), names.end(), "cuda") == names.end()) GTEST_SKIP() << "built without CUDA";
  BackendOptions options;
  options.name = "cuda";
  options.dtype = "float8";
  auto refused = MakeBackend(options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("--dtype"), std::string::npos) << refused.status();
}

// --batch-invariant is CPU-only for now: the CUDA backend refuses it, before looking for a device.
TEST(RegistryTest, CudaRefusesBatchInvariantAsUnimplemented) {
  BackendOptions options;
  options.name = "cuda";
  options.batch_invariant = true;
  auto refused = MakeBackend(options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnimplemented) << refused.status();
  EXPECT_NE(refused.status().message().find("--batch-invariant"), std::string::npos) << refused.status();
}

}  // namespace
}  // namespace tandem
