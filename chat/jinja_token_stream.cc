#include "chat/jinja_token_stream.h"

#include "absl/strings/str_cat.h"

namespace tandem::jinja {

std::string Describe(const Token& token) {
  switch (token.kind) {
    case TokenKind::kData:
      return "template data / text";
    case TokenKind::kVariableBegin:
      return "begin of print statement";
    case TokenKind::kVariableEnd:
      return "end of print statement";
    case TokenKind::kBlockBegin:
      return "begin of statement block";
    case TokenKind::kBlockEnd:
      return "end of statement block";
    case TokenKind::kEof:
      return "end of template";
    case TokenKind::kString:
      return "string";
    default:
      return token.text;
  }
}

ExprPtr MakeExpr(ExprKind kind, int line) {
  auto expr = std::make_unique<Expr>();
  expr->kind = kind;
  expr->line = line;
  return expr;
}

absl::Status TokenStream::Fail(const std::string& message) const { return FailAt(Cur().line, message); }

absl::Status TokenStream::FailAt(int line, const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", message));
}

absl::Status TokenStream::TooDeep() const { return Fail("template nested too deeply"); }

absl::Status TokenStream::ExpectOp(absl::string_view op) {
  if (SkipOp(op)) return absl::OkStatus();
  return Fail(absl::StrCat("expected token '", op, "', got '", Describe(Cur()), "'"));
}

absl::Status TokenStream::ExpectKind(TokenKind kind, absl::string_view what) {
  if (Cur().kind == kind) {
    Next();
    return absl::OkStatus();
  }
  return Fail(absl::StrCat("expected token '", what, "', got '", Describe(Cur()), "'"));
}

absl::StatusOr<std::string> TokenStream::ExpectName() {
  if (Cur().kind != TokenKind::kName) return Fail(absl::StrCat("expected token 'name', got '", Describe(Cur()), "'"));
  return Next().text;
}

absl::Status TokenStream::ExpectNameToken(absl::string_view name) {
  if (SkipName(name)) return absl::OkStatus();
  return Fail(absl::StrCat("expected token '", name, "', got '", Describe(Cur()), "'"));
}

}  // namespace tandem::jinja
