#include "chat/jinja_parser.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "chat/jinja_expression_parser.h"
#include "common/status_macros.h"

namespace tandem::jinja {
namespace {

std::unique_ptr<Node> MakeNode(NodeKind kind, int line) {
  auto node = std::make_unique<Node>();
  node->kind = kind;
  node->line = line;
  return node;
}

class Parser : public ExpressionParser {
 public:
  explicit Parser(std::vector<Token> tokens) : ExpressionParser(std::move(tokens)) {}

  absl::StatusOr<NodeList> ParseTemplate() {
    TANDEM_ASSIGN_OR_RETURN(NodeList body, Subparse({}));
    if (Cur().kind != TokenKind::kEof) return Fail(absl::StrCat("unexpected '", Describe(Cur()), "'"));
    return body;
  }

 private:
  // ---- Statements ----

  absl::StatusOr<NodeList> Subparse(const std::vector<std::string>& end_tokens) {
    NodeList body;
    while (Cur().kind != TokenKind::kEof) {
      const Token& token = Cur();
      if (token.kind == TokenKind::kData) {
        auto node = MakeNode(NodeKind::kText, token.line);
        node->text = token.text;
        body.push_back(std::move(node));
        Next();
      } else if (token.kind == TokenKind::kVariableBegin) {
        Next();
        auto node = MakeNode(NodeKind::kOutput, Cur().line);
        TANDEM_ASSIGN_OR_RETURN(node->expr, ParseTuple(false, true, {}, false));
        TANDEM_RETURN_IF_ERROR(ExpectKind(TokenKind::kVariableEnd, "end of print statement"));
        body.push_back(std::move(node));
      } else if (token.kind == TokenKind::kBlockBegin) {
        Next();
        if (Cur().kind == TokenKind::kName &&
            std::find(end_tokens.begin(), end_tokens.end(), Cur().text) != end_tokens.end()) {
          return body;
        }
        TANDEM_RETURN_IF_ERROR(ParseStatement(&body, end_tokens));
        TANDEM_RETURN_IF_ERROR(ExpectKind(TokenKind::kBlockEnd, "end of statement block"));
      } else {
        return Fail(absl::StrCat("unexpected '", Describe(token), "'"));
      }
    }
    return body;
  }

  absl::StatusOr<NodeList> ParseStatements(const std::vector<std::string>& end_tokens, bool drop_needle) {
    SkipOp(":");
    TANDEM_RETURN_IF_ERROR(ExpectKind(TokenKind::kBlockEnd, "end of statement block"));
    TANDEM_ASSIGN_OR_RETURN(NodeList body, Subparse(end_tokens));
    if (Cur().kind == TokenKind::kEof) {
      std::vector<std::string> quoted;
      for (const std::string& t : end_tokens) quoted.push_back(absl::StrCat("'", t, "'"));
      return Fail(absl::StrCat(
          "Unexpected end of template. Jinja was looking for the following tags: ", absl::StrJoin(quoted, " or "),
          ". The innermost block that needs to be closed is '", tag_stack_.empty() ? "" : tag_stack_.back(), "'."));
    }
    if (drop_needle) Next();
    return body;
  }

  absl::Status ParseStatement(NodeList* body, const std::vector<std::string>& end_tokens) {
    NestingGuard guard(&depth_);
    if (guard.too_deep()) return TooDeep();
    const Token& token = Cur();
    if (token.kind != TokenKind::kName) return Fail("tag name expected");
    const std::string tag = token.text;
    const int line = token.line;
    tag_stack_.push_back(tag);
    absl::StatusOr<std::unique_ptr<Node>> node = ParseTag(tag, line, body, end_tokens);
    tag_stack_.pop_back();
    if (!node.ok()) return node.status();
    if (*node) body->push_back(*std::move(node));
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseTag(const std::string& tag, int line, NodeList* body,
                                                 const std::vector<std::string>& end_tokens) {
    if (tag == "for") return ParseFor();
    if (tag == "if") return ParseIf();
    if (tag == "set") return ParseSet();
    if (tag == "macro") return ParseMacro();
    if (tag == "call") return ParseCallBlock();
    if (tag == "filter") return ParseFilterBlock();
    if (tag == "with") return ParseWith();
    if (tag == "print") return ParsePrint(body);
    if (tag == "generation") {
      Next();
      auto node = MakeNode(NodeKind::kScope, line);
      TANDEM_ASSIGN_OR_RETURN(node->body, ParseStatements({"endgeneration"}, true));
      return node;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) return Fail(absl::StrCat("'", tag, "' outside of a loop"));
      Next();
      return MakeNode(tag == "break" ? NodeKind::kBreak : NodeKind::kContinue, line);
    }
    if (tag == "include" || tag == "extends" || tag == "import" || tag == "from" || tag == "block" ||
        tag == "autoescape") {
      return Fail(absl::StrCat("the '", tag, "' tag is not supported in chat templates"));
    }
    std::string message = absl::StrCat("Encountered unknown tag '", tag, "'.");
    if (!end_tokens.empty()) {
      std::vector<std::string> quoted;
      for (const std::string& t : end_tokens) quoted.push_back(absl::StrCat("'", t, "'"));
      absl::StrAppend(&message, " Jinja was looking for the following tags: ", absl::StrJoin(quoted, " or "),
                      ". The innermost block that needs to be closed is '",
                      tag_stack_.size() >= 2 ? tag_stack_[tag_stack_.size() - 2] : "", "'.");
    }
    return Fail(message);
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseFor() {
    auto node = MakeNode(NodeKind::kFor, Next().line);
    TANDEM_ASSIGN_OR_RETURN(node->target, ParseAssignTarget(true, false, {"in"}, false));
    TANDEM_RETURN_IF_ERROR(ExpectNameToken("in"));
    TANDEM_ASSIGN_OR_RETURN(node->expr, ParseTuple(false, false, {"recursive"}, false));
    if (SkipName("if")) {
      TANDEM_ASSIGN_OR_RETURN(node->condition, ParseExpression(true));
    }
    node->recursive = SkipName("recursive");
    ++loop_depth_;
    absl::StatusOr<NodeList> body = ParseStatements({"endfor", "else"}, false);
    --loop_depth_;
    if (!body.ok()) return body.status();
    node->body = *std::move(body);
    if (Next().text != "endfor") {
      TANDEM_ASSIGN_OR_RETURN(node->else_body, ParseStatements({"endfor"}, true));
    }
    return node;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseIf() {
    auto node = MakeNode(NodeKind::kIf, Next().line);
    while (true) {
      TANDEM_ASSIGN_OR_RETURN(ExprPtr test, ParseTuple(false, false, {}, false));
      TANDEM_ASSIGN_OR_RETURN(NodeList body, ParseStatements({"elif", "else", "endif"}, false));
      node->branches.emplace_back(std::move(test), std::move(body));
      const std::string token = Next().text;
      if (token == "elif") continue;
      if (token == "else") {
        TANDEM_ASSIGN_OR_RETURN(node->else_body, ParseStatements({"endif"}, true));
      }
      break;
    }
    return node;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseSet() {
    const int line = Next().line;
    TANDEM_ASSIGN_OR_RETURN(ExprPtr target, ParseAssignTarget(true, false, {}, true));
    if (SkipOp("=")) {
      auto node = MakeNode(NodeKind::kSet, line);
      node->target = std::move(target);
      TANDEM_ASSIGN_OR_RETURN(node->expr, ParseTuple(false, true, {}, false));
      return node;
    }
    auto node = MakeNode(NodeKind::kSetBlock, line);
    node->target = std::move(target);
    TANDEM_ASSIGN_OR_RETURN(node->expr, ParseFilter(nullptr, false));
    TANDEM_ASSIGN_OR_RETURN(node->body, ParseStatements({"endset"}, true));
    return node;
  }

  absl::Status ParseSignature(Node* node) {
    TANDEM_RETURN_IF_ERROR(ExpectOp("("));
    while (!IsOp(Cur(), ")")) {
      if (!node->params.empty()) TANDEM_RETURN_IF_ERROR(ExpectOp(","));
      TANDEM_ASSIGN_OR_RETURN(std::string name, ExpectName());
      if (SkipOp("=")) {
        TANDEM_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
        node->defaults.push_back(std::move(value));
      } else if (!node->defaults.empty()) {
        return Fail("non-default argument follows default argument");
      }
      node->params.push_back(std::move(name));
    }
    return ExpectOp(")");
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseMacro() {
    auto node = MakeNode(NodeKind::kMacro, Next().line);
    TANDEM_ASSIGN_OR_RETURN(node->name, ExpectName());
    TANDEM_RETURN_IF_ERROR(ParseSignature(node.get()));
    const int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    absl::StatusOr<NodeList> body = ParseStatements({"endmacro"}, true);
    loop_depth_ = saved_loop_depth;
    if (!body.ok()) return body.status();
    node->body = *std::move(body);
    return node;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseCallBlock() {
    auto node = MakeNode(NodeKind::kCallBlock, Next().line);
    if (IsOp(Cur(), "(")) TANDEM_RETURN_IF_ERROR(ParseSignature(node.get()));
    TANDEM_ASSIGN_OR_RETURN(node->expr, ParseExpression(true));
    if (node->expr->kind != ExprKind::kCall) return FailAt(node->line, "expected call");
    TANDEM_ASSIGN_OR_RETURN(node->body, ParseStatements({"endcall"}, true));
    return node;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseFilterBlock() {
    auto node = MakeNode(NodeKind::kFilterBlock, Next().line);
    TANDEM_ASSIGN_OR_RETURN(node->expr, ParseFilter(nullptr, true));
    TANDEM_ASSIGN_OR_RETURN(node->body, ParseStatements({"endfilter"}, true));
    return node;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseWith() {
    auto node = MakeNode(NodeKind::kWith, Next().line);
    while (Cur().kind != TokenKind::kBlockEnd) {
      if (!node->targets.empty()) TANDEM_RETURN_IF_ERROR(ExpectOp(","));
      TANDEM_ASSIGN_OR_RETURN(ExprPtr target, ParseAssignTarget(true, false, {}, false));
      TANDEM_RETURN_IF_ERROR(ExpectOp("="));
      TANDEM_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
      node->targets.push_back(std::move(target));
      node->values.push_back(std::move(value));
    }
    TANDEM_ASSIGN_OR_RETURN(node->body, ParseStatements({"endwith"}, true));
    return node;
  }

  // {% print a, b %} outputs each expression; returns null after appending the outputs to body.
  absl::StatusOr<std::unique_ptr<Node>> ParsePrint(NodeList* body) {
    Next();
    bool first = true;
    while (Cur().kind != TokenKind::kBlockEnd) {
      if (!first) TANDEM_RETURN_IF_ERROR(ExpectOp(","));
      first = false;
      auto node = MakeNode(NodeKind::kOutput, Cur().line);
      TANDEM_ASSIGN_OR_RETURN(node->expr, ParseExpression(true));
      body->push_back(std::move(node));
    }
    return std::unique_ptr<Node>();
  }

  int loop_depth_ = 0;
  std::vector<std::string> tag_stack_;
};

}  // namespace

absl::StatusOr<NodeList> Parse(std::string_view source, const SyntaxOptions& options) {
  TANDEM_ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(source, options));
  Parser parser(std::move(tokens));
  return parser.ParseTemplate();
}

}  // namespace tandem::jinja
