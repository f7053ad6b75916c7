#include "chat/jinja_expression_parser.h"

#include <algorithm>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tandem::jinja {
namespace {

bool CanAssign(const Expr& target) {
  if (target.kind == ExprKind::kName) return true;
  if (target.kind != ExprKind::kTuple) return false;
  for (const ExprPtr& item : target.children) {
    if (!CanAssign(*item)) return false;
  }
  return true;
}

ExprPtr MakeBinary(Op op, ExprPtr left, ExprPtr right, int line) {
  auto expr = MakeExpr(ExprKind::kBinary, line);
  expr->op = op;
  expr->children.push_back(std::move(left));
  expr->children.push_back(std::move(right));
  return expr;
}

}  // namespace

absl::StatusOr<ExprPtr> ExpressionParser::ParseAssignTarget(bool with_tuple, bool name_only,
                                                            const std::vector<std::string>& extra_end_rules,
                                                            bool with_namespace) {
  if (with_namespace && Cur().kind == TokenKind::kName && IsOp(Peek(), ".")) {
    auto name = MakeExpr(ExprKind::kName, Cur().line);
    name->name = Next().text;
    Next();  // the dot
    auto target = MakeExpr(ExprKind::kGetAttr, name->line);
    TANDEM_ASSIGN_OR_RETURN(target->name, ExpectName());
    target->children.push_back(std::move(name));
    return target;
  }
  ExprPtr target;
  if (name_only) {
    target = MakeExpr(ExprKind::kName, Cur().line);
    TANDEM_ASSIGN_OR_RETURN(target->name, ExpectName());
  } else if (with_tuple) {
    TANDEM_ASSIGN_OR_RETURN(target, ParseTuple(true, true, extra_end_rules, false));
  } else {
    TANDEM_ASSIGN_OR_RETURN(target, ParsePrimary());
  }
  if (!CanAssign(*target)) {
    return FailAt(target->line,
                  absl::StrCat("can't assign to '", target->kind == ExprKind::kLiteral ? "const" : "expression", "'"));
  }
  return target;
}

bool ExpressionParser::IsTupleEnd(const std::vector<std::string>& extra_end_rules) const {
  const Token& token = Cur();
  if (token.kind == TokenKind::kVariableEnd || token.kind == TokenKind::kBlockEnd || IsOp(token, ")")) return true;
  return token.kind == TokenKind::kName &&
         std::find(extra_end_rules.begin(), extra_end_rules.end(), token.text) != extra_end_rules.end();
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseTuple(bool simplified, bool with_condexpr,
                                                     const std::vector<std::string>& extra_end_rules,
                                                     bool explicit_parentheses) {
  const int line = Cur().line;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) TANDEM_RETURN_IF_ERROR(ExpectOp(","));
    if (IsTupleEnd(extra_end_rules)) break;
    ExprPtr item;
    if (simplified) {
      TANDEM_ASSIGN_OR_RETURN(item, ParsePrimary());
    } else {
      TANDEM_ASSIGN_OR_RETURN(item, ParseExpression(with_condexpr));
    }
    items.push_back(std::move(item));
    if (IsOp(Cur(), ",")) {
      is_tuple = true;
    } else {
      break;
    }
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parentheses) return Fail(absl::StrCat("Expected an expression, got '", Describe(Cur()), "'"));
  }
  auto tuple = MakeExpr(ExprKind::kTuple, line);
  tuple->children = std::move(items);
  return tuple;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseExpression(bool with_condexpr) {
  NestingGuard guard(&depth_);
  if (guard.too_deep()) return TooDeep();
  if (!with_condexpr) return ParseOr();
  const int line = Cur().line;
  TANDEM_ASSIGN_OR_RETURN(ExprPtr expr, ParseOr());
  while (SkipName("if")) {
    auto cond = MakeExpr(ExprKind::kCondExpr, line);
    TANDEM_ASSIGN_OR_RETURN(ExprPtr test, ParseOr());
    ExprPtr otherwise;
    if (SkipName("else")) {
      TANDEM_ASSIGN_OR_RETURN(otherwise, ParseExpression(true));
    }
    cond->children.push_back(std::move(expr));
    cond->children.push_back(std::move(test));
    cond->children.push_back(std::move(otherwise));
    expr = std::move(cond);
  }
  return expr;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseOr() {
  ChainGuard chain(&depth_);
  const int line = Cur().line;
  TANDEM_ASSIGN_OR_RETURN(ExprPtr left, ParseAnd());
  while (SkipName("or")) {
    if (!chain.Grow()) return TooDeep();
    TANDEM_ASSIGN_OR_RETURN(ExprPtr right, ParseAnd());
    left = MakeBinary(Op::kOr, std::move(left), std::move(right), line);
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseAnd() {
  ChainGuard chain(&depth_);
  const int line = Cur().line;
  TANDEM_ASSIGN_OR_RETURN(ExprPtr left, ParseNot());
  while (SkipName("and")) {
    if (!chain.Grow()) return TooDeep();
    TANDEM_ASSIGN_OR_RETURN(ExprPtr right, ParseNot());
    left = MakeBinary(Op::kAnd, std::move(left), std::move(right), line);
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseNot() {
  NestingGuard guard(&depth_);
  if (guard.too_deep()) return TooDeep();
  if (IsName(Cur(), "not")) {
    auto expr = MakeExpr(ExprKind::kUnary, Next().line);
    expr->op = Op::kNot;
    TANDEM_ASSIGN_OR_RETURN(ExprPtr operand, ParseNot());
    expr->children.push_back(std::move(operand));
    return expr;
  }
  return ParseCompare();
}

std::optional<Op> ExpressionParser::CompareOp() {
  const Token& token = Cur();
  if (token.kind == TokenKind::kOperator) {
    static const std::pair<absl::string_view, Op> kOps[] = {{"==", Op::kEq}, {"!=", Op::kNe}, {"<", Op::kLt},
                                                            {"<=", Op::kLe}, {">", Op::kGt},  {">=", Op::kGe}};
    for (const auto& [text, op] : kOps) {
      if (token.text == text) {
        Next();
        return op;
      }
    }
    return std::nullopt;
  }
  if (IsName(token, "in")) {
    Next();
    return Op::kIn;
  }
  if (IsName(token, "not") && IsName(Peek(), "in")) {
    Next();
    Next();
    return Op::kNotIn;
  }
  return std::nullopt;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseCompare() {
  const int line = Cur().line;
  TANDEM_ASSIGN_OR_RETURN(ExprPtr first, ParseMath1());
  ExprPtr compare;
  while (std::optional<Op> op = CompareOp()) {
    if (!compare) {
      compare = MakeExpr(ExprKind::kCompare, line);
      compare->children.push_back(std::move(first));
    }
    TANDEM_ASSIGN_OR_RETURN(ExprPtr operand, ParseMath1());
    compare->compare_ops.push_back(*op);
    compare->children.push_back(std::move(operand));
  }
  return compare ? std::move(compare) : std::move(first);
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseMath1() {
  ChainGuard chain(&depth_);
  const int line = Cur().line;
  TANDEM_ASSIGN_OR_RETURN(ExprPtr left, ParseConcat());
  while (IsOp(Cur(), "+") || IsOp(Cur(), "-")) {
    if (!chain.Grow()) return TooDeep();
    const Op op = Next().text == "+" ? Op::kAdd : Op::kSub;
    TANDEM_ASSIGN_OR_RETURN(ExprPtr right, ParseConcat());
    left = MakeBinary(op, std::move(left), std::move(right), line);
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseConcat() {
  const int line = Cur().line;
  TANDEM_ASSIGN_OR_RETURN(ExprPtr first, ParseMath2());
  if (!IsOp(Cur(), "~")) return first;
  auto concat = MakeExpr(ExprKind::kConcat, line);
  concat->children.push_back(std::move(first));
  while (SkipOp("~")) {
    TANDEM_ASSIGN_OR_RETURN(ExprPtr next, ParseMath2());
    concat->children.push_back(std::move(next));
  }
  return concat;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseMath2() {
  ChainGuard chain(&depth_);
  const int line = Cur().line;
  TANDEM_ASSIGN_OR_RETURN(ExprPtr left, ParsePow());
  while (true) {
    if (!chain.Grow()) return TooDeep();
    Op op;
    if (IsOp(Cur(), "*")) {
      op = Op::kMul;
    } else if (IsOp(Cur(), "/")) {
      op = Op::kDiv;
    } else if (IsOp(Cur(), "//")) {
      op = Op::kFloorDiv;
    } else if (IsOp(Cur(), "%")) {
      op = Op::kMod;
    } else {
      break;
    }
    Next();
    TANDEM_ASSIGN_OR_RETURN(ExprPtr right, ParsePow());
    left = MakeBinary(op, std::move(left), std::move(right), line);
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParsePow() {
  ChainGuard chain(&depth_);
  const int line = Cur().line;
  TANDEM_ASSIGN_OR_RETURN(ExprPtr left, ParseUnary(true));
  while (SkipOp("**")) {
    if (!chain.Grow()) return TooDeep();
    TANDEM_ASSIGN_OR_RETURN(ExprPtr right, ParseUnary(true));
    left = MakeBinary(Op::kPow, std::move(left), std::move(right), line);
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseUnary(bool with_filter) {
  NestingGuard guard(&depth_);
  if (guard.too_deep()) return TooDeep();
  ExprPtr node;
  if (IsOp(Cur(), "-") || IsOp(Cur(), "+")) {
    node = MakeExpr(ExprKind::kUnary, Cur().line);
    node->op = Next().text == "-" ? Op::kNeg : Op::kPos;
    TANDEM_ASSIGN_OR_RETURN(ExprPtr operand, ParseUnary(false));
    node->children.push_back(std::move(operand));
  } else {
    TANDEM_ASSIGN_OR_RETURN(node, ParsePrimary());
  }
  TANDEM_ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
  if (with_filter) {
    TANDEM_ASSIGN_OR_RETURN(node, ParseFilterExpr(std::move(node)));
  }
  return node;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParsePrimary() {
  NestingGuard guard(&depth_);
  if (guard.too_deep()) return TooDeep();
  const Token& token = Cur();
  switch (token.kind) {
    case TokenKind::kName: {
      auto expr = MakeExpr(ExprKind::kLiteral, token.line);
      if (token.text == "true" || token.text == "True") {
        expr->literal = Value::Bool(true);
      } else if (token.text == "false" || token.text == "False") {
        expr->literal = Value::Bool(false);
      } else if (token.text == "none" || token.text == "None") {
        expr->literal = Value::None();
      } else {
        expr->kind = ExprKind::kName;
        expr->name = token.text;
      }
      Next();
      return expr;
    }
    case TokenKind::kString: {
      auto expr = MakeExpr(ExprKind::kLiteral, token.line);
      std::string text;
      while (Cur().kind == TokenKind::kString) text += Next().text;
      expr->literal = Value::String(std::move(text));
      return expr;
    }
    case TokenKind::kInteger:
    case TokenKind::kFloat: {
      auto expr = MakeExpr(ExprKind::kLiteral, token.line);
      expr->literal = token.kind == TokenKind::kInteger ? Value::Int(token.integer) : Value::Float(token.number);
      Next();
      return expr;
    }
    case TokenKind::kOperator:
      if (token.text == "(") {
        Next();
        TANDEM_ASSIGN_OR_RETURN(ExprPtr expr, ParseTuple(false, true, {}, true));
        TANDEM_RETURN_IF_ERROR(ExpectOp(")"));
        return expr;
      }
      if (token.text == "[") return ParseList();
      if (token.text == "{") return ParseDict();
      break;
    default:
      break;
  }
  if (token.kind == TokenKind::kEof) return Fail("unexpected end of template");
  return Fail(absl::StrCat("unexpected '", Describe(token), "'"));
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseList() {
  auto list = MakeExpr(ExprKind::kList, Next().line);
  while (!IsOp(Cur(), "]")) {
    if (!list->children.empty()) TANDEM_RETURN_IF_ERROR(ExpectOp(","));
    if (IsOp(Cur(), "]")) break;
    TANDEM_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(true));
    list->children.push_back(std::move(item));
  }
  TANDEM_RETURN_IF_ERROR(ExpectOp("]"));
  return list;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseDict() {
  auto dict = MakeExpr(ExprKind::kDict, Next().line);
  while (!IsOp(Cur(), "}")) {
    if (!dict->children.empty()) TANDEM_RETURN_IF_ERROR(ExpectOp(","));
    if (IsOp(Cur(), "}")) break;
    TANDEM_ASSIGN_OR_RETURN(ExprPtr key, ParseExpression(true));
    TANDEM_RETURN_IF_ERROR(ExpectOp(":"));
    TANDEM_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
    dict->children.push_back(std::move(key));
    dict->children.push_back(std::move(value));
  }
  TANDEM_RETURN_IF_ERROR(ExpectOp("}"));
  return dict;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParsePostfix(ExprPtr node) {
  ChainGuard chain(&depth_);
  while (true) {
    if (!chain.Grow()) return TooDeep();
    if (IsOp(Cur(), ".") || IsOp(Cur(), "[")) {
      TANDEM_ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node)));
    } else if (IsOp(Cur(), "(")) {
      TANDEM_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
    } else {
      return node;
    }
  }
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseFilterExpr(ExprPtr node) {
  ChainGuard chain(&depth_);
  while (true) {
    if (!chain.Grow()) return TooDeep();
    if (IsOp(Cur(), "|")) {
      TANDEM_ASSIGN_OR_RETURN(node, ParseFilter(std::move(node), false));
    } else if (IsName(Cur(), "is")) {
      TANDEM_ASSIGN_OR_RETURN(node, ParseTest(std::move(node)));
    } else if (IsOp(Cur(), "(")) {
      TANDEM_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
    } else {
      return node;
    }
  }
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseSubscript(ExprPtr node) {
  const Token& token = Next();
  const int line = token.line;
  if (token.text == ".") {
    const Token& attribute = Cur();
    if (attribute.kind == TokenKind::kName) {
      auto expr = MakeExpr(ExprKind::kGetAttr, line);
      expr->name = Next().text;
      expr->children.push_back(std::move(node));
      return expr;
    }
    if (attribute.kind != TokenKind::kInteger) return Fail("expected name or number");
    auto key = MakeExpr(ExprKind::kLiteral, attribute.line);
    key->literal = Value::Int(Next().integer);
    auto expr = MakeExpr(ExprKind::kGetItem, line);
    expr->children.push_back(std::move(node));
    expr->children.push_back(std::move(key));
    return expr;
  }
  // '[': an index, a tuple of indexes, or one slice.
  std::vector<ExprPtr> indexes;
  ExprPtr slice;
  while (!IsOp(Cur(), "]")) {
    if (!indexes.empty() || slice) TANDEM_RETURN_IF_ERROR(ExpectOp(","));
    ExprPtr start;
    if (!IsOp(Cur(), ":")) {
      TANDEM_ASSIGN_OR_RETURN(start, ParseExpression(true));
      if (!IsOp(Cur(), ":")) {
        indexes.push_back(std::move(start));
        continue;
      }
    }
    if (slice || !indexes.empty()) return Fail("multi-dimensional subscripts are not supported");
    Next();  // the first ':'
    slice = MakeExpr(ExprKind::kSlice, line);
    slice->children.push_back(nullptr);  // the object, set below
    slice->children.push_back(std::move(start));
    ExprPtr stop;
    ExprPtr step;
    if (!IsOp(Cur(), ":") && !IsOp(Cur(), "]") && !IsOp(Cur(), ",")) {
      TANDEM_ASSIGN_OR_RETURN(stop, ParseExpression(true));
    }
    if (SkipOp(":") && !IsOp(Cur(), "]") && !IsOp(Cur(), ",")) {
      TANDEM_ASSIGN_OR_RETURN(step, ParseExpression(true));
    }
    slice->children.push_back(std::move(stop));
    slice->children.push_back(std::move(step));
  }
  TANDEM_RETURN_IF_ERROR(ExpectOp("]"));
  if (slice) {
    if (!indexes.empty()) return FailAt(line, "multi-dimensional subscripts are not supported");
    slice->children[0] = std::move(node);
    return slice;
  }
  // x[] is x[()] in Jinja: an empty tuple key (which finds nothing).
  auto expr = MakeExpr(ExprKind::kGetItem, line);
  expr->children.push_back(std::move(node));
  if (indexes.size() == 1) {
    expr->children.push_back(std::move(indexes[0]));
  } else {
    auto tuple = MakeExpr(ExprKind::kTuple, line);
    tuple->children = std::move(indexes);
    expr->children.push_back(std::move(tuple));
  }
  return expr;
}

absl::Status ExpressionParser::ParseCallArgs(CallArguments* args) {
  const int line = Cur().line;
  TANDEM_RETURN_IF_ERROR(ExpectOp("("));
  bool require_comma = false;
  const auto invalid = [line] { return FailAt(line, "invalid syntax for function call expression"); };
  while (!IsOp(Cur(), ")")) {
    if (require_comma) {
      TANDEM_RETURN_IF_ERROR(ExpectOp(","));
      if (IsOp(Cur(), ")")) break;
    }
    if (SkipOp("*")) {
      if (args->star_args || args->star_kwargs) return invalid();
      TANDEM_ASSIGN_OR_RETURN(args->star_args, ParseExpression(true));
    } else if (SkipOp("**")) {
      if (args->star_kwargs) return invalid();
      TANDEM_ASSIGN_OR_RETURN(args->star_kwargs, ParseExpression(true));
    } else if (Cur().kind == TokenKind::kName && IsOp(Peek(), "=")) {
      if (args->star_kwargs) return invalid();
      std::string key = Next().text;
      Next();
      TANDEM_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
      args->keywords.emplace_back(std::move(key), std::move(value));
    } else {
      if (args->star_args || args->star_kwargs || !args->keywords.empty()) return invalid();
      TANDEM_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
      args->positional.push_back(std::move(value));
    }
    require_comma = true;
  }
  return ExpectOp(")");
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseCall(ExprPtr node) {
  auto call = MakeExpr(ExprKind::kCall, Cur().line);
  call->children.push_back(std::move(node));
  TANDEM_RETURN_IF_ERROR(ParseCallArgs(&call->args));
  return call;
}

absl::StatusOr<std::string> ExpressionParser::ParseDottedName() {
  TANDEM_ASSIGN_OR_RETURN(std::string name, ExpectName());
  while (SkipOp(".")) {
    TANDEM_ASSIGN_OR_RETURN(std::string part, ExpectName());
    absl::StrAppend(&name, ".", part);
  }
  return name;
}

// Filters applied to `node` (null in filter blocks and set blocks). Returns `node` itself when
// no '|' follows and start_inline is false.
absl::StatusOr<ExprPtr> ExpressionParser::ParseFilter(ExprPtr node, bool start_inline) {
  ChainGuard chain(&depth_);
  while (IsOp(Cur(), "|") || start_inline) {
    if (!chain.Grow()) return TooDeep();
    if (!start_inline) Next();
    start_inline = false;
    auto filter = MakeExpr(ExprKind::kFilter, Cur().line);
    TANDEM_ASSIGN_OR_RETURN(filter->name, ParseDottedName());
    if (IsOp(Cur(), "(")) TANDEM_RETURN_IF_ERROR(ParseCallArgs(&filter->args));
    filter->children.push_back(std::move(node));
    node = std::move(filter);
  }
  return node;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseTest(ExprPtr node) {
  const int line = Next().line;  // `is`
  const bool negated = SkipName("not");
  auto test = MakeExpr(ExprKind::kTest, line);
  TANDEM_ASSIGN_OR_RETURN(test->name, ParseDottedName());
  const Token& token = Cur();
  if (IsOp(token, "(")) {
    TANDEM_RETURN_IF_ERROR(ParseCallArgs(&test->args));
  } else if ((token.kind == TokenKind::kName || token.kind == TokenKind::kString || token.kind == TokenKind::kInteger ||
              token.kind == TokenKind::kFloat || IsOp(token, "[") || IsOp(token, "{")) &&
             !IsName(token, "else") && !IsName(token, "or") && !IsName(token, "and")) {
    if (IsName(token, "is")) return Fail("You cannot chain multiple tests with is");
    TANDEM_ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
    TANDEM_ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
    test->args.positional.push_back(std::move(arg));
  }
  test->children.push_back(std::move(node));
  if (!negated) return test;
  auto negation = MakeExpr(ExprKind::kUnary, line);
  negation->op = Op::kNot;
  negation->children.push_back(std::move(test));
  return negation;
}

}  // namespace tandem::jinja
