// Python str, dict and list methods templates call. Every expectation was produced by Jinja2 3.1.
#include "chat/jinja_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem::jinja {
namespace {

using ::testing::HasSubstr;
using testing::Render;

constexpr char kVars[] =
    R"json({"s": "Hello World", "u": "héllo wörld", "ws": " \t\n hi  　", "d": {"b": 1, "a": [1, 2]}, "l": [3, 1, 3], "msg": {"items": "key wins?", "content": "c"}})json";

TEST(JinjaMethodsTest, Strip) {
  EXPECT_EQ(Render(R"jinja([{{ ws.strip() }}] [{{ ws.lstrip() }}] [{{ ws.rstrip() }}])jinja", kVars),
            "[hi] [hi  　] [ \t\n hi]");
  EXPECT_EQ(
      Render(
          R"jinja([{{ 'xxhixx'.strip('x') }}] [{{ 'xyhixy'.lstrip('yx') }}] [{{ 'hi!!'.rstrip('!') }}] [{{ '  a  '.strip(none) }}])jinja",
          kVars),
      "[hi] [hixy] [hi] [a]");
}

TEST(JinjaMethodsTest, Split) {
  EXPECT_EQ(
      Render(
          R"jinja({{ '  a  b c '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ ''.split() }} {{ ''.split(',') }})jinja",
          kVars),
      "['a', 'b', 'c'] ['a', 'b', '', 'c'] ['a', 'b c'] ['a b', 'c'] [] ['']");
  EXPECT_EQ(Render(R"jinja({{ 'a\nb\r\nc\n'.splitlines() }} {{ 'a\nb'.splitlines(true) }})jinja", kVars),
            "['a', 'b', 'c'] ['a\\n', 'b']");
  EXPECT_THAT(Render(R"jinja({{ 'a'.split('') }})jinja", kVars), HasSubstr("empty separator"));
}

TEST(JinjaMethodsTest, Case) {
  EXPECT_EQ(
      Render(
          R"jinja({{ s.upper() }} {{ s.lower() }} {{ u.upper() }} {{ u.title() }} {{ "it's a DOG".title() }} {{ 'hELLO'.capitalize() }} {{ 'Hello'.swapcase() }} {{ 'straße'.upper() }})jinja",
          kVars),
      "HELLO WORLD hello world HÉLLO WÖRLD Héllo Wörld It'S A Dog Hello hELLO STRASSE");
}

TEST(JinjaMethodsTest, Affixes) {
  EXPECT_EQ(
      Render(
          R"jinja({{ s.startswith('He') }} {{ s.startswith('he') }} {{ s.endswith('ld') }} {{ s.startswith(('x', 'Hel')) }} {{ s.startswith('World', 6) }} {{ s.endswith('Hello', 0, 5) }})jinja",
          kVars),
      "True False True True True True");
  EXPECT_EQ(
      Render(
          R"jinja({{ 'file.txt'.removesuffix('.txt') }} {{ 'file.txt'.removeprefix('file') }} {{ 'x'.removeprefix('y') }})jinja",
          kVars),
      "file .txt x");
}

TEST(JinjaMethodsTest, ReplaceFindCount) {
  EXPECT_EQ(
      Render(R"jinja({{ s.replace('l', 'L') }} {{ s.replace('l', 'L', 1) }} {{ 'ab'.replace('', '-') }})jinja", kVars),
      "HeLLo WorLd HeLlo World -a-b-");
  EXPECT_EQ(
      Render(
          R"jinja({{ s.find('o') }} {{ s.find('o', 5) }} {{ s.find('z') }} {{ u.find('w') }} {{ s.rfind('o') }} {{ s.index('W') }} {{ s.count('l') }} {{ s.count('') }})jinja",
          kVars),
      "4 7 -1 6 7 6 3 12");
  EXPECT_THAT(Render(R"jinja({{ s.index('z') }})jinja", kVars), HasSubstr("substring not found"));
}

TEST(JinjaMethodsTest, JoinFormatPad) {
  EXPECT_EQ(Render(R"jinja({{ ', '.join(['a', 'b']) }} {{ ''.join('abc') }})jinja", kVars), "a, b abc");
  EXPECT_THAT(Render(R"jinja({{ '-'.join([1, 2]) }})jinja", kVars),
              HasSubstr("sequence item 0: expected str instance, int found"));
  EXPECT_EQ(
      Render(
          R"jinja({{ '{} and {}'.format('a', 'b') }} {{ '{1}{0}'.format('a', 'b') }} {{ '{x}-{y!r}'.format(x=1, y='q') }} {{ '{:>4}|{:<4}|{:^5}|{:*^5}'.format('a', 'b', 'c', 'd') }} {{ '{:.2f} {:5d} {:05.1f} {:,} {:x} {:#x} {:+d} {:e} {:%}'.format(3.14159, 42, 2.25, 1234567, 255, 255, 3, 12345.678, 0.25) }})jinja",
          kVars),
      "a and b ba 1-'q'    a|b   |  c  |**d** 3.14    42 002.2 1,234,567 ff 0xff +3 1.234568e+04 25.000000%");
  EXPECT_EQ(
      Render(
          R"jinja([{{ 'ab'.center(6) }}] [{{ 'ab'.ljust(4, '.') }}] [{{ 'ab'.rjust(4) }}] [{{ '42'.zfill(5) }}] [{{ '-42'.zfill(5) }}])jinja",
          kVars),
      "[  ab  ] [ab..] [  ab] [00042] [-0042]");
}

TEST(JinjaMethodsTest, Partition) {
  EXPECT_EQ(Render(R"jinja({{ 'a=b=c'.partition('=') }} {{ 'a=b=c'.rpartition('=') }} {{ 'abc'.partition('=') }})jinja",
                   kVars),
            "('a', '=', 'b=c') ('a=b', '=', 'c') ('abc', '', '')");
}

TEST(JinjaMethodsTest, Predicates) {
  EXPECT_EQ(
      Render(
          R"jinja({{ 'abc'.isalpha() }} {{ 'ab1'.isalpha() }} {{ '123'.isdigit() }} {{ ''.isdigit() }} {{ 'a1'.isalnum() }} {{ ' \t'.isspace() }} {{ 'ABC'.isupper() }} {{ 'abc'.islower() }} {{ 'éa'.isalpha() }})jinja",
          kVars),
      "True False True False True True True True True");
}

TEST(JinjaMethodsTest, DictMethods) {
  EXPECT_EQ(
      Render(
          R"jinja({{ d.items()|list }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.get('b') }} {{ d.get('zz') }} {{ d.get('zz', 'dflt') }})jinja",
          kVars),
      "[('b', 1), ('a', [1, 2])] ['b', 'a'] [1, [1, 2]] 1 None dflt");
  EXPECT_EQ(Render(R"jinja({% for k, v in d.items() %}{{ k }}:{{ v }} {% endfor %})jinja", kVars), "b:1 a:[1, 2] ");
  EXPECT_EQ(Render(R"jinja({{ msg.items()|list }} {{ msg['items'] }} {{ msg.content }})jinja", kVars),
            "[('items', 'key wins?'), ('content', 'c')] key wins? c");
}

TEST(JinjaMethodsTest, ListMethods) {
  EXPECT_EQ(Render(R"jinja({{ l.index(1) }} {{ l.count(3) }} {{ l.copy() }})jinja", kVars), "1 2 [3, 1, 3]");
  EXPECT_THAT(Render(R"jinja({{ l.index(9) }})jinja", kVars), HasSubstr("9 is not in list"));
}

TEST(JinjaMethodsTest, MutationIsUnsafe) {
  EXPECT_THAT(Render(R"jinja({{ l.append(4) }})jinja", kVars),
              HasSubstr("access to attribute 'append' of 'list' object is unsafe."));
  EXPECT_THAT(Render(R"jinja({{ d.update({}) }})jinja", kVars),
              HasSubstr("access to attribute 'update' of 'dict' object is unsafe."));
  EXPECT_THAT(Render(R"jinja({{ d.pop('b') }})jinja", kVars),
              HasSubstr("access to attribute 'pop' of 'dict' object is unsafe."));
}

TEST(JinjaMethodsTest, UnknownMethodIsUndefined) {
  EXPECT_EQ(Render(R"jinja({{ s.no_such_method is defined }})jinja", kVars), "False");
  EXPECT_THAT(Render(R"jinja({{ s.no_such_method() }})jinja", kVars),
              HasSubstr("'str object' has no attribute 'no_such_method'"));
}

}  // namespace
}  // namespace tandem::jinja
