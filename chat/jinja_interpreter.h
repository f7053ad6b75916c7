// Walks a parsed template and writes its output, with Jinja2's scoping: a for loop body gets a
// fresh scope on each iteration (so {% set %} inside a loop never leaks out, which is why
// namespace() exists), `if` blocks share their enclosing scope, macros see their arguments and
// the template's top-level names, and an undefined name is Jinja's (non-strict) Undefined.
//
// Errors: raise_exception() comes back unchanged (see IsTemplateRaisedError); other errors are
// prefixed with the line of the statement that failed ("line 7: ..."). One Interpreter per render;
// not thread-safe. Internal to tandem_chat.
#ifndef TANDEM_CHAT_JINJA_INTERPRETER_H_
#define TANDEM_CHAT_JINJA_INTERPRETER_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "chat/jinja_ast.h"
#include "chat/jinja_context.h"
#include "chat/jinja_value.h"

namespace tandem::jinja {

class Interpreter {
 public:
  // `variables` (string keys) are the render's top-level names; they shadow the builtin globals.
  // Both must outlive the interpreter.
  Interpreter(RenderContext& context, const DictData& variables);

  absl::StatusOr<std::string> Render(const NodeList& nodes);

 private:
  using Frame = absl::flat_hash_map<std::string, Value>;
  enum class Flow { kNormal, kBreak, kContinue };

  // Counts nesting against RenderLimits::max_depth.
  class DepthGuard {
   public:
    explicit DepthGuard(Interpreter* interpreter);
    ~DepthGuard();
    absl::Status status() const;

   private:
    Interpreter* interpreter_;
  };

  // Statements.
  absl::Status Exec(const NodeList& nodes);
  absl::Status ExecNode(const Node& node);
  absl::Status ExecIf(const Node& node);
  absl::Status ExecFor(const Node& node);
  absl::Status RunLoop(const Node& node, const Value& iterable, int depth);
  absl::Status ExecSet(const Node& node);
  absl::Status ExecSetBlock(const Node& node);
  absl::Status ExecMacro(const Node& node);
  absl::Status ExecCallBlock(const Node& node);
  absl::Status ExecFilterBlock(const Node& node);
  absl::Status ExecWith(const Node& node);
  // Renders `nodes` into a string instead of the output.
  absl::StatusOr<std::string> Capture(const NodeList& nodes);
  absl::Status Write(std::string_view text);

  // Macros and call-block callers: binds arguments to `node.params` in a new frame on top of
  // `scope` and renders `node.body`.
  absl::StatusOr<Value> CallMacro(const Node& node, const std::vector<Frame*>& scope, CallArgs& args);

  // Names.
  Value Lookup(const std::string& name) const;
  absl::Status Assign(const Expr& target, const Value& value, Frame* frame);

  // Expressions.
  absl::StatusOr<Value> Eval(const Expr& expr);
  absl::StatusOr<Value> EvalCollection(const Expr& expr);
  absl::StatusOr<Value> EvalCompare(const Expr& expr);
  absl::StatusOr<CallArgs> EvalArgs(const CallArguments& args);
  // A filter; in filter and set blocks the innermost input is `block_input`.
  absl::StatusOr<Value> EvalFilter(const Expr& expr, const Value* block_input);

  RenderContext& context_;
  const DictData& variables_;
  Frame root_;
  std::vector<Frame*> scope_;  // innermost last; scope_[0] is root_
  std::string* out_ = nullptr;
  Flow flow_ = Flow::kNormal;
  int depth_ = 0;
};

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_INTERPRETER_H_
