// Python semantics of Jinja's operators and of attribute / item access in the immutable sandbox.
//
//   * Arithmetic follows Python: int // and % floor, / is always float, str * int repeats, str %
//     args formats. Integer overflow (Python would grow the int) is an error.
//   * `x.name` tries the Python attribute first (str and dict methods) and then the item; `x[key]`
//     the other way round. A missing attribute or item is undefined, not an error; using an
//     undefined value's attribute or item is an UndefinedError.
//   * Methods that would mutate (list.append, dict.update, ...) are unsafe, as in Jinja's
//     ImmutableSandboxedEnvironment.
//
// Internal to tandem_chat.
#ifndef TANDEM_CHAT_JINJA_OPERATORS_H_
#define TANDEM_CHAT_JINJA_OPERATORS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "chat/jinja_ast.h"
#include "chat/jinja_context.h"
#include "chat/jinja_value.h"

namespace tandem::jinja {

// + - * / // % ** of Python.
absl::StatusOr<Value> BinaryOp(RenderContext& context, Op op, const Value& a, const Value& b);
// -x and +x.
absl::StatusOr<Value> UnaryOp(Op op, const Value& a);
// == != < <= > >= in, not in.
absl::StatusOr<bool> CompareOp(Op op, const Value& a, const Value& b);
// Python `item in container`.
absl::StatusOr<bool> Contains(const Value& container, const Value& item);

// The items a for loop (or list()) sees: list items, dict keys, the characters of a string,
// nothing for undefined. Anything else is "'int' object is not iterable".
absl::StatusOr<std::vector<Value>> Iterate(const Value& value);

absl::StatusOr<Value> GetAttr(const Value& object, const std::string& name);
absl::StatusOr<Value> GetItem(const Value& object, const Value& key);
// object[start:stop:step] of a list, tuple or string; each bound is None when absent. Anything
// else is Python's TypeError (Jinja does not soften slices into undefined).
absl::StatusOr<Value> GetSlice(const Value& object, const Value& start, const Value& stop, const Value& step);

// Python's slice.indices(length): normalized start, stop, step and the number of items.
struct SliceBounds {
  int64_t start;
  int64_t stop;
  int64_t step;
  int64_t count;
};
absl::StatusOr<SliceBounds> NormalizeSlice(int64_t length, const Value& start, const Value& stop, const Value& step);

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_OPERATORS_H_
