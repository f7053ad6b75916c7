// Jinja's tests (`x is defined`, ...). Every expectation was produced by Jinja2 3.1.
#include "chat/jinja_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem::jinja {
namespace {

using ::testing::HasSubstr;
using testing::Render;

constexpr char kVars[] =
    R"json({"s": "Hello World", "n": null, "i": 7, "x": 2.5, "l": [3, 1, 2], "d": {"b": 1, "a": [1, 2]}, "t": true, "f": false, "e": [], "es": ""})json";

TEST(JinjaTestsTest, Defined) {
  EXPECT_EQ(
      Render(
          R"jinja({{ s is defined }} {{ missing is defined }} {{ missing is undefined }} {{ n is defined }} {{ d.zz is defined }} {{ d.b is defined }})jinja",
          kVars),
      "True False True True False True");
}

TEST(JinjaTestsTest, NoneAndBooleans) {
  EXPECT_EQ(Render(R"jinja({{ n is none }} {{ missing is none }} {{ 0 is none }} {{ n is not none }})jinja", kVars),
            "True False False False");
  EXPECT_EQ(
      Render(
          R"jinja({{ t is boolean }} {{ 1 is boolean }} {{ t is true }} {{ 1 is true }} {{ f is false }} {{ 0 is false }})jinja",
          kVars),
      "True False True False True False");
}

TEST(JinjaTestsTest, Types) {
  EXPECT_EQ(
      Render(
          R"jinja({{ s is string }} {{ 1 is string }} {{ d is mapping }} {{ l is mapping }} {{ i is number }} {{ x is number }} {{ t is number }} {{ s is number }})jinja",
          kVars),
      "True False True False True True True False");
  EXPECT_EQ(
      Render(R"jinja({{ i is integer }} {{ t is integer }} {{ x is integer }} {{ x is float }} {{ i is float }})jinja",
             kVars),
      "True False False True False");
}

TEST(JinjaTestsTest, IterableAndSequence) {
  EXPECT_EQ(
      Render(
          R"jinja({{ s is iterable }} {{ l is iterable }} {{ d is iterable }} {{ i is iterable }} {{ n is iterable }} {{ missing is iterable }})jinja",
          kVars),
      "True True True False False True");
  EXPECT_EQ(
      Render(R"jinja({{ s is sequence }} {{ l is sequence }} {{ d is sequence }} {{ i is sequence }})jinja", kVars),
      "True True True False");
}

TEST(JinjaTestsTest, Numbers) {
  EXPECT_EQ(
      Render(
          R"jinja({{ 3 is odd }} {{ 4 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ 3.0 is odd }})jinja",
          kVars),
      "True False True True False True");
  EXPECT_THAT(Render(R"jinja({{ missing is odd }})jinja", kVars), HasSubstr("'missing' is undefined"));
}

TEST(JinjaTestsTest, Comparisons) {
  EXPECT_THAT(
      Render(R"jinja({{ 1 is eq 1 }} {{ 1 is equalto 2 }} {{ 1 is == 1.0 }} {{ 1 is ne 2 }} {{ 1 is != 1 }})jinja",
             kVars),
      HasSubstr("expected token 'name', got '=='"));
  EXPECT_EQ(
      Render(
          R"jinja({{ 2 is gt 1 }} {{ 2 is greaterthan 2 }} {{ 2 is ge 2 }} {{ 1 is lt 2 }} {{ 1 is lessthan 1 }} {{ 1 is le 0 }})jinja",
          kVars),
      "True False True True False False");
  EXPECT_EQ(Render(R"jinja({{ 2 is in l }} {{ 5 is in l }} {{ 'a' is in 'cat' }} {{ 'b' is in d }})jinja", kVars),
            "True False True True");
}

TEST(JinjaTestsTest, Case) {
  EXPECT_EQ(
      Render(R"jinja({{ 'abc' is lower }} {{ 'aBc' is lower }} {{ 'ABC' is upper }} {{ '1' is upper }})jinja", kVars),
      "True False True False");
}

TEST(JinjaTestsTest, SameAsCallableEscaped) {
  EXPECT_EQ(Render(R"jinja({{ n is sameas none }} {{ t is sameas true }} {{ 1 is sameas true }})jinja", kVars),
            "True True False");
  EXPECT_EQ(Render(R"jinja({{ s.upper is callable }} {{ s is callable }} {{ range is callable }})jinja", kVars),
            "True False True");
  EXPECT_EQ(Render(R"jinja({{ s is escaped }})jinja", kVars), "False");
}

TEST(JinjaTestsTest, FilterAndTestExist) {
  EXPECT_EQ(
      Render(R"jinja({{ 'upper' is filter }} {{ 'nope' is filter }} {{ 'odd' is test }} {{ 'nope' is test }})jinja",
             kVars),
      "True False True False");
}

TEST(JinjaTestsTest, Negation) {
  EXPECT_EQ(Render(R"jinja({{ s is not string }} {{ not s is string }} {{ n is not defined }})jinja", kVars),
            "False False False");
}

TEST(JinjaTestsTest, UnknownTest) {
  EXPECT_THAT(Render(R"jinja({{ 1 is no_such_test }})jinja", kVars), HasSubstr("No test named 'no_such_test'."));
}

}  // namespace
}  // namespace tandem::jinja
