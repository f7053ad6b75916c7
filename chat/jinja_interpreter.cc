#include "chat/jinja_interpreter.h"

#include <memory>
#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "chat/jinja_filters.h"
#include "chat/jinja_globals.h"
#include "chat/jinja_operators.h"
#include "chat/jinja_tests.h"
#include "common/status_macros.h"

namespace tandem::jinja {
namespace {

constexpr char kLocatedPayload[] = "tandem.chat/located";

// Prefixes the statement's line to an error, once (the innermost statement wins). The
// template's own raise_exception() message is never changed.
absl::Status Locate(absl::Status status, int line) {
  if (status.ok() || IsTemplateRaisedError(status) || status.GetPayload(kLocatedPayload).has_value()) return status;
  absl::Status located(status.code(), absl::StrCat("line ", line, ": ", status.message()));
  located.SetPayload(kLocatedPayload, absl::Cord("1"));
  return located;
}

absl::Status Unpack(size_t expected, size_t got) {
  if (got > expected)
    return absl::InvalidArgumentError(absl::StrCat("too many values to unpack (expected ", expected, ")"));
  return absl::InvalidArgumentError(
      absl::StrCat("not enough values to unpack (expected ", expected, ", got ", got, ")"));
}

}  // namespace

Interpreter::DepthGuard::DepthGuard(Interpreter* interpreter) : interpreter_(interpreter) { ++interpreter_->depth_; }
Interpreter::DepthGuard::~DepthGuard() { --interpreter_->depth_; }
absl::Status Interpreter::DepthGuard::status() const {
  if (interpreter_->depth_ > interpreter_->context_.limits().max_depth) {
    return absl::ResourceExhaustedError(absl::StrCat("template nesting or recursion deeper than the limit of ",
                                                     interpreter_->context_.limits().max_depth));
  }
  return absl::OkStatus();
}

Interpreter::Interpreter(RenderContext& context, const DictData& variables)
    : context_(context), variables_(variables) {}

absl::StatusOr<std::string> Interpreter::Render(const NodeList& nodes) {
  std::string out;
  out_ = &out;
  scope_ = {&root_};
  flow_ = Flow::kNormal;
  TANDEM_RETURN_IF_ERROR(Exec(nodes));
  return out;
}

// ---- Statements ----

absl::Status Interpreter::Exec(const NodeList& nodes) {
  for (const auto& node : nodes) {
    TANDEM_RETURN_IF_ERROR(ExecNode(*node));
    if (flow_ != Flow::kNormal) return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::Status Interpreter::ExecNode(const Node& node) {
  DepthGuard guard(this);
  TANDEM_RETURN_IF_ERROR(guard.status());
  absl::Status status;
  switch (node.kind) {
    case NodeKind::kText:
      return Write(node.text);
    case NodeKind::kOutput: {
      absl::StatusOr<Value> value = Eval(*node.expr);
      status = value.ok() ? Write(ToStr(*value)) : value.status();
      break;
    }
    case NodeKind::kIf:
      status = ExecIf(node);
      break;
    case NodeKind::kFor:
      status = ExecFor(node);
      break;
    case NodeKind::kSet:
      status = ExecSet(node);
      break;
    case NodeKind::kSetBlock:
      status = ExecSetBlock(node);
      break;
    case NodeKind::kMacro:
      status = ExecMacro(node);
      break;
    case NodeKind::kCallBlock:
      status = ExecCallBlock(node);
      break;
    case NodeKind::kFilterBlock:
      status = ExecFilterBlock(node);
      break;
    case NodeKind::kWith:
      status = ExecWith(node);
      break;
    case NodeKind::kBreak:
      flow_ = Flow::kBreak;
      break;
    case NodeKind::kContinue:
      flow_ = Flow::kContinue;
      break;
    case NodeKind::kScope:
      status = Exec(node.body);
      break;
  }
  return Locate(std::move(status), node.line);
}

absl::Status Interpreter::Write(std::string_view text) {
  TANDEM_RETURN_IF_ERROR(context_.CheckSize(out_->size() + text.size()));
  out_->append(text);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Interpreter::Capture(const NodeList& nodes) {
  std::string captured;
  std::string* saved = out_;
  out_ = &captured;
  absl::Status status = Exec(nodes);
  out_ = saved;
  TANDEM_RETURN_IF_ERROR(status);
  return captured;
}

absl::Status Interpreter::ExecIf(const Node& node) {
  for (const auto& [test, body] : node.branches) {
    TANDEM_ASSIGN_OR_RETURN(Value condition, Eval(*test));
    if (condition.Truthy()) return Exec(body);
  }
  return Exec(node.else_body);
}

absl::Status Interpreter::ExecFor(const Node& node) {
  TANDEM_ASSIGN_OR_RETURN(Value iterable, Eval(*node.expr));
  return RunLoop(node, iterable, 1);
}

absl::Status Interpreter::RunLoop(const Node& node, const Value& iterable, int depth) {
  TANDEM_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(iterable));
  if (node.condition) {
    // The inline `if` filters before the loop starts, so loop.length and loop.last count only
    // the items that pass.
    std::vector<Value> kept;
    for (const Value& item : items) {
      TANDEM_RETURN_IF_ERROR(context_.Charge(1));
      Frame frame;
      TANDEM_RETURN_IF_ERROR(Assign(*node.target, item, &frame));
      scope_.push_back(&frame);
      absl::StatusOr<Value> keep = Eval(*node.condition);
      scope_.pop_back();
      if (!keep.ok()) return keep.status();
      if (keep->Truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) return Exec(node.else_body);

  auto loop = context_.NewNamespace();
  loop->is_loop = true;
  const int64_t length = static_cast<int64_t>(items.size());
  DictData& attributes = loop->attributes;
  attributes.Set(Value::String("length"), Value::Int(length));
  attributes.Set(Value::String("depth"), Value::Int(depth));
  attributes.Set(Value::String("depth0"), Value::Int(depth - 1));
  std::weak_ptr<NamespaceData> weak_loop = loop;
  attributes.Set(Value::String("cycle"),
                 Value::Function("cycle", [weak_loop](RenderContext&, CallArgs& args) -> absl::StatusOr<Value> {
                   if (args.positional.empty()) return TypeError("no items for cycling given");
                   auto loop = weak_loop.lock();
                   const Value* index0 = loop ? loop->attributes.Find("index0") : nullptr;
                   const int64_t i = index0 ? index0->as_int() : 0;
                   return args.positional[static_cast<size_t>(i) % args.positional.size()];
                 }));
  auto last_changed = std::make_shared<std::optional<std::vector<Value>>>();
  attributes.Set(Value::String("changed"),
                 Value::Function("changed", [last_changed](RenderContext&, CallArgs& args) -> absl::StatusOr<Value> {
                   if (*last_changed && last_changed->value().size() == args.positional.size()) {
                     bool same = true;
                     for (size_t i = 0; i < args.positional.size() && same; ++i) {
                       same = Equals((**last_changed)[i], args.positional[i]);
                     }
                     if (same) return Value::Bool(false);
                   }
                   *last_changed = args.positional;
                   return Value::Bool(true);
                 }));
  if (node.recursive) {
    loop->call = [this, &node, depth](RenderContext&, CallArgs& args) -> absl::StatusOr<Value> {
      if (args.positional.size() != 1 || !args.keywords.empty()) return TypeError("loop() takes exactly one argument");
      DepthGuard guard(this);
      TANDEM_RETURN_IF_ERROR(guard.status());
      std::string captured;
      std::string* saved = out_;
      out_ = &captured;
      absl::Status status = RunLoop(node, args.positional[0], depth + 1);
      out_ = saved;
      TANDEM_RETURN_IF_ERROR(status);
      return Value::String(std::move(captured));
    };
  }
  const Value loop_value = Value::Namespace(loop);

  for (int64_t i = 0; i < length; ++i) {
    TANDEM_RETURN_IF_ERROR(context_.Charge(1));
    attributes.Set(Value::String("index0"), Value::Int(i));
    attributes.Set(Value::String("index"), Value::Int(i + 1));
    attributes.Set(Value::String("revindex0"), Value::Int(length - i - 1));
    attributes.Set(Value::String("revindex"), Value::Int(length - i));
    attributes.Set(Value::String("first"), Value::Bool(i == 0));
    attributes.Set(Value::String("last"), Value::Bool(i == length - 1));
    attributes.Set(Value::String("previtem"),
                   i > 0 ? items[static_cast<size_t>(i - 1)] : Value::Undefined("there is no previous item"));
    attributes.Set(Value::String("nextitem"),
                   i + 1 < length ? items[static_cast<size_t>(i + 1)] : Value::Undefined("there is no next item"));
    Frame frame;
    frame["loop"] = loop_value;
    TANDEM_RETURN_IF_ERROR(Assign(*node.target, items[static_cast<size_t>(i)], &frame));
    scope_.push_back(&frame);
    absl::Status status = Exec(node.body);
    scope_.pop_back();
    TANDEM_RETURN_IF_ERROR(status);
    if (flow_ == Flow::kBreak) {
      flow_ = Flow::kNormal;
      break;
    }
    flow_ = Flow::kNormal;
  }
  return absl::OkStatus();
}

absl::Status Interpreter::ExecSet(const Node& node) {
  TANDEM_ASSIGN_OR_RETURN(Value value, Eval(*node.expr));
  TANDEM_RETURN_IF_ERROR(context_.CheckValueDepth(value));
  if (node.target->kind == ExprKind::kGetAttr) {
    const Value ns = Lookup(node.target->children[0]->name);
    if (!ns.is_namespace() || ns.ns().is_loop) {
      return absl::InvalidArgumentError("cannot assign attribute on non-namespace object");
    }
    ns.ns().attributes.Set(Value::String(node.target->name), std::move(value));
    return context_.CheckValueDepth(ns);
  }
  return Assign(*node.target, value, scope_.back());
}

absl::Status Interpreter::ExecSetBlock(const Node& node) {
  TANDEM_ASSIGN_OR_RETURN(std::string captured, Capture(node.body));
  Value value = Value::String(std::move(captured));
  if (node.expr) {
    TANDEM_ASSIGN_OR_RETURN(value, EvalFilter(*node.expr, &value));
  }
  if (node.target->kind == ExprKind::kGetAttr) {
    const Value ns = Lookup(node.target->children[0]->name);
    if (!ns.is_namespace() || ns.ns().is_loop) {
      return absl::InvalidArgumentError("cannot assign attribute on non-namespace object");
    }
    ns.ns().attributes.Set(Value::String(node.target->name), std::move(value));
    return absl::OkStatus();
  }
  return Assign(*node.target, value, scope_.back());
}

absl::Status Interpreter::ExecMacro(const Node& node) {
  const Node* macro = &node;
  (*scope_.back())[node.name] =
      Value::Function(node.name, [this, macro](RenderContext&, CallArgs& args) -> absl::StatusOr<Value> {
        // A macro sees its arguments and the template's top-level names (not the scope it was
        // defined in, which may be gone by the time it is called).
        return CallMacro(*macro, {&root_}, args);
      });
  return absl::OkStatus();
}

absl::StatusOr<Value> Interpreter::CallMacro(const Node& node, const std::vector<Frame*>& scope, CallArgs& args) {
  DepthGuard guard(this);
  TANDEM_RETURN_IF_ERROR(guard.status());
  Frame frame;
  std::vector<bool> bound(node.params.size(), false);
  std::vector<Value> varargs;
  DictData kwargs;
  for (size_t i = 0; i < args.positional.size(); ++i) {
    if (i < node.params.size()) {
      frame[node.params[i]] = args.positional[i];
      bound[i] = true;
    } else {
      varargs.push_back(args.positional[i]);
    }
  }
  for (auto& [name, value] : args.keywords) {
    size_t index = 0;
    while (index < node.params.size() && node.params[index] != name) ++index;
    if (index < node.params.size()) {
      if (bound[index]) {
        return TypeError(absl::StrCat("macro '", node.name, "' got multiple values for argument '", name, "'"));
      }
      frame[name] = value;
      bound[index] = true;
    } else if (name == "caller") {
      frame["caller"] = value;
    } else {
      kwargs.Set(Value::String(name), value);
    }
  }
  frame["varargs"] = Value::Tuple(std::move(varargs));
  frame["kwargs"] = Value::Dict(std::move(kwargs));

  std::vector<Frame*> saved_scope = std::move(scope_);
  scope_ = scope;
  scope_.push_back(&frame);
  absl::Status status;
  // Defaults are evaluated at call time, in the macro's scope (they may use earlier parameters).
  const size_t first_default = node.params.size() - node.defaults.size();
  for (size_t i = 0; i < node.params.size() && status.ok(); ++i) {
    if (bound[i]) continue;
    if (i >= first_default) {
      absl::StatusOr<Value> value = Eval(*node.defaults[i - first_default]);
      if (value.ok()) {
        frame[node.params[i]] = *std::move(value);
      } else {
        status = value.status();
      }
    } else {
      frame[node.params[i]] = Value::Undefined(absl::StrCat("parameter '", node.params[i], "' was not provided"));
    }
  }
  absl::StatusOr<std::string> output = status.ok() ? Capture(node.body) : absl::StatusOr<std::string>(status);
  scope_ = std::move(saved_scope);
  flow_ = Flow::kNormal;
  if (!output.ok()) return output.status();
  return Value::String(*std::move(output));
}

absl::Status Interpreter::ExecCallBlock(const Node& node) {
  const Expr& call = *node.expr;
  TANDEM_ASSIGN_OR_RETURN(Value callee, Eval(*call.children[0]));
  TANDEM_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(call.args));
  // The caller body runs in the scope of the call block, which outlives this call.
  const std::vector<Frame*> scope = scope_;
  const Node* caller_node = &node;
  args.keywords.emplace_back(
      "caller", Value::Function("caller", [this, caller_node, scope](RenderContext&, CallArgs& caller_args) {
        return CallMacro(*caller_node, scope, caller_args);
      }));
  TANDEM_ASSIGN_OR_RETURN(Value result, context_.Call(callee, std::move(args)));
  return Write(ToStr(result));
}

absl::Status Interpreter::ExecFilterBlock(const Node& node) {
  TANDEM_ASSIGN_OR_RETURN(std::string captured, Capture(node.body));
  const Value input = Value::String(std::move(captured));
  TANDEM_ASSIGN_OR_RETURN(Value result, EvalFilter(*node.expr, &input));
  return Write(ToStr(result));
}

absl::Status Interpreter::ExecWith(const Node& node) {
  Frame frame;
  for (size_t i = 0; i < node.targets.size(); ++i) {
    TANDEM_ASSIGN_OR_RETURN(Value value, Eval(*node.values[i]));
    TANDEM_RETURN_IF_ERROR(context_.CheckValueDepth(value));
    TANDEM_RETURN_IF_ERROR(Assign(*node.targets[i], value, &frame));
  }
  scope_.push_back(&frame);
  absl::Status status = Exec(node.body);
  scope_.pop_back();
  return status;
}

// ---- Names ----

Value Interpreter::Lookup(const std::string& name) const {
  for (auto it = scope_.rbegin(); it != scope_.rend(); ++it) {
    auto found = (*it)->find(name);
    if (found != (*it)->end()) return found->second;
  }
  if (const Value* value = variables_.Find(name)) return *value;
  if (const Value* value = BuiltinGlobals().Find(name)) return *value;
  return Value::Undefined(absl::StrCat("'", name, "' is undefined"));
}

absl::Status Interpreter::Assign(const Expr& target, const Value& value, Frame* frame) {
  if (target.kind == ExprKind::kName) {
    (*frame)[target.name] = value;
    return absl::OkStatus();
  }
  TANDEM_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(value));
  if (items.size() != target.children.size()) return Unpack(target.children.size(), items.size());
  for (size_t i = 0; i < items.size(); ++i) TANDEM_RETURN_IF_ERROR(Assign(*target.children[i], items[i], frame));
  return absl::OkStatus();
}

// ---- Expressions ----

absl::StatusOr<Value> Interpreter::Eval(const Expr& expr) {
  DepthGuard guard(this);
  TANDEM_RETURN_IF_ERROR(guard.status());
  switch (expr.kind) {
    case ExprKind::kLiteral:
      return expr.literal;
    case ExprKind::kName:
      return Lookup(expr.name);
    case ExprKind::kList:
    case ExprKind::kTuple:
    case ExprKind::kDict:
      return EvalCollection(expr);
    case ExprKind::kGetAttr: {
      TANDEM_ASSIGN_OR_RETURN(Value object, Eval(*expr.children[0]));
      return GetAttr(object, expr.name);
    }
    case ExprKind::kGetItem: {
      TANDEM_ASSIGN_OR_RETURN(Value object, Eval(*expr.children[0]));
      TANDEM_ASSIGN_OR_RETURN(Value key, Eval(*expr.children[1]));
      return GetItem(object, key);
    }
    case ExprKind::kSlice: {
      TANDEM_ASSIGN_OR_RETURN(Value object, Eval(*expr.children[0]));
      Value bounds[3] = {Value::None(), Value::None(), Value::None()};
      for (int i = 0; i < 3; ++i) {
        if (expr.children[1 + i]) {
          TANDEM_ASSIGN_OR_RETURN(bounds[i], Eval(*expr.children[1 + i]));
        }
      }
      return GetSlice(object, bounds[0], bounds[1], bounds[2]);
    }
    case ExprKind::kCall: {
      TANDEM_ASSIGN_OR_RETURN(Value callee, Eval(*expr.children[0]));
      TANDEM_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(expr.args));
      return context_.Call(callee, std::move(args));
    }
    case ExprKind::kFilter:
      return EvalFilter(expr, nullptr);
    case ExprKind::kTest: {
      TANDEM_ASSIGN_OR_RETURN(Value input, Eval(*expr.children[0]));
      TANDEM_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(expr.args));
      TANDEM_ASSIGN_OR_RETURN(bool result, ApplyTest(context_, expr.name, input, args));
      return Value::Bool(result);
    }
    case ExprKind::kUnary: {
      TANDEM_ASSIGN_OR_RETURN(Value operand, Eval(*expr.children[0]));
      if (expr.op == Op::kNot) return Value::Bool(!operand.Truthy());
      return UnaryOp(expr.op, operand);
    }
    case ExprKind::kBinary: {
      TANDEM_ASSIGN_OR_RETURN(Value left, Eval(*expr.children[0]));
      if (expr.op == Op::kAnd) return left.Truthy() ? Eval(*expr.children[1]) : left;
      if (expr.op == Op::kOr) return left.Truthy() ? left : Eval(*expr.children[1]);
      TANDEM_ASSIGN_OR_RETURN(Value right, Eval(*expr.children[1]));
      return BinaryOp(context_, expr.op, left, right);
    }
    case ExprKind::kCompare:
      return EvalCompare(expr);
    case ExprKind::kConcat: {
      std::string text;
      for (const ExprPtr& child : expr.children) {
        TANDEM_ASSIGN_OR_RETURN(Value part, Eval(*child));
        text += ToStr(part);
        TANDEM_RETURN_IF_ERROR(context_.CheckSize(text.size()));
      }
      return Value::String(std::move(text));
    }
    case ExprKind::kCondExpr: {
      TANDEM_ASSIGN_OR_RETURN(Value condition, Eval(*expr.children[1]));
      if (condition.Truthy()) return Eval(*expr.children[0]);
      if (expr.children[2]) return Eval(*expr.children[2]);
      return Value::Undefined(absl::StrCat("the inline if-expression on line ", expr.line,
                                           " evaluated to false and no else section was defined."));
    }
  }
  return absl::InternalError("unknown expression kind");
}

absl::StatusOr<Value> Interpreter::EvalCollection(const Expr& expr) {
  Value result;
  if (expr.kind == ExprKind::kDict) {
    DictData dict;
    for (size_t i = 0; i + 1 < expr.children.size(); i += 2) {
      TANDEM_ASSIGN_OR_RETURN(Value key, Eval(*expr.children[i]));
      TANDEM_ASSIGN_OR_RETURN(Value value, Eval(*expr.children[i + 1]));
      if (key.is_list() && !key.is_tuple()) return TypeError("unhashable type: 'list'");
      if (key.is_dict()) return TypeError("unhashable type: 'dict'");
      dict.Set(std::move(key), std::move(value));
    }
    result = Value::Dict(std::move(dict));
  } else {
    std::vector<Value> items;
    items.reserve(expr.children.size());
    for (const ExprPtr& child : expr.children) {
      TANDEM_ASSIGN_OR_RETURN(Value item, Eval(*child));
      items.push_back(std::move(item));
    }
    result = expr.kind == ExprKind::kTuple ? Value::Tuple(std::move(items)) : Value::List(std::move(items));
  }
  TANDEM_RETURN_IF_ERROR(context_.CheckValueDepth(result));
  return result;
}

absl::StatusOr<Value> Interpreter::EvalCompare(const Expr& expr) {
  TANDEM_ASSIGN_OR_RETURN(Value left, Eval(*expr.children[0]));
  for (size_t i = 0; i < expr.compare_ops.size(); ++i) {
    TANDEM_ASSIGN_OR_RETURN(Value right, Eval(*expr.children[i + 1]));
    TANDEM_ASSIGN_OR_RETURN(bool holds, CompareOp(expr.compare_ops[i], left, right));
    if (!holds) return Value::Bool(false);
    left = std::move(right);
  }
  return Value::Bool(true);
}

absl::StatusOr<CallArgs> Interpreter::EvalArgs(const CallArguments& args) {
  CallArgs out;
  for (const ExprPtr& arg : args.positional) {
    TANDEM_ASSIGN_OR_RETURN(Value value, Eval(*arg));
    out.positional.push_back(std::move(value));
  }
  for (const auto& [name, arg] : args.keywords) {
    TANDEM_ASSIGN_OR_RETURN(Value value, Eval(*arg));
    out.keywords.emplace_back(name, std::move(value));
  }
  if (args.star_args) {
    TANDEM_ASSIGN_OR_RETURN(Value extra, Eval(*args.star_args));
    TANDEM_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(extra));
    out.positional.insert(out.positional.end(), items.begin(), items.end());
  }
  if (args.star_kwargs) {
    TANDEM_ASSIGN_OR_RETURN(Value extra, Eval(*args.star_kwargs));
    if (!extra.is_dict()) return TypeError("argument after ** must be a mapping");
    for (const auto& [key, value] : extra.dict().entries()) {
      if (!key.is_string()) return TypeError("keywords must be strings");
      out.keywords.emplace_back(key.as_string(), value);
    }
  }
  return out;
}

absl::StatusOr<Value> Interpreter::EvalFilter(const Expr& expr, const Value* block_input) {
  Value input;
  const Expr* inner = expr.children[0].get();
  if (inner == nullptr) {
    input = *block_input;
  } else if (block_input != nullptr && inner->kind == ExprKind::kFilter) {
    TANDEM_ASSIGN_OR_RETURN(input, EvalFilter(*inner, block_input));
  } else {
    TANDEM_ASSIGN_OR_RETURN(input, Eval(*inner));
  }
  TANDEM_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(expr.args));
  return ApplyFilter(context_, expr.name, input, args);
}

}  // namespace tandem::jinja
