// json.dumps() with Python's semantics, for the `tojson` filter that transformers installs:
// insertion order kept, no HTML escaping, ", " / ": " separators, Python's `indent` layout,
// float repr, NaN/Infinity, and ensure_ascii (default off, as transformers sets it).
//
// Pure and thread-safe. Internal to tandem_chat.
#ifndef TANDEM_CHAT_JINJA_JSON_H_
#define TANDEM_CHAT_JINJA_JSON_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "chat/jinja_value.h"

namespace tandem::jinja {

struct JsonDumpOptions {
  bool ensure_ascii = false;
  // nullopt: everything on one line. Otherwise the text repeated once per nesting level
  // (json.dumps(indent=4) is "    ", indent=0 or a negative number is "").
  std::optional<std::string> indent;
  // nullopt: ", " without indent and "," with it, as Python picks.
  std::optional<std::string> item_separator;
  std::string key_separator = ": ";
  bool sort_keys = false;
};

// Serializes `value`. Undefined, namespaces and callables are Python's TypeError ("Object of type
// Undefined is not JSON serializable"), as InvalidArgument; output past `max_bytes` is
// ResourceExhausted.
absl::StatusOr<std::string> JsonDumps(const Value& value, const JsonDumpOptions& options, size_t max_bytes);

// A JSON string literal of `text` (json.dumps(str)).
std::string JsonQuote(const std::string& text, bool ensure_ascii);

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_JSON_H_
