#include "common/stop_strings.h"

#include "gtest/gtest.h"

namespace tandem {
namespace {

TEST(StopStringMatcherTest, StopsAtTheStringAndDropsTheRest) {
  StopStringMatcher m({"END"});
  std::string out = m.Push("hello E");
  EXPECT_EQ(out, "hello ");  // "E" held back: it may start "END"
  out += m.Push("N");
  EXPECT_FALSE(m.stopped());
  out += m.Push("D and more");
  EXPECT_TRUE(m.stopped());
  out += m.Flush();
  EXPECT_EQ(out, "hello ");
}

TEST(StopStringMatcherTest, ReleasesHeldTextWhenItDoesNotMatch) {
  StopStringMatcher m({"END"});
  std::string out = m.Push("E");
  out += m.Push("X");
  EXPECT_EQ(out, "EX");
  out += m.Push("EN");
  out += m.Flush();
  EXPECT_EQ(out, "EXEN");
  EXPECT_FALSE(m.stopped());
}

TEST(StopStringMatcherTest, EarliestOfSeveralStopsWins) {
  StopStringMatcher m({"zz", "\n\n"});
  EXPECT_EQ(m.Push("a\n\nbzz"), "a");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.Push("more"), "");
}

TEST(StopStringMatcherTest, NoStopsPassesEverythingThrough) {
  StopStringMatcher m({});
  EXPECT_EQ(m.Push("abc"), "abc");
  EXPECT_EQ(m.Flush(), "");
}

}  // namespace
}  // namespace tandem
