// Parses template source into a syntax tree with Jinja2's grammar and operator precedence:
// statements if/elif/else, for/else (with an inline `if` filter and `recursive`), set (including
// ns.attr and block sets), macro, call, filter, with, break/continue, generation, raw; expressions
// with conditional expressions, or/and/not, chained comparisons, in/not in, + - ~ * / // % **,
// filters, tests, calls, attribute and item access, slices, and list/tuple/dict literals.
//
// include/extends/import/block are not supported (a chat template is a single string).
// Pure and thread-safe. Internal to tandem_chat.
#ifndef TANDEM_CHAT_JINJA_PARSER_H_
#define TANDEM_CHAT_JINJA_PARSER_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"
#include "chat/jinja_token_stream.h"  // kMaxParseNesting

namespace tandem::jinja {

// Errors are InvalidArgument naming the line: "line 4: Encountered unknown tag 'endfro'.".
absl::StatusOr<NodeList> Parse(std::string_view source, const SyntaxOptions& options);

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_PARSER_H_
