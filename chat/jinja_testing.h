// Test helpers for the jinja_* tests: render a template source with JSON variables in the chat
// template environment (trim_blocks, lstrip_blocks, strftime_now frozen at 2025-03-07 12:34:56).
// Header-only; for tests.
#ifndef TANDEM_CHAT_JINJA_TESTING_H_
#define TANDEM_CHAT_JINJA_TESTING_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "chat/jinja_template.h"
#include "nlohmann/json.hpp"

namespace tandem::jinja::testing {

inline absl::CivilSecond FrozenNow() { return absl::CivilSecond(2025, 3, 7, 12, 34, 56); }

// Renders `source` with the top-level variables of the JSON object `variables`.
inline absl::StatusOr<std::string> RenderStatus(std::string_view source, std::string_view variables = "{}",
                                                const SyntaxOptions& syntax = SyntaxOptions(),
                                                const RenderLimits& limits = RenderLimits()) {
  absl::StatusOr<Template> parsed = Template::Parse(source, syntax);
  if (!parsed.ok()) return parsed.status();
  DictData vars;
  const nlohmann::ordered_json json = nlohmann::ordered_json::parse(variables);
  for (const auto& [name, value] : json.items()) {
    absl::StatusOr<Value> converted = Value::FromJson(value, 64);
    if (!converted.ok()) return converted.status();
    vars.Set(Value::String(name), *converted);
  }
  RenderOptions options;
  options.limits = limits;
  options.clock = FrozenNow;
  return parsed->Render(vars, options);
}

// The output, or "ERROR: <message>" so that expectations read as one string.
inline std::string Render(std::string_view source, std::string_view variables = "{}",
                          const SyntaxOptions& syntax = SyntaxOptions()) {
  absl::StatusOr<std::string> out = RenderStatus(source, variables, syntax);
  return out.ok() ? *out : absl::StrCat("ERROR: ", out.status().message());
}

}  // namespace tandem::jinja::testing

#endif  // TANDEM_CHAT_JINJA_TESTING_H_
