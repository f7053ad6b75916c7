// What the interpreter and the builtins (filters, tests, methods, globals) share while one template
// renders: the sandbox limits and their counters, the clock, and the namespaces created (cleared
// when the render ends so that reference cycles through namespaces cannot leak).
//
// One RenderContext per render; not thread-safe.
#ifndef TANDEM_CHAT_JINJA_CONTEXT_H_
#define TANDEM_CHAT_JINJA_CONTEXT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "chat/jinja_value.h"

namespace tandem::jinja {

// Bounds that keep an untrusted template (or input) from running away. Hitting one is a
// ResourceExhausted error naming the limit.
struct RenderLimits {
  // The rendered text, and any single string or JSON text built on the way.
  size_t max_output_bytes = 64u << 20;
  // Work: one step per loop iteration and per item a filter or method walks through.
  int64_t max_steps = 5'000'000;
  // Nested evaluation: expression and statement nesting plus macro and recursive-loop calls.
  int max_depth = 1000;
  // Nesting of lists, dicts and namespaces in values (input JSON and values the template builds).
  int max_value_depth = 128;
};

// The "current time" for strftime_now(), as a local civil time.
using Clock = std::function<absl::CivilSecond()>;
// The machine's local time now (transformers calls datetime.now()).
absl::CivilSecond LocalNow();

class RenderContext {
 public:
  RenderContext(const RenderLimits& limits, Clock clock);
  ~RenderContext();
  RenderContext(const RenderContext&) = delete;
  RenderContext& operator=(const RenderContext&) = delete;

  const RenderLimits& limits() const { return limits_; }
  absl::CivilSecond Now() const { return clock_ ? clock_() : LocalNow(); }

  // Spends `steps` of the work budget.
  absl::Status Charge(int64_t steps);
  // Fails when a string of `bytes` would exceed max_output_bytes.
  absl::Status CheckSize(size_t bytes) const;
  // Fails when `value` nests deeper than max_value_depth.
  absl::Status CheckValueDepth(const Value& value) const;

  // A fresh namespace owned by this render.
  std::shared_ptr<NamespaceData> NewNamespace();

  // Calls a callable value (builtin function, macro, bound method, recursive loop).
  absl::StatusOr<Value> Call(const Value& callee, CallArgs args);

 private:
  const RenderLimits limits_;
  const Clock clock_;
  int64_t steps_ = 0;
  std::vector<std::shared_ptr<NamespaceData>> namespaces_;
};

// The error raise_exception(message) returns: InvalidArgument carrying exactly `message`, marked
// so that callers can tell a template's own error from a bug in the template.
absl::Status TemplateRaisedError(std::string message);
bool IsTemplateRaisedError(const absl::Status& status);

// Jinja's UndefinedError for using `undefined` where a value is needed.
absl::Status UndefinedError(const Value& undefined);
// Python's TypeError / ValueError etc., as InvalidArgument with the Python message.
absl::Status TypeError(std::string message);

// Argument binding for builtins: Python-style positional-or-keyword parameters.
//   ArgReader reader(args, "truncate", {"length", "killwords", "end"});
//   Value length = reader.Get(0, Value::Int(255));
class ArgReader {
 public:
  ArgReader(const CallArgs& args, std::string function, std::vector<std::string> params);
  // Fails on too many positional arguments, unknown or repeated keywords.
  absl::Status status() const { return status_; }
  // The argument for params[index], or `fallback` when not given.
  Value Get(size_t index, Value fallback = Value()) const;
  bool Has(size_t index) const;

 private:
  std::vector<Value> values_;
  std::vector<bool> given_;
  absl::Status status_;
};

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_CONTEXT_H_
