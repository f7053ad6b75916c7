// Python semantics of Jinja operators, indexing, slicing, literals and str(). Every expectation was
// produced by Jinja2 3.1.
#include "chat/jinja_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem::jinja {
namespace {

using ::testing::HasSubstr;
using testing::Render;

constexpr char kVars[] =
    R"json({"s": "Hello World", "u": "héllo", "emoji": "🚀ab", "n": null, "l": [3, 1, 2], "d": {"b": 1, "a": [1, 2], "c": {"z": null}}, "t": true, "q": "it's \"q\" \\ \n\t\u0001"})json";

TEST(JinjaOperatorsTest, Arithmetic) {
  EXPECT_EQ(
      Render(
          R"jinja({{ 1 + 2 }} {{ 1 + 2.5 }} {{ 7 - 10 }} {{ 3 * 4 }} {{ 7 / 2 }} {{ 6 / 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7.5 % 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2 ** 3 ** 2 }})jinja",
          kVars),
      "3 3.5 -3 12 3.5 2.0 3 -4 1 2 -2 1.5 1024 0.5 64");
  EXPECT_EQ(
      Render(
          R"jinja({{ true + 1 }} {{ -(3) }} {{ +2 }} {{ -2 ** 2 }} {{ 2 * 3 + 4 }} {{ 2 + 3 * 4 }} {{ (2 + 3) * 4 }} {{ 10 - 2 - 3 }})jinja",
          kVars),
      "2 -3 2 4 10 14 20 5");
  EXPECT_THAT(Render(R"jinja({{ 1 / 0 }})jinja", kVars), HasSubstr("division by zero"));
  EXPECT_THAT(Render(R"jinja({{ 1 // 0 }})jinja", kVars), HasSubstr("integer division or modulo by zero"));
  EXPECT_THAT(Render(R"jinja({{ 1 % 0 }})jinja", kVars), HasSubstr("integer modulo by zero"));
}

TEST(JinjaOperatorsTest, StringsAndLists) {
  EXPECT_EQ(
      Render(
          R"jinja({{ 'a' + 'b' }} {{ 'ab' * 3 }} {{ 3 * 'ab' }} {{ [1] * 3 }} {{ l + [4] }} {{ (1,) + (2,) }} {{ 'x' * 0 }}|)jinja",
          kVars),
      "ab ababab ababab [1, 1, 1] [3, 1, 2, 4] (1, 2) |");
  EXPECT_EQ(Render(R"jinja({{ 'a' ~ 1 ~ n ~ missing ~ true ~ [1] }})jinja", kVars), "a1NoneTrue[1]");
  EXPECT_THAT(Render(R"jinja({{ 'a' + 1 }})jinja", kVars), HasSubstr("can only concatenate str (not \"int\") to str"));
  EXPECT_THAT(Render(R"jinja({{ 1 + 'a' }})jinja", kVars),
              HasSubstr("unsupported operand type(s) for +: 'int' and 'str'"));
  EXPECT_THAT(Render(R"jinja({{ [1] + 'a' }})jinja", kVars),
              HasSubstr("can only concatenate list (not \"str\") to list"));
  EXPECT_THAT(Render(R"jinja({{ missing + 1 }})jinja", kVars), HasSubstr("'missing' is undefined"));
}

TEST(JinjaOperatorsTest, Comparison) {
  EXPECT_EQ(
      Render(
          R"jinja({{ '' != false }} {{ 0 == false }} {{ 1 == true }} {{ 1 == 1.0 }} {{ [1, 2] == [1, 2] }} {{ [1] == (1,) }} {{ {'a': 1, 'b': [2]} == {'b': [2], 'a': 1} }} {{ n == none }} {{ missing == other_missing }} {{ missing == none }})jinja",
          kVars),
      "True True True True True False True True True False");
  EXPECT_EQ(
      Render(
          R"jinja({{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'b' > 'a' }} {{ 'é' > 'z' }} {{ [1, 2] < [1, 3] }} {{ 2 >= 2.0 }})jinja",
          kVars),
      "True False True True True True");
  EXPECT_THAT(Render(R"jinja({{ 'a' < 1 }})jinja", kVars),
              HasSubstr("'<' not supported between instances of 'str' and 'int'"));
  EXPECT_THAT(Render(R"jinja({{ missing < 1 }})jinja", kVars), HasSubstr("'missing' is undefined"));
}

TEST(JinjaOperatorsTest, In) {
  EXPECT_EQ(
      Render(
          R"jinja({{ 'ell' in s }} {{ 1 in l }} {{ 5 not in l }} {{ 'b' in d }} {{ 1 in d }} {{ 'x' in missing }} {{ true in [1] }})jinja",
          kVars),
      "True True True True False False True");
  EXPECT_THAT(Render(R"jinja({{ 1 in 'abc' }})jinja", kVars),
              HasSubstr("'in <string>' requires string as left operand, not int"));
  EXPECT_THAT(Render(R"jinja({{ 1 in n }})jinja", kVars), HasSubstr("argument of type 'NoneType' is not iterable"));
}

TEST(JinjaOperatorsTest, Logic) {
  EXPECT_EQ(
      Render(
          R"jinja({{ true and 'A' or 'B' }} {{ false and 'A' or 'B' }} {{ n or 'fallback' }} {{ 0 or '' or 'last' }} {{ 'x' and 0 }} {{ not true }} {{ not missing }} {{ not 1 == 2 }})jinja",
          kVars),
      "A B fallback last 0 False True True");
  EXPECT_EQ(
      Render(
          R"jinja({{ 'yes' if t else 'no' }} {{ 'yes' if n else 'no' }} [{{ 'only' if n }}] {{ 'a' if false else 'b' if true else 'c' }})jinja",
          kVars),
      "yes no [] b");
}

TEST(JinjaOperatorsTest, Indexing) {
  EXPECT_EQ(
      Render(
          R"jinja({{ s[0] }} {{ s[-1] }} {{ u[1] }} {{ emoji[0] }} {{ l[0] }} {{ l[-1] }} {{ d['b'] }} {{ d.b }} {{ d['c']['z'] }} {{ l.0 }} {{ (1, 2)[1] }} {{ l[true] }})jinja",
          kVars),
      "H d é 🚀 3 2 1 1 None 3 2 1");
  EXPECT_EQ(
      Render(
          R"jinja([{{ l[10] }}] [{{ s[99] }}] [{{ d['zz'] }}] [{{ d.zz }}] [{{ n.attr }}] [{{ s.attr }}] [{{ d[0] }}])jinja",
          kVars),
      "[] [] [] [] [] [] []");
  EXPECT_THAT(Render(R"jinja({{ missing.attr }})jinja", kVars), HasSubstr("'missing' is undefined"));
  EXPECT_THAT(Render(R"jinja({{ missing['key'] }})jinja", kVars), HasSubstr("'missing' is undefined"));
  EXPECT_THAT(Render(R"jinja({{ d.zz.attr }})jinja", kVars), HasSubstr("'dict object' has no attribute 'zz'"));
}

TEST(JinjaOperatorsTest, Slicing) {
  EXPECT_EQ(
      Render(
          R"jinja({{ s[1:3] }} {{ s[:2] }} {{ s[-3:] }} {{ s[::-1] }} {{ s[::2] }} {{ s[-100:3] }} {{ s[3:-100] }}| {{ u[1:4] }} {{ emoji[-2:] }})jinja",
          kVars),
      "el He rld dlroW olleH HloWrd Hel | éll ab");
  EXPECT_THAT(
      Render(
          R"jinja({{ l[1:] }} {{ l[:-1] }} {{ l[::-1] }} {{ l[5:] }} {{ (1, 2, 3)[1:] }} {{ l[1:2:0] is defined }})jinja",
          kVars),
      HasSubstr("slice step cannot be zero"));
  EXPECT_THAT(Render(R"jinja({{ l[::0] }})jinja", kVars), HasSubstr("slice step cannot be zero"));
}

TEST(JinjaOperatorsTest, Literals) {
  EXPECT_EQ(
      Render(
          R"jinja({{ 0x1F }} {{ 0b101 }} {{ 0o17 }} {{ 1_000 }} {{ 1.5e3 }} {{ 1E-2 }} {{ 1_0.5 }} {{ true }} {{ True }} {{ none }} {{ None }} {{ false }})jinja",
          kVars),
      "31 5 15 1000 1500.0 0.01 10.5 True True None None False");
  EXPECT_EQ(
      Render(
          R"jinja({{ [1, 'a', [none]] }} {{ (1,) }} {{ () }} {{ (1, 'a') }} {{ {'a': 1, 'a': 2} }} {{ {1: 'x', 1.0: 'y'} }} {{ [1, 2,] }})jinja",
          kVars),
      "[1, 'a', [None]] (1,) () (1, 'a') {'a': 2} {1: 'y'} [1, 2]");
  EXPECT_EQ(
      Render(
          R"jinja({{ "\n"|length }} {{ '\t' }} {{ "\"" }} {{ '\'' }} {{ '\\' }} {{ '\x41\u00e9\U0001F600' }} {{ '\101' }} {{ 'unknown \d escape' }} {{ "adjacent" 'strings' }})jinja",
          kVars),
      "1 \t \" ' \\ Aé😀 A unknown \\d escape adjacentstrings");
}

TEST(JinjaOperatorsTest, StrOfValues) {
  EXPECT_EQ(
      Render(
          R"jinja({{ n }} {{ t }} {{ 1.0 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ -0.0 }} {{ 1/3 }} {{ 0.1 + 0.2 }} {{ l }} {{ d }} {{ [q] }} {{ ["a'b"] }} {{ ['a"b'] }} {{ ["a'b\"c"] }} {{ missing }}|)jinja",
          kVars),
      "None True 1.0 1e+16 1000000000000000.0 0.0001 1e-05 -0.0 0.3333333333333333 0.30000000000000004 [3, 1, 2] {'b': "
      "1, 'a': [1, 2], 'c': {'z': None}} ['it\\'s \"q\" \\\\ \\n\\t\\x01'] [\"a'b\"] ['a\"b'] ['a\\'b\"c'] |");
}

TEST(JinjaOperatorsTest, NonIntegerIndexIsUndefined) {
  EXPECT_EQ(Render("[{{ [1, 2][1.5] }}] [{{ 'ab'['x'] }}] [{{ [1, 2]['count'] is defined }}]"), "[] [] [True]");
}

}  // namespace
}  // namespace tandem::jinja
