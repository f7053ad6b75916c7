#include "kvtransfer/registry.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

TEST(MakeKvTransportTest, BuildsGrpcAndInproc) {
  for (const char* name : {"grpc", "inproc"}) {
    auto transport = MakeKvTransport(name);
    ASSERT_TRUE(transport.ok()) << transport.status();
    EXPECT_EQ((*transport)->name(), name);
  }
}

TEST(MakeKvTransportTest, GpuTransportsAreUnimplementedNotLinkErrors) {
  for (const char* name : {"cuda_ipc", "nccl"}) {
    auto transport = MakeKvTransport(name);
    EXPECT_EQ(transport.status().code(), absl::StatusCode::kUnimplemented);
    EXPECT_THAT(transport.status().message(), HasSubstr(name));
  }
}

TEST(MakeKvTransportTest, UnknownNameIsInvalidArgumentNamingTheFlag) {
  auto transport = MakeKvTransport("carrier-pigeon");
  EXPECT_EQ(transport.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(transport.status().message(), HasSubstr("--kv-transport"));
  EXPECT_THAT(transport.status().message(), HasSubstr("carrier-pigeon"));
}

}  // namespace
}  // namespace tandem
