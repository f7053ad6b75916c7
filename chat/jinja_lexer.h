// Splits Jinja template source into tokens, with Jinja2's whitespace control: `{%-`/`-%}` (and the
// `{{`/`{#` forms) strip adjacent whitespace, trim_blocks drops the first newline after a block or
// comment tag, lstrip_blocks drops spaces and tabs before a block or comment tag that starts a
// line, `+` turns either off for one tag, and a single trailing newline of the source is dropped.
// Comments produce no tokens; {% raw %} bodies come out as data.
//
// Pure and thread-safe. Internal to tandem_chat.
#ifndef TANDEM_CHAT_JINJA_LEXER_H_
#define TANDEM_CHAT_JINJA_LEXER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tandem::jinja {

// Jinja2 Environment options that change lexing. The defaults are Hugging Face's chat template
// environment (Jinja's own defaults are all false).
struct SyntaxOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

enum class TokenKind {
  kData,           // text: the literal output between tags
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,           // text: identifier (also keywords such as `if`, `in`, `not`)
  kString,         // text: the unescaped value
  kInteger,        // integer
  kFloat,          // number
  kOperator,       // text: "+", "==", "(", "|", ...
  kEof,
};

struct Token {
  TokenKind kind;
  int line;
  std::string text;
  int64_t integer = 0;
  double number = 0.0;
};

// Tokenizes `source` (which must be valid UTF-8). Errors are InvalidArgument with the line:
// "line 3: unexpected char '$'".
absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source, const SyntaxOptions& options);

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_LEXER_H_
