#include "kvtransfer/kv_transport.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

KvLayout Layout() {
  KvLayout layout;
  layout.model_fingerprint = "abc";
  layout.num_layers = 4;
  layout.num_kv_heads = 2;
  layout.head_dim = 64;
  layout.dtype = DType::kBF16;
  return layout;
}

TEST(KvLayoutTest, ByteSizesFollowShapeAndDtype) {
  const KvLayout layout = Layout();
  EXPECT_EQ(layout.bytes_per_token_per_layer(), 2 * 64 * 2);
  EXPECT_EQ(layout.bytes_per_token(), 2 * 256 * 4);
}

TEST(CheckSameLayoutTest, EqualLayoutsAreOk) {
  EXPECT_TRUE(CheckSameLayout(Layout(), Layout()).ok());
  EXPECT_TRUE(SameLayout(Layout(), Layout()));
}

TEST(CheckSameLayoutTest, EachDifferenceIsFailedPreconditionNamingTheField) {
  struct Case {
    void (*mutate)(KvLayout&);
    const char* field;
    const char* detail;
  };
  const Case cases[] = {
      {[](KvLayout& l) { l.model_fingerprint = "xyz"; }, "model_fingerprint", "'xyz', expected 'abc'"},
      {[](KvLayout& l) { l.num_layers = 5; }, "num_layers", "5, expected 4"},
      {[](KvLayout& l) { l.num_kv_heads = 8; }, "num_kv_heads", "8, expected 2"},
      {[](KvLayout& l) { l.head_dim = 128; }, "head_dim", "128, expected 64"},
      {[](KvLayout& l) { l.dtype = DType::kF32; }, "dtype", "F32, expected BF16"},
  };
  for (const Case& c : cases) {
    KvLayout other = Layout();
    c.mutate(other);
    const absl::Status status = CheckSameLayout(Layout(), other);
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << c.field;
    EXPECT_THAT(status.message(), HasSubstr(c.field));
    EXPECT_THAT(status.message(), HasSubstr(c.detail));
    EXPECT_FALSE(SameLayout(Layout(), other));
  }
}

}  // namespace
}  // namespace tandem
