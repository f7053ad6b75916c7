// Jinja's tests (`x is defined`, `x is divisibleby 3`, ...): boolean, callable, defined,
// divisibleby, eq/equalto/==, escaped, even, false, filter, float, ge/>=, gt/greaterthan/>, in,
// integer, iterable, le/<=, lower, lt/lessthan/<, mapping, ne/!=, none, number, odd, sameas,
// sequence, string, test, true, undefined, upper.
//
// Internal to tandem_chat.
#ifndef TANDEM_CHAT_JINJA_TESTS_H_
#define TANDEM_CHAT_JINJA_TESTS_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "chat/jinja_context.h"
#include "chat/jinja_value.h"

namespace tandem::jinja {

bool HasTest(std::string_view name);

// Runs test `name` on `input`; an unknown name is "No test named 'x'.".
absl::StatusOr<bool> ApplyTest(RenderContext& context, std::string_view name, const Value& input, const CallArgs& args);

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_TESTS_H_
