#include "common/flags.h"

#include "gtest/gtest.h"

namespace tandem {
namespace {

TEST(FlagParserTest, ParsesEveryKindAndBothSpellings) {
  std::string s;
  int64_t i = 1;
  double d = 0;
  bool b = false;
  FlagParser p("test");
  p.AddString("name", &s, "");
  p.AddInt("count", &i, "");
  p.AddDouble("rate", &d, "");
  p.AddBool("verbose", &b, "");
  ASSERT_TRUE(p.Parse({"--name", "x y", "--count=7", "--rate", "0.5", "--verbose", "pos"}).ok());
  EXPECT_EQ(s, "x y");
  EXPECT_EQ(i, 7);
  EXPECT_EQ(d, 0.5);
  EXPECT_TRUE(b);
  EXPECT_TRUE(p.WasSet("count"));
  EXPECT_EQ(p.positional(), std::vector<std::string>{"pos"});
}

TEST(FlagParserTest, ErrorsNameTheFlag) {
  int64_t i = 0;
  FlagParser p("test");
  p.AddInt("count", &i, "");
  absl::Status bad = p.Parse({"--count", "many"});
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("--count"), std::string::npos);
  FlagParser q("test");
  q.AddInt("count", &i, "");
  EXPECT_NE(q.Parse({"--nope"}).message().find("--nope"), std::string::npos);
  FlagParser r("test");
  r.AddInt("count", &i, "");
  EXPECT_NE(r.Parse({"--count"}).message().find("needs a value"), std::string::npos);
}

TEST(FlagParserTest, HelpIsReportedAndUsageListsFlags) {
  int64_t i = 3;
  FlagParser p("tandem x");
  p.AddInt("count", &i, "how many");
  ASSERT_TRUE(p.Parse({"--help"}).ok());
  EXPECT_TRUE(p.help_requested());
  EXPECT_NE(p.Usage().find("--count VALUE"), std::string::npos);
  EXPECT_NE(p.Usage().find("(default 3)"), std::string::npos);
}

}  // namespace
}  // namespace tandem
