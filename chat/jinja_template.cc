#include "chat/jinja_template.h"

#include "absl/strings/str_cat.h"
#include "chat/jinja_filters.h"
#include "chat/jinja_interpreter.h"
#include "chat/jinja_parser.h"
#include "chat/jinja_tests.h"

namespace tandem::jinja {
namespace {

// Jinja2 rejects unknown filter and test names when it compiles a template, except inside `if`
// blocks and inline if-expressions ("soft" frames), where the error waits until the filter runs.
// Loop, macro, call, with, filter and set blocks start a new frame, which is not soft.
absl::Status CheckNames(const Expr* expr, bool soft) {
  if (expr == nullptr) return absl::OkStatus();
  if (expr->kind == ExprKind::kCondExpr) soft = true;
  if (!soft && expr->kind == ExprKind::kFilter && !HasFilter(expr->name)) {
    return absl::InvalidArgumentError(absl::StrCat("line ", expr->line, ": No filter named '", expr->name, "'."));
  }
  if (!soft && expr->kind == ExprKind::kTest && !HasTest(expr->name)) {
    return absl::InvalidArgumentError(absl::StrCat("line ", expr->line, ": No test named '", expr->name, "'."));
  }
  for (const ExprPtr& child : expr->children) {
    if (absl::Status s = CheckNames(child.get(), soft); !s.ok()) return s;
  }
  for (const ExprPtr& arg : expr->args.positional) {
    if (absl::Status s = CheckNames(arg.get(), soft); !s.ok()) return s;
  }
  for (const auto& [name, arg] : expr->args.keywords) {
    if (absl::Status s = CheckNames(arg.get(), soft); !s.ok()) return s;
  }
  if (absl::Status s = CheckNames(expr->args.star_args.get(), soft); !s.ok()) return s;
  return CheckNames(expr->args.star_kwargs.get(), soft);
}

absl::Status CheckNames(const NodeList& nodes, bool soft);

absl::Status CheckNames(const Node& node, bool soft) {
  std::vector<std::pair<const Expr*, bool>> exprs;
  std::vector<std::pair<const NodeList*, bool>> bodies;
  switch (node.kind) {
    case NodeKind::kIf:
      for (const auto& [test, body] : node.branches) {
        exprs.emplace_back(test.get(), true);
        bodies.emplace_back(&body, true);
      }
      bodies.emplace_back(&node.else_body, true);
      break;
    case NodeKind::kFor:
      exprs.emplace_back(node.expr.get(), soft);
      exprs.emplace_back(node.condition.get(), false);
      bodies.emplace_back(&node.body, false);
      bodies.emplace_back(&node.else_body, false);
      break;
    case NodeKind::kOutput:
    case NodeKind::kSet:
    case NodeKind::kCallBlock:
      exprs.emplace_back(node.expr.get(), soft);
      bodies.emplace_back(&node.body, false);
      break;
    case NodeKind::kSetBlock:
    case NodeKind::kFilterBlock:
      exprs.emplace_back(node.expr.get(), false);
      bodies.emplace_back(&node.body, false);
      break;
    case NodeKind::kWith:
      for (const ExprPtr& value : node.values) exprs.emplace_back(value.get(), soft);
      bodies.emplace_back(&node.body, false);
      break;
    default:
      bodies.emplace_back(&node.body, false);
      break;
  }
  for (const ExprPtr& value : node.defaults) exprs.emplace_back(value.get(), false);
  for (const auto& [expr, expr_soft] : exprs) {
    if (absl::Status s = CheckNames(expr, expr_soft); !s.ok()) return s;
  }
  for (const auto& [body, body_soft] : bodies) {
    if (absl::Status s = CheckNames(*body, body_soft); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CheckNames(const NodeList& nodes, bool soft) {
  for (const auto& node : nodes) {
    if (absl::Status s = CheckNames(*node, soft); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Template> Template::Parse(std::string_view source, const SyntaxOptions& options) {
  absl::StatusOr<NodeList> nodes = jinja::Parse(source, options);
  if (!nodes.ok()) return nodes.status();
  if (absl::Status s = CheckNames(*nodes, /*soft=*/false); !s.ok()) return s;
  return Template(std::make_shared<const NodeList>(*std::move(nodes)));
}

absl::StatusOr<std::string> Template::Render(const DictData& variables, const RenderOptions& options) const {
  RenderContext context(options.limits, options.clock);
  Interpreter interpreter(context, variables);
  return interpreter.Render(*nodes_);
}

}  // namespace tandem::jinja
