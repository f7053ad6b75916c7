// Jinja's builtin filters and transformers' tojson. Every expectation was produced by Jinja2 3.1
// (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, transformers' tojson).
#include "chat/jinja_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem::jinja {
namespace {

using ::testing::HasSubstr;
using testing::Render;

constexpr char kVars[] =
    R"json({"s": "Hello World", "u": "héllo wörld", "n": null, "l": [3, 1, 2], "e": [], "d": {"b": 1, "a": [1, 2]}, "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": " yo "}, {"role": "user", "content": "bye"}], "tools": [{"name": "get_weather", "description": "Température", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]})json";

TEST(JinjaFiltersTest, Abs) {
  EXPECT_EQ(Render(R"jinja({{ -3|abs }} {{ 2.5|abs }} {{ -0.0|abs }})jinja", kVars), "3 2.5 0.0");
  EXPECT_THAT(Render(R"jinja({{ 'x'|abs }})jinja", kVars), HasSubstr("bad operand type for abs(): 'str'"));
}

TEST(JinjaFiltersTest, Attr) {
  EXPECT_EQ(Render(R"jinja({{ s|attr('upper')() }})jinja", kVars), "HELLO WORLD");
  EXPECT_EQ(Render(R"jinja({{ d|attr('b') }}|{{ d|attr('items') is defined }})jinja", kVars), "|True");
}

TEST(JinjaFiltersTest, Batch) {
  EXPECT_EQ(Render(R"jinja({{ [1, 2, 3, 4, 5]|batch(2)|list }})jinja", kVars), "[[1, 2], [3, 4], [5]]");
  EXPECT_EQ(Render(R"jinja({{ [1, 2, 3]|batch(2, 'x')|list }})jinja", kVars), "[[1, 2], [3, 'x']]");
}

TEST(JinjaFiltersTest, CapitalizeLowerUpperTitle) {
  EXPECT_EQ(Render(R"jinja({{ 'hELLO wORLD'|capitalize }})jinja", kVars), "Hello world");
  EXPECT_EQ(Render(R"jinja({{ s|lower }} {{ s|upper }} {{ u|upper }})jinja", kVars),
            "hello world HELLO WORLD HÉLLO WÖRLD");
  EXPECT_EQ(Render(R"jinja({{ 'hello-world (x) [y] <z> a_b'|title }})jinja", kVars), "Hello-World (X) [Y] <Z> A_b");
  EXPECT_EQ(Render(R"jinja({{ n|upper }} {{ undefined_x|upper }}|)jinja", kVars), "NONE |");
}

TEST(JinjaFiltersTest, Center) {
  EXPECT_EQ(Render(R"jinja([{{ 'ab'|center(7) }}])jinja", kVars), "[   ab  ]");
  EXPECT_EQ(Render(R"jinja([{{ 'ab'|center(1) }}])jinja", kVars), "[ab]");
}

TEST(JinjaFiltersTest, Default) {
  EXPECT_EQ(Render(R"jinja({{ undefined_x|default('fallback') }})jinja", kVars), "fallback");
  EXPECT_EQ(Render(R"jinja({{ n|default('fallback') }})jinja", kVars), "None");
  EXPECT_EQ(
      Render(
          R"jinja({{ ''|default('fallback') }}|{{ ''|default('fallback', true) }}|{{ 0|d('zero', boolean=true) }})jinja",
          kVars),
      "|fallback|zero");
  EXPECT_EQ(Render(R"jinja({{ undefined_x|default }}|)jinja", kVars), "|");
}

TEST(JinjaFiltersTest, DictSort) {
  EXPECT_EQ(Render(R"jinja({{ {'b': 1, 'A': 3, 'c': 2}|dictsort }})jinja", kVars), "[('A', 3), ('b', 1), ('c', 2)]");
  EXPECT_EQ(Render(R"jinja({{ {'b': 1, 'A': 3, 'c': 2}|dictsort(case_sensitive=true) }})jinja", kVars),
            "[('A', 3), ('b', 1), ('c', 2)]");
  EXPECT_EQ(Render(R"jinja({{ {'b': 1, 'A': 3, 'c': 2}|dictsort(by='value', reverse=true) }})jinja", kVars),
            "[('A', 3), ('c', 2), ('b', 1)]");
}

TEST(JinjaFiltersTest, Escape) {
  EXPECT_EQ(Render(R"jinja({{ '<a href="x">&\'</a>'|e }} {{ '<b>'|escape }} {{ '&'|forceescape }})jinja", kVars),
            "&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt; &lt;b&gt; &amp;");
}

TEST(JinjaFiltersTest, FirstLast) {
  EXPECT_EQ(Render(R"jinja({{ l|first }} {{ l|last }} {{ s|first }} {{ s|last }} {{ d|first }})jinja", kVars),
            "3 2 H d b");
  EXPECT_EQ(Render(R"jinja({{ e|first }}|{{ e|last }}|{{ e|first is defined }})jinja", kVars), "||False");
}

TEST(JinjaFiltersTest, FloatAndInt) {
  EXPECT_EQ(
      Render(R"jinja({{ '3.5'|float }} {{ 'x'|float }} {{ 'x'|float(1.5) }} {{ 2|float }} {{ ' 1e3 '|float }})jinja",
             kVars),
      "3.5 0.0 1.5 2.0 1000.0");
  EXPECT_EQ(
      Render(
          R"jinja({{ '42'|int }} {{ '42.9'|int }} {{ 42.9|int }} {{ -42.9|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ n|int }} {{ true|int }})jinja",
          kVars),
      "42 42 42 -42 0 7 0 1");
  EXPECT_EQ(
      Render(R"jinja({{ '0x1f'|int(base=16) }} {{ '1_000'|int }} {{ '0b11'|int(base=0) }} {{ ' -12 '|int }})jinja",
             kVars),
      "31 1000 3 -12");
}

TEST(JinjaFiltersTest, Format) {
  EXPECT_EQ(Render(R"jinja({{ '%s-%d'|format('a', 3) }} {{ '%(x)s!'|format(x=1) }} {{ '%.2f'|format(3.14159) }})jinja",
                   kVars),
            "a-3 1! 3.14");
}

TEST(JinjaFiltersTest, Indent) {
  EXPECT_EQ(Render(R"jinja({{ 'a\nb\n\nc'|indent }})jinja", kVars), "a\n    b\n\n    c");
  EXPECT_EQ(Render(R"jinja({{ 'a\nb'|indent(2, first=true) }})jinja", kVars), "  a\n  b");
  EXPECT_EQ(Render(R"jinja({{ 'a\n\nb'|indent('> ', blank=true) }})jinja", kVars), "a\n> \n> b");
}

TEST(JinjaFiltersTest, Items) {
  EXPECT_EQ(Render(R"jinja({% for k, v in d|items %}{{ k }}={{ v }};{% endfor %})jinja", kVars), "b=1;a=[1, 2];");
  EXPECT_EQ(Render(R"jinja({{ undefined_x|items|list }})jinja", kVars), "[]");
  EXPECT_EQ(Render(R"jinja({{ d|items|list }})jinja", kVars), "[('b', 1), ('a', [1, 2])]");
}

TEST(JinjaFiltersTest, Join) {
  EXPECT_EQ(Render(R"jinja({{ l|join }} {{ l|join(', ') }} {{ msgs|join(',', attribute='role') }})jinja", kVars),
            "312 3, 1, 2 user,assistant,user");
  EXPECT_EQ(Render(R"jinja({{ [1, none, true]|join('|') }})jinja", kVars), "1|None|True");
  EXPECT_EQ(Render(R"jinja({{ undefined_x|join(',') }}|)jinja", kVars), "|");
}

TEST(JinjaFiltersTest, Length) {
  EXPECT_EQ(
      Render(
          R"jinja({{ s|length }} {{ u|length }} {{ '🚀'|length }} {{ l|length }} {{ d|length }} {{ e|count }} {{ undefined_x|length }})jinja",
          kVars),
      "11 11 1 3 2 0 0");
  EXPECT_THAT(Render(R"jinja({{ n|length }})jinja", kVars), HasSubstr("object of type 'NoneType' has no len()"));
  EXPECT_THAT(Render(R"jinja({{ 5|length }})jinja", kVars), HasSubstr("object of type 'int' has no len()"));
}

TEST(JinjaFiltersTest, List) {
  EXPECT_EQ(Render(R"jinja({{ 'abc'|list }} {{ d|list }} {{ (1, 2)|list }} {{ undefined_x|list }})jinja", kVars),
            "['a', 'b', 'c'] ['b', 'a'] [1, 2] []");
  EXPECT_THAT(Render(R"jinja({{ n|list }})jinja", kVars), HasSubstr("'NoneType' object is not iterable"));
}

TEST(JinjaFiltersTest, Map) {
  EXPECT_EQ(Render(R"jinja({{ msgs|map(attribute='role')|list }})jinja", kVars), "['user', 'assistant', 'user']");
  EXPECT_EQ(Render(R"jinja({{ msgs|map(attribute='missing', default='?')|list }})jinja", kVars), "['?', '?', '?']");
  EXPECT_EQ(Render(R"jinja({{ ['a', 'b']|map('upper')|list }} {{ [1, 2]|map('string')|join }})jinja", kVars),
            "['A', 'B'] 12");
  EXPECT_EQ(
      Render(R"jinja({{ [[1, 2], [3]]|map('length')|list }} {{ ['a']|map('replace', 'a', 'b')|list }})jinja", kVars),
      "[2, 1] ['b']");
  EXPECT_EQ(Render(R"jinja({{ n|map('upper')|list }})jinja", kVars), "[]");
  EXPECT_EQ(
      Render(R"jinja({{ [{'a': {'b': 5}}]|map(attribute='a.b')|list }} {{ [[7, 8]]|map(attribute='1')|list }})jinja",
             kVars),
      "[5] [8]");
}

TEST(JinjaFiltersTest, MinMaxSum) {
  EXPECT_EQ(
      Render(
          R"jinja({{ l|min }} {{ l|max }} {{ l|sum }} {{ l|sum(start=10) }} {{ ['b', 'A', 'c']|min }} {{ ['b', 'A', 'c']|max(case_sensitive=true) }})jinja",
          kVars),
      "1 3 6 16 A c");
  EXPECT_EQ(
      Render(R"jinja({{ msgs|max(attribute='content') }} {{ [{'v': 2}, {'v': 5}]|sum(attribute='v') }})jinja", kVars),
      "{'role': 'user', 'content': 'hi'} 7");
  EXPECT_EQ(Render(R"jinja({{ e|max }}|{{ e|sum }})jinja", kVars), "|0");
}

TEST(JinjaFiltersTest, Pprint) {
  EXPECT_EQ(Render(R"jinja({{ [1, 'x', none]|pprint }} {{ 'x'|pprint }})jinja", kVars), "[1, 'x', None] 'x'");
}

TEST(JinjaFiltersTest, RejectSelect) {
  EXPECT_EQ(Render(R"jinja({{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3, 4]|reject('odd')|list }})jinja", kVars),
            "[1, 3] [2, 4]");
  EXPECT_EQ(
      Render(R"jinja({{ [0, 1, '', 'a', none]|select|list }} {{ [0, 1, '', 'a', none]|reject|list }})jinja", kVars),
      "[1, 'a'] [0, '', None]");
  EXPECT_EQ(Render(R"jinja({{ ['a', 'code', 'b']|reject('equalto', 'code')|join(', ') }})jinja", kVars), "a, b");
  EXPECT_EQ(
      Render(R"jinja({{ [1, 5, 9]|select('gt', 4)|list }} {{ [1, 5, 9]|select('in', [1, 9])|list }})jinja", kVars),
      "[5, 9] [1, 9]");
  EXPECT_EQ(Render(R"jinja({{ n|select|list }} {{ undefined_x|reject('none')|list }})jinja", kVars), "[] []");
}

TEST(JinjaFiltersTest, RejectAttrSelectAttr) {
  EXPECT_EQ(
      Render(R"jinja({{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }})jinja", kVars),
      "['hi', 'bye']");
  EXPECT_EQ(Render(R"jinja({{ msgs|rejectattr('role', 'equalto', 'user')|list }})jinja", kVars),
            "[{'role': 'assistant', 'content': ' yo '}]");
  EXPECT_EQ(
      Render(
          R"jinja({{ [{'a': 1}, {'b': 2}, {'a': 0}]|selectattr('a')|list }} {{ [{'a': 1}, {'b': 2}]|selectattr('a', 'defined')|list }} {{ [{'a': 1}, {'b': 2}]|rejectattr('a', 'defined')|list }})jinja",
          kVars),
      "[{'a': 1}] [{'a': 1}] [{'b': 2}]");
  EXPECT_EQ(Render(R"jinja({{ n|selectattr('x')|list }})jinja", kVars), "[]");
}

TEST(JinjaFiltersTest, Replace) {
  EXPECT_EQ(
      Render(
          R"jinja({{ s|replace('o', '0') }} {{ s|replace('l', 'L', 2) }} {{ 'aaa'|replace('', '-') }} {{ 5|replace('5', 'five') }})jinja",
          kVars),
      "Hell0 W0rld HeLLo World -a-a-a- five");
}

TEST(JinjaFiltersTest, Reverse) {
  EXPECT_EQ(
      Render(R"jinja({{ s|reverse }} {{ 'héllo🚀'|reverse }} {{ l|reverse|list }} {{ d|reverse|list }})jinja", kVars),
      "dlroW olleH 🚀olléh [2, 1, 3] ['a', 'b']");
}

TEST(JinjaFiltersTest, Round) {
  EXPECT_EQ(
      Render(
          R"jinja({{ 2.5|round }} {{ 3.5|round }} {{ 2.567|round(2) }} {{ 2.1|round(method='ceil') }} {{ 2.9|round(method='floor') }} {{ 5|round }} {{ -1.5|round }})jinja",
          kVars),
      "2.0 4.0 2.57 3.0 2.0 5 -2.0");
  EXPECT_THAT(Render(R"jinja({{ 1|round(method='nearest') }})jinja", kVars),
              HasSubstr("method must be common, ceil or floor"));
}

TEST(JinjaFiltersTest, Safe) {
  EXPECT_EQ(Render(R"jinja({{ '<b>'|safe }} {{ l|safe }})jinja", kVars), "<b> [3, 1, 2]");
}

TEST(JinjaFiltersTest, Slice) {
  EXPECT_EQ(Render(R"jinja({{ [1, 2, 3, 4, 5]|slice(2)|list }} {{ [1, 2, 3, 4]|slice(3, 0)|list }})jinja", kVars),
            "[[1, 2, 3], [4, 5]] [[1, 2], [3, 0], [4, 0]]");
}

TEST(JinjaFiltersTest, Sort) {
  EXPECT_EQ(
      Render(
          R"jinja({{ l|sort }} {{ l|sort(true) }} {{ ['b', 'A', 'c']|sort }} {{ ['b', 'A', 'c']|sort(case_sensitive=true) }})jinja",
          kVars),
      "[1, 2, 3] [3, 2, 1] ['A', 'b', 'c'] ['A', 'b', 'c']");
  EXPECT_EQ(
      Render(
          R"jinja({{ msgs|sort(attribute='content')|map(attribute='content')|list }} {{ [[2, 'b'], [1, 'a']]|sort(attribute='0')|list }})jinja",
          kVars),
      "[' yo ', 'bye', 'hi'] [[1, 'a'], [2, 'b']]");
  EXPECT_THAT(Render(R"jinja({{ [1, 'a']|sort }})jinja", kVars),
              HasSubstr("'<' not supported between instances of 'str' and 'int'"));
}

TEST(JinjaFiltersTest, String) {
  EXPECT_EQ(
      Render(
          R"jinja({{ n|string }} {{ true|string }} {{ 1.0|string }} {{ l|string }} {{ d|string }} {{ (1,)|string }} [{{ undefined_x|string }}] {{ 'x'|string }})jinja",
          kVars),
      "None True 1.0 [3, 1, 2] {'b': 1, 'a': [1, 2]} (1,) [] x");
}

TEST(JinjaFiltersTest, StripTagsAndWordCount) {
  EXPECT_EQ(Render(R"jinja({{ '<p>Hello  <b>big</b>\n world</p><!-- c -->'|striptags }})jinja", kVars),
            "Hello big world");
  EXPECT_EQ(Render(R"jinja({{ 'one two  three_3, four!'|wordcount }})jinja", kVars), "4");
}

TEST(JinjaFiltersTest, ToJson) {
  EXPECT_EQ(Render(R"jinja({{ d|tojson }})jinja", kVars), "{\"b\": 1, \"a\": [1, 2]}");
  EXPECT_EQ(Render(R"jinja({{ tools|tojson }})jinja", kVars),
            "[{\"name\": \"get_weather\", \"description\": \"Température\", \"parameters\": {\"type\": \"object\", "
            "\"properties\": {\"city\": {\"type\": \"string\"}}}}]");
  EXPECT_EQ(Render(R"jinja({{ tools[0]|tojson(indent=4) }})jinja", kVars),
            "{\n    \"name\": \"get_weather\",\n    \"description\": \"Température\",\n    \"parameters\": {\n        "
            "\"type\": \"object\",\n        \"properties\": {\n            \"city\": {\n                \"type\": "
            "\"string\"\n            }\n        }\n    }\n}");
  EXPECT_EQ(
      Render(R"jinja({{ [1, 2]|tojson(indent=2) }} {{ e|tojson(indent=2) }} {{ {}|tojson(indent=2) }})jinja", kVars),
      "[\n  1,\n  2\n] [] {}");
  EXPECT_EQ(Render(R"jinja({{ 'é"\\\n\t\x01'|tojson }} {{ 'é🚀'|tojson(ensure_ascii=true) }})jinja", kVars),
            "\"é\\\"\\\\\\n\\t\\u0001\" \"\\u00e9\\ud83d\\ude80\"");
  EXPECT_EQ(Render(R"jinja({{ [1.0, 0.1, 1e16, 1e-5, 12345.678, -0.0, n, true, false]|tojson }})jinja", kVars),
            "[1.0, 0.1, 1e+16, 1e-05, 12345.678, -0.0, null, true, false]");
  EXPECT_EQ(
      Render(
          R"jinja({{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }} {{ {'b': [1, 2]}|tojson(separators=(',', ':')) }})jinja",
          kVars),
      "{\"a\": 2, \"b\": 1} {\"b\":[1,2]}");
  EXPECT_EQ(Render(R"jinja({{ {1: 'a', none: 'b', true: 'c', 2.5: 'd'}|tojson }})jinja", kVars),
            "{\"1\": \"c\", \"null\": \"b\", \"2.5\": \"d\"}");
  EXPECT_EQ(Render(R"jinja({{ [1, [2, {'a': []}]]|tojson(indent='\t') }})jinja", kVars),
            "[\n\t1,\n\t[\n\t\t2,\n\t\t{\n\t\t\t\"a\": []\n\t\t}\n\t]\n]");
  EXPECT_THAT(Render(R"jinja({{ undefined_x|tojson }})jinja", kVars),
              HasSubstr("Object of type Undefined is not JSON serializable"));
  EXPECT_THAT(Render(R"jinja({{ namespace(a=1)|tojson }})jinja", kVars),
              HasSubstr("Object of type Namespace is not JSON serializable"));
}

TEST(JinjaFiltersTest, Trim) {
  EXPECT_EQ(
      Render(
          R"jinja([{{ '  a b \n\t'|trim }}] [{{ 'xxaxx'|trim('x') }}] [{{ '\u00a0\u3000a\u2009'|trim }}] [{{ n|trim }}])jinja",
          kVars),
      "[a b] [a] [a] [None]");
}

TEST(JinjaFiltersTest, Truncate) {
  EXPECT_EQ(
      Render(
          R"jinja({{ 'hello world foo bar'|truncate(9) }}|{{ 'hello world foo bar'|truncate(9, true) }}|{{ 'hello world foo bar'|truncate(9, false, '..', 0) }}|{{ 'short'|truncate(3) }})jinja",
          kVars),
      "hello...|hello ...|hello..|short");
}

TEST(JinjaFiltersTest, Unique) {
  EXPECT_EQ(
      Render(
          R"jinja({{ [1, 2, 1, 3, 2]|unique|list }} {{ ['a', 'A', 'b']|unique|list }} {{ ['a', 'A', 'b']|unique(case_sensitive=true)|list }} {{ msgs|unique(attribute='role')|map(attribute='content')|list }} {{ [1, 1.0, true]|unique|list }})jinja",
          kVars),
      "[1, 2, 3] ['a', 'b'] ['a', 'A', 'b'] ['hi', ' yo '] [1]");
}

TEST(JinjaFiltersTest, UnknownFilter) {
  EXPECT_THAT(Render(R"jinja({{ 1|no_such_filter }})jinja", kVars), HasSubstr("No filter named 'no_such_filter'."));
}

}  // namespace
}  // namespace tandem::jinja
