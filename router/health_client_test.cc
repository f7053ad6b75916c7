#include "router/health_client.h"

#include "gtest/gtest.h"

namespace tandem::router {
namespace {

TEST(HealthClientTest, EncodesTheRequest) {
  EXPECT_EQ(EncodeHealthCheckRequest(""), "");
  EXPECT_EQ(EncodeHealthCheckRequest("ab"), std::string("\x0a\x02" "ab", 4));
  const std::string long_name(200, 'x');
  const std::string encoded = EncodeHealthCheckRequest(long_name);
  EXPECT_EQ(encoded.substr(0, 3), std::string("\x0a\xc8\x01", 3));
  EXPECT_EQ(encoded.size(), 203u);
}

TEST(HealthClientTest, DecodesTheResponse) {
  EXPECT_EQ(*DecodeHealthCheckResponse(""), 0);
  EXPECT_EQ(*DecodeHealthCheckResponse(std::string("\x08\x01", 2)), 1);
  EXPECT_EQ(*DecodeHealthCheckResponse(std::string("\x08\x02", 2)), 2);
  // Unknown fields are skipped.
  EXPECT_EQ(*DecodeHealthCheckResponse(std::string("\x12\x01z\x08\x01", 5)), 1);
  EXPECT_FALSE(DecodeHealthCheckResponse(std::string("\x08", 1)).ok());
  EXPECT_FALSE(DecodeHealthCheckResponse(std::string("\x12\x05z", 3)).ok());
  EXPECT_FALSE(DecodeHealthCheckResponse(std::string("\x0b", 1)).ok());
}

}  // namespace
}  // namespace tandem::router
