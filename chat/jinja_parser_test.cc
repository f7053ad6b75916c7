#include "chat/jinja_parser.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem::jinja {
namespace {

using ::testing::HasSubstr;

std::string ParseError(std::string_view source) {
  absl::StatusOr<NodeList> nodes = Parse(source, SyntaxOptions());
  return nodes.ok() ? "ok" : std::string(nodes.status().message());
}

TEST(JinjaParserTest, BuildsStatements) {
  absl::StatusOr<NodeList> nodes =
      Parse("a{{ b }}{% if c %}{% elif d %}{% else %}{% endif %}{% for x in y %}{% endfor %}", SyntaxOptions());
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  ASSERT_EQ(nodes->size(), 4u);
  EXPECT_EQ((*nodes)[0]->kind, NodeKind::kText);
  EXPECT_EQ((*nodes)[1]->kind, NodeKind::kOutput);
  EXPECT_EQ((*nodes)[2]->kind, NodeKind::kIf);
  EXPECT_EQ((*nodes)[2]->branches.size(), 2u);
  EXPECT_EQ((*nodes)[3]->kind, NodeKind::kFor);
}

TEST(JinjaParserTest, Precedence) {
  // `not` binds looser than comparison; filters and tests bind tighter than arithmetic.
  absl::StatusOr<NodeList> nodes = Parse("{{ not a == b }}{{ 1 + x|length }}{{ a + b is defined }}", SyntaxOptions());
  ASSERT_TRUE(nodes.ok());
  const Expr& not_expr = *(*nodes)[0]->expr;
  EXPECT_EQ(not_expr.kind, ExprKind::kUnary);
  EXPECT_EQ(not_expr.children[0]->kind, ExprKind::kCompare);
  const Expr& sum = *(*nodes)[1]->expr;
  EXPECT_EQ(sum.kind, ExprKind::kBinary);
  EXPECT_EQ(sum.children[1]->kind, ExprKind::kFilter);
  EXPECT_EQ((*nodes)[2]->expr->children[1]->kind, ExprKind::kTest);
}

TEST(JinjaParserTest, ErrorsNameTheLine) {
  EXPECT_EQ(ParseError("{% for x in y %}\n{% endif %}"),
            "line 2: Encountered unknown tag 'endif'. Jinja was looking for the following tags: 'endfor' or 'else'. "
            "The innermost block that needs to be closed is 'for'.");
  EXPECT_EQ(ParseError("\n\n{% if x %}"),
            "line 3: Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' or "
            "'endif'. The innermost block that needs to be closed is 'if'.");
  EXPECT_EQ(ParseError("{{ a[1:2, 3] }}"), "line 1: multi-dimensional subscripts are not supported");
  EXPECT_EQ(ParseError("{% macro m(a=1, b) %}{% endmacro %}"), "line 1: non-default argument follows default argument");
  EXPECT_EQ(ParseError("{{ x is defined is defined }}"), "line 1: You cannot chain multiple tests with is");
  EXPECT_EQ(ParseError("{% set a.b.c = 1 %}"), "line 1: expected token 'end of statement block', got '.'");
  EXPECT_EQ(ParseError("{% continue %}"), "line 1: 'continue' outside of a loop");
  EXPECT_EQ(ParseError("{% call foo %}{% endcall %}"), "line 1: expected call");
}

TEST(JinjaParserTest, NestingLimit) {
  std::string deep;
  for (int i = 0; i < kMaxParseNesting; ++i) deep += "(";
  deep = "{{ " + deep + "1" + std::string(kMaxParseNesting, ')') + " }}";
  EXPECT_THAT(ParseError(deep), HasSubstr("template nested too deeply"));
  EXPECT_EQ(ParseError("{{ ((((((((((1)))))))))) }}"), "ok");
}

}  // namespace
}  // namespace tandem::jinja
