// Python methods that templates call on values: str (strip, lstrip, rstrip, split, rsplit,
// splitlines, startswith, endswith, upper, lower, title, capitalize, swapcase, replace, find, rfind,
// index, rindex, count, join, format, center, ljust, rjust, zfill, partition, rpartition,
// removeprefix, removesuffix, isdigit, isnumeric, isdecimal, isalpha, isalnum, isspace, isupper,
// islower), dict (items, keys, values, get, copy) and list/tuple (index, count, copy).
//
// Internal to tandem_chat.
#ifndef TANDEM_CHAT_JINJA_METHODS_H_
#define TANDEM_CHAT_JINJA_METHODS_H_

#include <optional>
#include <string>

#include "chat/jinja_value.h"

namespace tandem::jinja {

// `object.name` bound to `object` when its type has that method, else nullopt.
std::optional<Value> FindMethod(const Value& object, const std::string& name);

// True for the methods that would mutate a list or dict (append, pop, update, ...): the immutable
// sandbox refuses them.
bool IsUnsafeMethod(const Value& object, const std::string& name);

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_METHODS_H_
