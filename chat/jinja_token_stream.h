// The token cursor the template parsers share: lookahead, expectations with Jinja's error
// messages ("line 3: expected token 'end of print statement', got 'x'"), and the nesting counter
// that bounds recursion. Internal to tandem_chat.
#ifndef TANDEM_CHAT_JINJA_TOKEN_STREAM_H_
#define TANDEM_CHAT_JINJA_TOKEN_STREAM_H_

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"

namespace tandem::jinja {

// Deepest nesting of expressions, blocks and left-deep operator chains (a + b + c ...) the parser
// accepts; deeper source is an error rather than a stack overflow when parsing, rendering or
// destroying the tree.
inline constexpr int kMaxParseNesting = 500;

// How Jinja names a token in messages: "end of print statement", "string", or the text.
std::string Describe(const Token& token);

ExprPtr MakeExpr(ExprKind kind, int line);

class TokenStream {
 public:
  explicit TokenStream(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

 protected:
  // Counts nesting on the way down; the destructor gives it back.
  class NestingGuard {
   public:
    explicit NestingGuard(int* depth) : depth_(depth) { ++*depth_; }
    ~NestingGuard() { --*depth_; }
    bool too_deep() const { return *depth_ > kMaxParseNesting; }

   private:
    int* depth_;
  };

  // Left-deep chains (a + b + c, x|f|g, a.b.c) are built by loops but nest the tree as deeply as
  // recursion would; each link counts as one level until the function returns.
  class ChainGuard {
   public:
    explicit ChainGuard(int* depth) : depth_(depth) {}
    ~ChainGuard() { *depth_ -= added_; }
    bool Grow() {
      ++*depth_;
      ++added_;
      return *depth_ <= kMaxParseNesting;
    }

   private:
    int* depth_;
    int added_ = 0;
  };

  const Token& Cur() const { return tokens_[pos_]; }
  const Token& Peek() const { return tokens_[std::min(pos_ + 1, tokens_.size() - 1)]; }
  const Token& Next() {
    const Token& token = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return token;
  }
  static bool IsName(const Token& token, absl::string_view name) {
    return token.kind == TokenKind::kName && token.text == name;
  }
  static bool IsOp(const Token& token, absl::string_view op) {
    return token.kind == TokenKind::kOperator && token.text == op;
  }
  bool SkipName(absl::string_view name) {
    if (!IsName(Cur(), name)) return false;
    Next();
    return true;
  }
  bool SkipOp(absl::string_view op) {
    if (!IsOp(Cur(), op)) return false;
    Next();
    return true;
  }

  // InvalidArgument "line N: message", at the current token or at `line`.
  absl::Status Fail(const std::string& message) const;
  static absl::Status FailAt(int line, const std::string& message);
  absl::Status TooDeep() const;

  // Consume the expected token or fail naming what was found instead.
  absl::Status ExpectOp(absl::string_view op);
  absl::Status ExpectKind(TokenKind kind, absl::string_view what);
  absl::StatusOr<std::string> ExpectName();
  absl::Status ExpectNameToken(absl::string_view name);

  std::vector<Token> tokens_;  // ends with kEof
  size_t pos_ = 0;
  int depth_ = 0;  // current nesting, see kMaxParseNesting
};

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_TOKEN_STREAM_H_
