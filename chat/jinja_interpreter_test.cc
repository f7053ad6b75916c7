// Statements, scoping, whitespace control, undefined semantics and errors. Expectations were produced
// by Jinja2 3.1 unless a test says otherwise.
#include "chat/jinja_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem::jinja {
namespace {

using ::testing::HasSubstr;
using testing::Render;

SyntaxOptions Syntax(bool trim_blocks, bool lstrip_blocks) {
  SyntaxOptions options;
  options.trim_blocks = trim_blocks;
  options.lstrip_blocks = lstrip_blocks;
  return options;
}

constexpr char kVars[] =
    R"json({"l": [3, 1, 2], "d": {"b": 1, "a": [1, 2]}, "e": [], "n": null, "s": "ab", "msgs": [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"}], "tree": [{"n": "a", "c": [{"n": "b", "c": [{"n": "c", "c": []}]}]}, {"n": "d", "c": []}]})json";

TEST(JinjaInterpreterTest, WhitespaceChatTemplateDefaults) {
  EXPECT_EQ(Render(R"jinja(a
  {% if true %}
  b
  {% endif %}
c)jinja",
                   kVars),
            "a\n  b\nc");
  EXPECT_EQ(Render(R"jinja(a
  {%- if true -%}
  b
  {%- endif -%}
c)jinja",
                   kVars),
            "abc");
  EXPECT_EQ(Render(R"jinja(a
  {%+ if true %}
  b
  {% endif +%}
c)jinja",
                   kVars),
            "a\n    b\n\nc");
  EXPECT_EQ(Render(R"jinja(  {{ 'v' }}  
  {# c #}  
  {#- c -#}  x)jinja",
                   kVars),
            "  v  \nx");
  EXPECT_EQ(Render(R"jinja({% for a in [1, 2] %}
  {{ a }}
{% endfor %}
)jinja",
                   kVars),
            "  1\n  2\n");
  EXPECT_EQ(Render(R"jinja({% for a in [1, 2] %}
  {{- a -}}
{% endfor %}

)jinja",
                   kVars),
            "12");
  EXPECT_EQ(Render("line1\r\nline2\r{{ 'x' }}\r\n", kVars), "line1\nline2\nx");
  EXPECT_EQ(Render(R"jinja({{ 'a' -}}   

  {{- 'b' }})jinja",
                   kVars),
            "ab");
  EXPECT_EQ(Render(R"jinja({% if true %}a{% else %}b{% endif %}

)jinja",
                   kVars),
            "a");
  EXPECT_EQ(Render(R"jinja(	{% set x = 1 %}	
q)jinja",
                   kVars),
            "\t\nq");
  EXPECT_EQ(Render(R"jinja({%- set x = 1 -%}

{{ x }}
)jinja",
                   kVars),
            "1");
  EXPECT_EQ(Render(R"jinja(a
    {# lstripped comment #}
b)jinja",
                   kVars),
            "a\nb");
  EXPECT_EQ(Render(R"jinja(  {{ 'not lstripped' }}
)jinja",
                   kVars),
            "  not lstripped");
  EXPECT_EQ(Render(R"jinja(x{% if true %}
y{% endif %})jinja",
                   kVars),
            "xy");
  EXPECT_EQ(Render(R"jinja(x {%- if true %}y{% endif %})jinja", kVars), "xy");
}

TEST(JinjaInterpreterTest, WhitespaceJinjaDefaults) {
  EXPECT_EQ(Render(R"jinja(a
  {% if true %}
  b
  {% endif %}
c)jinja",
                   kVars, Syntax(false, false)),
            "a\n  \n  b\n  \nc");
  EXPECT_EQ(Render(R"jinja(a
  {%- if true -%}
  b
  {%- endif -%}
c)jinja",
                   kVars, Syntax(false, false)),
            "abc");
  EXPECT_EQ(Render(R"jinja(a
  {%+ if true %}
  b
  {% endif +%}
c)jinja",
                   kVars, Syntax(false, false)),
            "a\n  \n  b\n  \nc");
  EXPECT_EQ(Render(R"jinja(  {{ 'v' }}  
  {# c #}  
  {#- c -#}  x)jinja",
                   kVars, Syntax(false, false)),
            "  v  \n  x");
  EXPECT_EQ(Render(R"jinja({% for a in [1, 2] %}
  {{ a }}
{% endfor %}
)jinja",
                   kVars, Syntax(false, false)),
            "\n  1\n\n  2\n");
  EXPECT_EQ(Render(R"jinja({% for a in [1, 2] %}
  {{- a -}}
{% endfor %}

)jinja",
                   kVars, Syntax(false, false)),
            "12\n");
  EXPECT_EQ(Render("line1\r\nline2\r{{ 'x' }}\r\n", kVars, Syntax(false, false)), "line1\nline2\nx");
  EXPECT_EQ(Render(R"jinja({{ 'a' -}}   

  {{- 'b' }})jinja",
                   kVars, Syntax(false, false)),
            "ab");
  EXPECT_EQ(Render(R"jinja({% if true %}a{% else %}b{% endif %}

)jinja",
                   kVars, Syntax(false, false)),
            "a\n");
  EXPECT_EQ(Render(R"jinja(	{% set x = 1 %}	
q)jinja",
                   kVars, Syntax(false, false)),
            "\t\t\nq");
  EXPECT_EQ(Render(R"jinja({%- set x = 1 -%}

{{ x }}
)jinja",
                   kVars, Syntax(false, false)),
            "1");
  EXPECT_EQ(Render(R"jinja(a
    {# lstripped comment #}
b)jinja",
                   kVars, Syntax(false, false)),
            "a\n    \nb");
  EXPECT_EQ(Render(R"jinja(  {{ 'not lstripped' }}
)jinja",
                   kVars, Syntax(false, false)),
            "  not lstripped");
  EXPECT_EQ(Render(R"jinja(x{% if true %}
y{% endif %})jinja",
                   kVars, Syntax(false, false)),
            "x\ny");
  EXPECT_EQ(Render(R"jinja(x {%- if true %}y{% endif %})jinja", kVars, Syntax(false, false)), "xy");
}

TEST(JinjaInterpreterTest, WhitespaceTrimBlocksOnly) {
  EXPECT_EQ(Render(R"jinja(a
  {% if true %}
  b
  {% endif %}
c)jinja",
                   kVars, Syntax(true, false)),
            "a\n    b\n  c");
  EXPECT_EQ(Render(R"jinja(a
  {%- if true -%}
  b
  {%- endif -%}
c)jinja",
                   kVars, Syntax(true, false)),
            "abc");
  EXPECT_EQ(Render(R"jinja(a
  {%+ if true %}
  b
  {% endif +%}
c)jinja",
                   kVars, Syntax(true, false)),
            "a\n    b\n  \nc");
  EXPECT_EQ(Render(R"jinja(  {{ 'v' }}  
  {# c #}  
  {#- c -#}  x)jinja",
                   kVars, Syntax(true, false)),
            "  v  \n  x");
  EXPECT_EQ(Render(R"jinja({% for a in [1, 2] %}
  {{ a }}
{% endfor %}
)jinja",
                   kVars, Syntax(true, false)),
            "  1\n  2\n");
  EXPECT_EQ(Render(R"jinja({% for a in [1, 2] %}
  {{- a -}}
{% endfor %}

)jinja",
                   kVars, Syntax(true, false)),
            "12");
}

TEST(JinjaInterpreterTest, Comments) {
  EXPECT_EQ(Render(R"jinja(a{# one #}b{#- two -#} c {# multi
line #}d)jinja",
                   kVars),
            "abc d");
  EXPECT_EQ(Render(R"jinja({# {{ not rendered }} {% if %} #}ok)jinja", kVars), "ok");
}

TEST(JinjaInterpreterTest, Raw) {
  EXPECT_EQ(Render(R"jinja({% raw %}{{ not rendered }}{% endraw %})jinja", kVars), "{{ not rendered }}");
  EXPECT_EQ(Render(R"jinja(  {%- raw -%}  {{ x }}  {%- endraw -%}  y)jinja", kVars), "{{ x }}y");
  EXPECT_EQ(Render(R"jinja(x  {% raw %}
 r 
{% endraw %}
  z)jinja",
                   kVars),
            "x  \n r \n  z");
}

TEST(JinjaInterpreterTest, IfElifElse) {
  EXPECT_EQ(Render(R"jinja({% if n %}1{% elif e %}2{% elif l %}3{% else %}4{% endif %})jinja", kVars), "3");
  EXPECT_EQ(Render(R"jinja({% if false %}1{% else %}2{% endif %}{% if missing %}x{% endif %})jinja", kVars), "2");
  EXPECT_EQ(Render(R"jinja({% if msgs[0]['role'] == 'system' %}sys{% endif %})jinja", kVars), "sys");
}

TEST(JinjaInterpreterTest, ForLoopVariables) {
  EXPECT_EQ(
      Render(
          R"jinja({% for a in l %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }};{% endfor %})jinja",
          kVars),
      "1/0/3/2/True/False/3;2/1/2/1/False/False/3;3/2/1/0/False/True/3;");
  EXPECT_EQ(
      Render(
          R"jinja({% for a in l %}[{{ loop.previtem }}|{{ loop.nextitem }}|{{ loop.cycle('x', 'y') }}|{{ loop.depth }}]{% endfor %})jinja",
          kVars),
      "[|1|x|1][3|2|y|1][1||x|1]");
  EXPECT_EQ(Render(R"jinja({% for a in [1, 1, 2] %}{{ loop.changed(a) }}{% endfor %})jinja", kVars), "TrueFalseTrue");
}

TEST(JinjaInterpreterTest, ForElseAndFilter) {
  EXPECT_EQ(Render(R"jinja({% for a in e %}x{% else %}empty{% endfor %})jinja", kVars), "empty");
  EXPECT_EQ(
      Render(
          R"jinja({% for a in l if a > 1 %}{{ a }}({{ loop.index }}/{{ loop.length }}){% else %}none{% endfor %})jinja",
          kVars),
      "3(1/2)2(2/2)");
  EXPECT_EQ(Render(R"jinja({% for a in l if a > 5 %}x{% else %}filtered{% endfor %})jinja", kVars), "filtered");
  EXPECT_EQ(Render(R"jinja({% for k, v in d.items() if k != 'a' %}{{ k }}={{ v }}{% endfor %})jinja", kVars), "b=1");
}

TEST(JinjaInterpreterTest, ForOverStringsDictsUndefined) {
  EXPECT_EQ(Render(R"jinja({% for c in 'héé' %}[{{ c }}]{% endfor %})jinja", kVars), "[h][é][é]");
  EXPECT_EQ(Render(R"jinja({% for k in d %}{{ k }}{% endfor %})jinja", kVars), "ba");
  EXPECT_EQ(Render(R"jinja({% for x in missing %}x{% else %}nothing{% endfor %})jinja", kVars), "nothing");
  EXPECT_THAT(Render(R"jinja({% for x in n %}{% endfor %})jinja", kVars),
              HasSubstr("'NoneType' object is not iterable"));
  EXPECT_THAT(Render(R"jinja({% for x in 5 %}{% endfor %})jinja", kVars), HasSubstr("'int' object is not iterable"));
}

TEST(JinjaInterpreterTest, TupleUnpacking) {
  EXPECT_EQ(Render(R"jinja({% for a, b in [[1, 2], (3, 4), 'xy'] %}{{ a }}{{ b }};{% endfor %})jinja", kVars),
            "12;34;xy;");
  EXPECT_EQ(Render(R"jinja({% set a, b = 1, 2 %}{{ b }}{{ a }})jinja", kVars), "21");
  EXPECT_THAT(Render(R"jinja({% for a, b in [[1, 2, 3]] %}{% endfor %})jinja", kVars),
              HasSubstr("too many values to unpack (expected 2)"));
  EXPECT_THAT(Render(R"jinja({% for a, b in [[1]] %}{% endfor %})jinja", kVars),
              HasSubstr("not enough values to unpack (expected 2, got 1)"));
}

TEST(JinjaInterpreterTest, BreakContinue) {
  EXPECT_EQ(
      Render(
          R"jinja({% for a in [1, 2, 3, 4] %}{% if a == 2 %}{% continue %}{% endif %}{% if a == 4 %}{% break %}{% endif %}{{ a }}{% endfor %})jinja",
          kVars),
      "13");
  EXPECT_EQ(
      Render(
          R"jinja({% for a in [1, 2] %}{% for b in [1, 2, 3] %}{% if b == 2 %}{% break %}{% endif %}{{ a }}{{ b }} {% endfor %}{% endfor %})jinja",
          kVars),
      "11 21 ");
}

TEST(JinjaInterpreterTest, NestedLoops) {
  EXPECT_EQ(
      Render(
          R"jinja({% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{% endfor %})jinja",
          kVars),
      "11x 21y 12x 22y ");
  EXPECT_EQ(
      Render(
          R"jinja({% for a in [1, 2] %}{% set outer = loop %}{% for b in [1] %}{{ outer.index }}{{ loop.index }} {% endfor %}{% endfor %})jinja",
          kVars),
      "11 21 ");
}

TEST(JinjaInterpreterTest, RecursiveLoop) {
  EXPECT_EQ(
      Render(
          R"jinja({% for item in tree recursive %}{{ item.n }}{{ loop.depth }}{% if item.c %}[{{ loop(item.c) }}]{% endif %}{% endfor %})jinja",
          kVars),
      "a1[b2[c3]]d1");
}

TEST(JinjaInterpreterTest, SetScoping) {
  EXPECT_EQ(Render(R"jinja({% set v = 1 %}{% for a in l %}{% set v = a %}{% endfor %}{{ v }})jinja", kVars), "1");
  EXPECT_EQ(Render(R"jinja({% if true %}{% set w = 'in-if' %}{% endif %}{{ w }})jinja", kVars), "in-if");
  EXPECT_EQ(
      Render(R"jinja({% for i in [1, 2, 3] %}{% if i == 2 %}{% set x = 'set' %}{% endif %}[{{ x }}]{% endfor %})jinja",
             kVars),
      "[][set][]");
  EXPECT_EQ(Render(R"jinja({% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = 2 %}{{ x }}{% endfor %}{{ x }})jinja",
                   kVars),
            "12121");
  EXPECT_EQ(Render(R"jinja({% with a = 5, b = 6 %}{{ a + b }}{% endwith %}[{{ a }}])jinja", kVars), "11[]");
}

TEST(JinjaInterpreterTest, Namespace) {
  EXPECT_EQ(
      Render(
          R"jinja({% set ns = namespace(c=0, items=[]) %}{% for a in l %}{% set ns.c = ns.c + a %}{% set ns.items = ns.items + [a] %}{% endfor %}{{ ns.c }} {{ ns.items }})jinja",
          kVars),
      "6 [3, 1, 2]");
  EXPECT_EQ(
      Render(
          R"jinja({% set ns = namespace() %}{% set ns.found = false %}{% for m in msgs %}{% if m.role == 'assistant' %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }} {{ ns }})jinja",
          kVars),
      "True <Namespace {'found': True}>");
  EXPECT_EQ(Render(R"jinja({% set ns = namespace(d) %}{{ ns.b }} {{ namespace({'x': 1}, y=2).y }})jinja", kVars),
            "1 2");
  EXPECT_THAT(Render(R"jinja({% set x = 1 %}{% set x.a = 2 %})jinja", kVars),
              HasSubstr("cannot assign attribute on non-namespace object"));
  EXPECT_EQ(Render(R"jinja({% set ns = namespace() %}{% set ns.self = ns %}{{ ns }})jinja", kVars),
            "<Namespace {'self': <Namespace {...}>}>");
}

TEST(JinjaInterpreterTest, SetBlockAndFilterBlock) {
  EXPECT_EQ(Render(R"jinja({% set blk %}block {{ s }}{% endset %}{{ blk }})jinja", kVars), "block ab");
  EXPECT_EQ(Render(R"jinja({% set blk | upper | replace('B', 'b') %}up {{ s }}{% endset %}{{ blk }})jinja", kVars),
            "UP Ab");
  EXPECT_EQ(Render(R"jinja({% filter upper %}filtered {{ s }}{% endfilter %})jinja", kVars), "FILTERED AB");
  EXPECT_EQ(Render(R"jinja({% filter trim | title %}  two words  {% endfilter %})jinja", kVars), "Two Words");
  EXPECT_EQ(Render(R"jinja({% set ns = namespace() %}{% set ns.text %}in ns{% endset %}{{ ns.text }})jinja", kVars),
            "in ns");
}

TEST(JinjaInterpreterTest, Macros) {
  EXPECT_EQ(
      Render(
          R"jinja({% macro greet(name, greeting='Hi') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('A') }} {{ greet('B', greeting='Yo') }} {{ greet(name='C') }} [{{ greet() }}])jinja",
          kVars),
      "Hi, A! Yo, B! Hi, C! [Hi, !]");
  EXPECT_EQ(
      Render(R"jinja({% macro m(a) %}[{{ a }}|{{ varargs }}|{{ kwargs }}]{% endmacro %}{{ m(1, 2, 3, k=4) }})jinja",
             kVars),
      "[1|(2, 3)|{'k': 4}]");
  EXPECT_EQ(
      Render(
          R"jinja({% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }})jinja",
          kVars),
      "120");
  EXPECT_EQ(Render(R"jinja({% set top = 'T' %}{% macro m() %}{{ top }}{% endmacro %}{{ m() }})jinja", kVars), "T");
  EXPECT_EQ(Render(R"jinja({% macro m(a, b=a ~ '!') %}{{ b }}{% endmacro %}{{ m('x') }})jinja", kVars), "x!");
}

TEST(JinjaInterpreterTest, CallBlocks) {
  EXPECT_EQ(
      Render(
          R"jinja({% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}inner {{ s }}{% endcall %})jinja",
          kVars),
      "<b>inner ab</b>");
  EXPECT_EQ(
      Render(
          R"jinja({% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(x) each([1, 2]) %}<{{ x }}>{% endcall %})jinja",
          kVars),
      "<1><2>");
}

TEST(JinjaInterpreterTest, GlobalFunctions) {
  EXPECT_EQ(
      Render(
          R"jinja({{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ range(0)|list }})jinja",
          kVars),
      "[0, 1, 2] [1, 4, 7] [5, 3, 1] []");
  EXPECT_EQ(Render(R"jinja({{ dict(a=1, b=2) }} {{ dict([('x', 1)]) }})jinja", kVars), "{'a': 1, 'b': 2} {'x': 1}");
  EXPECT_EQ(Render(R"jinja({% set j = joiner(', ') %}{% for a in l %}{{ j() }}{{ a }}{% endfor %})jinja", kVars),
            "3, 1, 2");
  EXPECT_THAT(Render(R"jinja({{ range(100001)|length }})jinja", kVars),
              HasSubstr("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000)."));
  EXPECT_THAT(Render(R"jinja({{ range(1, 2, 0) }})jinja", kVars), HasSubstr("range() arg 3 must not be zero"));
}

TEST(JinjaInterpreterTest, RaiseException) {
  EXPECT_THAT(
      Render(
          R"jinja({{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }})jinja",
          kVars),
      HasSubstr("Conversation roles must alternate user/assistant/user/assistant/..."));
  EXPECT_THAT(Render(R"jinja({% if true %}{{ raise_exception('with ' ~ 1 ~ ' number') }}{% endif %})jinja", kVars),
              HasSubstr("with 1 number"));
}

TEST(JinjaInterpreterTest, StrftimeNow) {
  EXPECT_EQ(
      Render(
          R"jinja({{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%A %B %j %p %I %y %a %e') }}|{{ strftime_now('%-d %-m %-H') }})jinja",
          kVars),
      "07 Mar 2025|2025-03-07 12:34:56|Friday March 066 PM 12 25 Fri  7|7 3 12");
}

TEST(JinjaInterpreterTest, UndefinedSemantics) {
  EXPECT_EQ(
      Render(
          R"jinja([{{ missing }}] [{{ missing ~ 'x' }}] [{{ missing|length }}] [{{ missing|default('d') }}] [{{ not missing }}] [{{ missing is defined }}])jinja",
          kVars),
      "[] [x] [0] [d] [True] [False]");
  EXPECT_EQ(
      Render(
          R"jinja({% if missing %}yes{% else %}no{% endif %} {% for x in missing %}{% endfor %}{{ 'x' in missing }})jinja",
          kVars),
      "no False");
  EXPECT_EQ(
      Render(
          R"jinja({{ d.missing }}|{{ d.missing is defined }}|{{ d['missing'] is defined }}|{{ s.content is defined }})jinja",
          kVars),
      "|False|False|False");
  EXPECT_THAT(Render(R"jinja({{ missing.attr }})jinja", kVars), HasSubstr("'missing' is undefined"));
  EXPECT_THAT(Render(R"jinja({{ missing[0] }})jinja", kVars), HasSubstr("'missing' is undefined"));
  EXPECT_THAT(Render(R"jinja({{ missing() }})jinja", kVars), HasSubstr("'missing' is undefined"));
  EXPECT_THAT(Render(R"jinja({{ missing + 1 }})jinja", kVars), HasSubstr("'missing' is undefined"));
  EXPECT_THAT(Render(R"jinja({{ d.missing.attr }})jinja", kVars),
              HasSubstr("'dict object' has no attribute 'missing'"));
  EXPECT_THAT(Render(R"jinja({{ missing|tojson }})jinja", kVars),
              HasSubstr("Object of type Undefined is not JSON serializable"));
}

TEST(JinjaInterpreterTest, SyntaxErrors) {
  EXPECT_THAT(Render(R"jinja({% if %})jinja", kVars),
              HasSubstr("Expected an expression, got 'end of statement block'"));
  EXPECT_THAT(Render(R"jinja({% endif %})jinja", kVars), HasSubstr("Encountered unknown tag 'endif'."));
  EXPECT_THAT(Render(R"jinja({% for x in l %})jinja", kVars),
              HasSubstr("Unexpected end of template. Jinja was looking for the following tags: 'endfor' or 'else'. The "
                        "innermost block that needs to be closed is 'for'."));
  EXPECT_THAT(Render(R"jinja({{ 1 +* 2 }})jinja", kVars), HasSubstr("unexpected '*'"));
  EXPECT_THAT(Render(R"jinja({{ 'unterminated }})jinja", kVars), HasSubstr("unexpected char \"'\" at 3"));
  EXPECT_THAT(Render(R"jinja({{ foo(}})jinja", kVars), HasSubstr("unexpected '}', expected ')'"));
  EXPECT_THAT(Render(R"jinja({% set 1 = 2 %})jinja", kVars), HasSubstr("can't assign to 'const'"));
  EXPECT_THAT(Render(R"jinja({% foo %})jinja", kVars), HasSubstr("Encountered unknown tag 'foo'."));
  EXPECT_THAT(Render(R"jinja({% macro f(a=1, b) %}{% endmacro %})jinja", kVars),
              HasSubstr("non-default argument follows default argument"));
  EXPECT_THAT(Render(R"jinja({{ x is }})jinja", kVars),
              HasSubstr("expected token 'name', got 'end of print statement'"));
  EXPECT_THAT(Render(R"jinja({# abc)jinja", kVars), HasSubstr("Missing end of comment tag"));
  EXPECT_THAT(Render(R"jinja({% raw %}abc)jinja", kVars), HasSubstr("Missing end of raw directive"));
  EXPECT_THAT(Render(R"jinja({{ 1 }}

{% if x %}
{% endfor %})jinja",
                     kVars),
              HasSubstr("Encountered unknown tag 'endfor'. Jinja was looking for the following tags: 'elif' or 'else' "
                        "or 'endif'. The innermost block that needs to be closed is 'if'."));
}

// ---- Behaviour beyond Jinja2's own (or chosen where Jinja2 has no equivalent) ----

using testing::RenderStatus;

TEST(JinjaInterpreterTest, GenerationTagRendersItsBody) {
  // transformers' AssistantTracker extension: the body renders unchanged.
  EXPECT_EQ(Render("{% for m in msgs %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}"
                   "{% endif %}{% endfor %}",
                   kVars),
            "A1");
}

TEST(JinjaInterpreterTest, RaiseExceptionIsMarkedAndUnprefixed) {
  absl::StatusOr<std::string> out = RenderStatus("\n\n{{ raise_exception('Bad roles') }}");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(), "Bad roles");
  EXPECT_TRUE(IsTemplateRaisedError(out.status()));
}

TEST(JinjaInterpreterTest, RuntimeErrorsNameTheLine) {
  absl::StatusOr<std::string> out = RenderStatus("a\nb\n{% for x in [1] %}\n{{ x + 'a' }}\n{% endfor %}");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().message(), "line 4: unsupported operand type(s) for +: 'int' and 'str'");
  EXPECT_FALSE(IsTemplateRaisedError(out.status()));
}

TEST(JinjaInterpreterTest, SyntaxErrorsNameTheLine) {
  absl::StatusOr<std::string> out = RenderStatus("{% if true %}\nok\n{% endfro %}");
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("line 3: Encountered unknown tag 'endfro'."));
}

TEST(JinjaInterpreterTest, UnsupportedTagsAreErrors) {
  EXPECT_THAT(Render("{% include 'other.jinja' %}"), HasSubstr("the 'include' tag is not supported"));
  EXPECT_THAT(Render("{% extends 'base' %}"), HasSubstr("the 'extends' tag is not supported"));
  EXPECT_THAT(Render("{% break %}"), HasSubstr("'break' outside of a loop"));
}

TEST(JinjaInterpreterTest, IntegersAreSixtyFourBit) {
  // Python ints grow without bound; ours stop at int64 with an error instead of wrapping.
  EXPECT_EQ(Render("{{ 9223372036854775807 }}"), "9223372036854775807");
  EXPECT_THAT(Render("{{ 9223372036854775807 + 1 }}"), HasSubstr("integer overflow"));
  EXPECT_THAT(Render("{{ 2 ** 64 }}"), HasSubstr("integer overflow"));
  EXPECT_THAT(Render("{{ 99999999999999999999 }}"), HasSubstr("is too large"));
}

absl::StatusCode RenderCode(std::string_view source, const RenderLimits& limits = RenderLimits()) {
  return RenderStatus(source, "{}", SyntaxOptions(), limits).status().code();
}

TEST(JinjaInterpreterTest, WorkLimitStopsRunawayLoops) {
  RenderLimits limits;
  limits.max_steps = 10000;
  EXPECT_EQ(RenderCode("{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}", limits),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RenderCode("{% for a in range(100) %}{{ a }}{% endfor %}", limits), absl::StatusCode::kOk);
  EXPECT_EQ(RenderCode("{{ [1] * 100000 }}", limits), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RenderCode("{{ range(1000000) }}"), absl::StatusCode::kResourceExhausted);  // Jinja's MAX_RANGE
}

TEST(JinjaInterpreterTest, OutputLimitStopsMemoryBombs) {
  RenderLimits limits;
  limits.max_output_bytes = 1 << 20;
  EXPECT_EQ(RenderCode("{{ 'x' * 10000000000 }}", limits), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(
      RenderCode("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                 limits),
      absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RenderCode("{% for i in range(100000) %}{{ 'abcdefghijklmnopqrstuvwxyz' }}{% endfor %}", limits),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RenderCode("{{ '%9999999999s' % 'a' }}", limits), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RenderCode("{{ 'a'|center(9999999999) }}", limits), absl::StatusCode::kResourceExhausted);
}

TEST(JinjaInterpreterTest, DepthLimitStopsRunawayRecursion) {
  EXPECT_EQ(RenderCode("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RenderCode("{% for x in [[]] recursive %}{{ loop([x]) }}{% endfor %}"),
            absl::StatusCode::kResourceExhausted);
}

TEST(JinjaInterpreterTest, ValueDepthLimitStopsDeepNesting) {
  EXPECT_EQ(RenderCode("{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = [ns.l] %}{% endfor %}"),
            absl::StatusCode::kResourceExhausted);
}

TEST(JinjaInterpreterTest, DeeplyNestedSourceIsAnErrorNotACrash) {
  for (const std::string& source : {"{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}",
                                    "{{ " + std::string(100000, '[') + std::string(100000, ']') + " }}",
                                    [] {
                                      std::string s = "{{ 1";
                                      for (int i = 0; i < 200000; ++i) s += " + 1";
                                      return s + " }}";
                                    }(),
                                    [] {
                                      std::string s = "{{ x";
                                      for (int i = 0; i < 200000; ++i) s += "|upper";
                                      return s + " }}";
                                    }(),
                                    [] {
                                      std::string s;
                                      for (int i = 0; i < 20000; ++i) s += "{% if true %}";
                                      return s;
                                    }()}) {
    absl::StatusOr<std::string> out = RenderStatus(source);
    ASSERT_FALSE(out.ok());
    EXPECT_THAT(std::string(out.status().message()), HasSubstr("nested too deeply"));
  }
}

TEST(JinjaInterpreterTest, TemplateIsReusableAndThreadCompatible) {
  absl::StatusOr<Template> parsed = Template::Parse("{% for a in l %}{{ a }}{% endfor %}");
  ASSERT_TRUE(parsed.ok());
  DictData vars;
  vars.Set(Value::String("l"), Value::List({Value::Int(1), Value::Int(2)}));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*parsed->Render(vars), "12");
}

// The rest were also checked against Jinja2 3.1.
TEST(JinjaInterpreterTest, UnknownFiltersFailAtParseTimeOutsideConditionals) {
  EXPECT_EQ(Render("{{ x|nofilter if false }}"), "");
  EXPECT_EQ(Render("{% if false %}{{ x|nofilter }}{% endif %}"), "");
  EXPECT_EQ(Render("{% if false %}{% for a in l %}{{ a|nofilter }}{% endfor %}{% endif %}", kVars),
            "ERROR: line 1: No filter named 'nofilter'.");
  EXPECT_EQ(Render("{% macro m() %}{{ 1 is notest }}{% endmacro %}"), "ERROR: line 1: No test named 'notest'.");
}

TEST(JinjaInterpreterTest, PythonQuirks) {
  EXPECT_EQ(Render("{{ l[] }}|{{ l[] is defined }}", kVars), "|False");     // x[] is x[()]
  EXPECT_EQ(Render("{{ 'a%sb' % nope }}|{{ 'text' % nope }}"), "ab|text");  // Undefined formats as a mapping
  EXPECT_EQ(Render("{{ namespace(nope) }}"), "ERROR: line 1: 'nope' is undefined");
  EXPECT_EQ(Render("{{ d[1:] }}", kVars), "ERROR: line 1: unhashable type: 'slice'");
  EXPECT_EQ(Render("{{ n[1:] }}", kVars), "ERROR: line 1: 'NoneType' object is not subscriptable");
  EXPECT_EQ(Render("{{ 1 is defined(2) }}"), "ERROR: line 1: test takes 1 positional argument but more were given");
  EXPECT_EQ(Render("ok{#"), "ok");  // a comment opener that ends the source is not an error
}

}  // namespace
}  // namespace tandem::jinja
