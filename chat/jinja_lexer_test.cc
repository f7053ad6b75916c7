#include "chat/jinja_lexer.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem::jinja {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A compact rendering of the token stream: data in [], other tokens by kind or text.
std::string Describe(std::string_view source, const SyntaxOptions& options = SyntaxOptions()) {
  absl::StatusOr<std::vector<Token>> tokens = Tokenize(source, options);
  if (!tokens.ok()) return std::string(tokens.status().message());
  std::string out;
  for (const Token& t : *tokens) {
    if (!out.empty()) out += " ";
    switch (t.kind) {
      case TokenKind::kData:
        out += "[" + t.text + "]";
        break;
      case TokenKind::kVariableBegin:
        out += "{{";
        break;
      case TokenKind::kVariableEnd:
        out += "}}";
        break;
      case TokenKind::kBlockBegin:
        out += "{%";
        break;
      case TokenKind::kBlockEnd:
        out += "%}";
        break;
      case TokenKind::kString:
        out += "'" + t.text + "'";
        break;
      case TokenKind::kInteger:
        out += "i" + std::to_string(t.integer);
        break;
      case TokenKind::kFloat:
        out += "f" + t.text;
        break;
      case TokenKind::kEof:
        out += "EOF";
        break;
      default:
        out += t.text;
    }
  }
  return out;
}

SyntaxOptions JinjaDefaults() {
  SyntaxOptions options;
  options.trim_blocks = false;
  options.lstrip_blocks = false;
  return options;
}

TEST(JinjaLexerTest, Tokens) {
  EXPECT_EQ(Describe("a{{ x.y[0] | f(1, k='v') }}b"), "[a] {{ x . y [ i0 ] | f ( i1 , k = 'v' ) }} [b] EOF");
  EXPECT_EQ(Describe("{{ 1.5 2e3 0x1f 0b11 0o7 1_000 a.0.1 }}"), "{{ f1.5 f2e3 i31 i3 i7 i1000 a . i0 . i1 }} EOF");
  EXPECT_EQ(Describe("{% if a == b and c != d <= e // f ** g %}"), "{% if a == b and c != d <= e // f ** g %} EOF");
}

TEST(JinjaLexerTest, StringEscapes) {
  absl::StatusOr<std::vector<Token>> tokens =
      Tokenize(R"({{ 'a\n\t\'\"\\\x41\u00e9\U0001F600\101\d' }})", SyntaxOptions());
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ((*tokens)[1].text, "a\n\t'\"\\Aé😀A\\d");
  EXPECT_THAT(Describe(R"({{ '\x4' }})"), HasSubstr("truncated \\xXX escape"));
  // A backslash before a non-ASCII character keeps Python's escape of it as text (Jinja quirk).
  tokens = Tokenize("{{ '\\é\\日' }}", SyntaxOptions());
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ((*tokens)[1].text, "\\xe9\\u65e5");
}

TEST(JinjaLexerTest, BracesInsideExpressionsDoNotEndTheTag) {
  EXPECT_EQ(Describe("{{ {'a': {'b': 1}} }}"), "{{ { 'a' : { 'b' : i1 } } }} EOF");
}

TEST(JinjaLexerTest, TrimBlocksDropsOneNewlineAfterBlocksAndComments) {
  EXPECT_EQ(Describe("{% if x %}\n\nA{# c #}\nB{{ y }}\nC"), "{% if x %} [\nA] [B] {{ y }} [\nC] EOF");
  EXPECT_EQ(Describe("{% if x %}\nA", JinjaDefaults()), "{% if x %} [\nA] EOF");
}

TEST(JinjaLexerTest, LstripBlocksStripsIndentBeforeBlockTagsOnly) {
  EXPECT_EQ(Describe("a\n  \t{% if x %}\n  {{ y }}"), "[a\n] {% if x %} [  ] {{ y }} EOF");
  EXPECT_EQ(Describe("a  {% if x %}"), "[a  ] {% if x %} EOF");  // not at the start of a line
  EXPECT_EQ(Describe("  {%+ if x %}"), "[  ] {% if x %} EOF");   // + keeps the indent
}

TEST(JinjaLexerTest, MinusStripsAllAdjacentWhitespace) {
  EXPECT_EQ(Describe("a \n {%- if x -%} \n b"), "[a] {% if x %} [b] EOF");
  EXPECT_EQ(Describe("a \n {{- y -}} \n b"), "[a] {{ y }} [b] EOF");
  EXPECT_EQ(Describe("a \u00a0{#- c -#}\u3000b"), "[a] [b] EOF");  // Python whitespace, not just ASCII
}

TEST(JinjaLexerTest, NewlinesAreNormalizedAndOneTrailingNewlineDropped) {
  EXPECT_EQ(Describe("a\r\nb\rc\n"), "[a\nb\nc] EOF");
  EXPECT_EQ(Describe("a\n\n"), "[a\n] EOF");
  SyntaxOptions keep;
  keep.keep_trailing_newline = true;
  EXPECT_EQ(Describe("a\n", keep), "[a\n] EOF");
}

TEST(JinjaLexerTest, RawBlocks) {
  EXPECT_EQ(Describe("{% raw %}{{ x }}{% endraw %}"), "[{{ x }}] EOF");
  EXPECT_EQ(Describe("{%- raw -%} \n{{ x }}\n {%- endraw %}"), "[{{ x }}] EOF");
}

TEST(JinjaLexerTest, Errors) {
  EXPECT_EQ(Describe("{{ 1 }}\n{{ $ }}"), "line 2: unexpected char '$' at 11");
  EXPECT_EQ(Describe("{# never closed"), "line 1: Missing end of comment tag");
  EXPECT_EQ(Describe("{{ (1 }}"), "line 1: unexpected '}', expected ')'");
  EXPECT_EQ(Describe("{{ 1"), "line 1: unexpected end of template, expected 'end of print statement'");
  EXPECT_EQ(Describe("ok\xFF"), "template is not valid UTF-8 at byte 2");
  EXPECT_THAT(Describe("{{ 99999999999999999999 }}"), HasSubstr("is too large"));
}

}  // namespace
}  // namespace tandem::jinja
