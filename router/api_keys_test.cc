#include "router/api_keys.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem::router {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ApiKeysTest, BearerKeysFromTheFileAreAccepted) {
  absl::StatusOr<ApiKeys> keys =
      ApiKeys::FromText("test", "# team keys\nsk-alpha-0123456789abcdef\n\n  sk-beta-0123456789abcdef  \n");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_TRUE(keys->Check("Bearer sk-alpha-0123456789abcdef").ok());
  EXPECT_TRUE(keys->Check("bearer sk-beta-0123456789abcdef").ok());
  EXPECT_TRUE(keys->Check("  Bearer   sk-beta-0123456789abcdef ").ok());
}

TEST(ApiKeysTest, MissingWrongAndMalformedAreUnauthenticatedWithoutEchoingTheKey) {
  absl::StatusOr<ApiKeys> keys = ApiKeys::FromText("test", "sk-alpha-0123456789abcdef\n");
  ASSERT_TRUE(keys.ok());
  for (const char* header : {"", "sk-alpha-0123456789abcdef", "Basic c2stYWxwaGE=", "Bearer sk-alpha-0123456789abcdeF",
                             "Bearer sk-alpha-0123456789abcdef0", "Bearer "}) {
    const absl::Status s = keys->Check(header);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << header;
    EXPECT_THAT(std::string(s.message()), Not(HasSubstr("0123456789"))) << header;
  }
  EXPECT_THAT(std::string(keys->Check("").message()), HasSubstr("Authorization: Bearer"));
}

TEST(ApiKeysTest, NoKeysLetsEverythingThrough) {
  ApiKeys none;
  EXPECT_FALSE(none.enabled());
  EXPECT_TRUE(none.Check("").ok());
}

TEST(ApiKeysTest, BadFilesAreRefusedNamingTheFlagAndLine) {
  EXPECT_THAT(ApiKeys::FromText("--api-keys-file 'k'", "# only comments\n").status().message(), HasSubstr("no key"));
  EXPECT_THAT(ApiKeys::FromText("--api-keys-file 'k'", "ok-key-0123456789\nshort\n").status().message(),
              HasSubstr("line 2"));
  EXPECT_THAT(ApiKeys::FromText("--api-keys-file 'k'", "has space 0123456789\n").status().message(),
              HasSubstr("without spaces"));
  EXPECT_THAT(ApiKeys::FromFile("--api-keys-file", "/nonexistent/keys").status().message(),
              HasSubstr("--api-keys-file"));
}

}  // namespace
}  // namespace tandem::router
