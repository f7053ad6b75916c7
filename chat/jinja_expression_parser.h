// Jinja2's expression grammar, with its precedence from loosest to tightest: inline if/else, or,
// and, not, comparisons (==, !=, <, <=, >, >=, in, not in; chained), + -, ~, * / // %, **, unary
// - +, then primaries with postfix .attr, [index], [slice], (call), and |filter / is test.
// Internal to tandem_chat; the statement parser (jinja_parser.cc) builds on it.
#ifndef TANDEM_CHAT_JINJA_EXPRESSION_PARSER_H_
#define TANDEM_CHAT_JINJA_EXPRESSION_PARSER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "chat/jinja_ast.h"
#include "chat/jinja_token_stream.h"

namespace tandem::jinja {

class ExpressionParser : public TokenStream {
 public:
  explicit ExpressionParser(std::vector<Token> tokens) : TokenStream(std::move(tokens)) {}

 protected:
  // Comma-separated expressions, a tuple when there is a comma (Jinja's parse_tuple). `simplified`
  // allows only primaries (assignment targets); `extra_end_rules` are names that end the tuple.
  absl::StatusOr<ExprPtr> ParseTuple(bool simplified, bool with_condexpr,
                                     const std::vector<std::string>& extra_end_rules, bool explicit_parentheses);
  absl::StatusOr<ExprPtr> ParseExpression(bool with_condexpr);
  absl::StatusOr<ExprPtr> ParsePrimary();
  // A name, a tuple of names, or (with_namespace) ns.attr.
  absl::StatusOr<ExprPtr> ParseAssignTarget(bool with_tuple, bool name_only,
                                            const std::vector<std::string>& extra_end_rules, bool with_namespace);
  // Filters applied to `node` (null in filter blocks and set blocks). Returns `node` itself when
  // no '|' follows and start_inline is false.
  absl::StatusOr<ExprPtr> ParseFilter(ExprPtr node, bool start_inline);

 private:
  bool IsTupleEnd(const std::vector<std::string>& extra_end_rules) const;
  absl::StatusOr<ExprPtr> ParseOr();
  absl::StatusOr<ExprPtr> ParseAnd();
  absl::StatusOr<ExprPtr> ParseNot();
  std::optional<Op> CompareOp();
  absl::StatusOr<ExprPtr> ParseCompare();
  absl::StatusOr<ExprPtr> ParseMath1();
  absl::StatusOr<ExprPtr> ParseConcat();
  absl::StatusOr<ExprPtr> ParseMath2();
  absl::StatusOr<ExprPtr> ParsePow();
  absl::StatusOr<ExprPtr> ParseUnary(bool with_filter);
  absl::StatusOr<ExprPtr> ParseList();
  absl::StatusOr<ExprPtr> ParseDict();
  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr node);
  absl::StatusOr<ExprPtr> ParseFilterExpr(ExprPtr node);
  absl::StatusOr<ExprPtr> ParseSubscript(ExprPtr node);
  absl::Status ParseCallArgs(CallArguments* args);
  absl::StatusOr<ExprPtr> ParseCall(ExprPtr node);
  absl::StatusOr<std::string> ParseDottedName();
  absl::StatusOr<ExprPtr> ParseTest(ExprPtr node);
};

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_EXPRESSION_PARSER_H_
