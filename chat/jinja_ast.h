// The syntax tree of a parsed template: expressions (Expr) and statements (Node), as Jinja2's
// parser builds them. Built once by the parser, then only read, so one tree may be rendered by
// many threads at once. Internal to tandem_chat.
#ifndef TANDEM_CHAT_JINJA_AST_H_
#define TANDEM_CHAT_JINJA_AST_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_value.h"

namespace tandem::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  kLiteral,   // literal
  kName,      // name
  kList,      // children: the items
  kTuple,     // children: the items
  kDict,      // children: key0, value0, key1, value1, ...
  kGetAttr,   // children[0].name (also `x.0`, which is a kGetItem)
  kGetItem,   // children[0][children[1]]
  kSlice,     // children[0][children[1]:children[2]:children[3]], each bound may be null
  kCall,      // children[0](args)
  kFilter,    // children[0] | name(args); children[0] is null in {% filter %} and {% set x | f %}
  kTest,      // children[0] is name(args)
  kUnary,     // op children[0]: kNeg, kPos, kNot
  kBinary,    // children[0] op children[1]: arithmetic, kAnd, kOr
  kCompare,   // children[0] compare_ops[0] children[1] compare_ops[1] children[2] ... (chained)
  kConcat,    // children joined with ~
  kCondExpr,  // children[0] if children[1] else children[2] (children[2] null: undefined)
};

enum class Op {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kFloorDiv,
  kMod,
  kPow,  // arithmetic
  kNeg,
  kPos,
  kNot,  // unary
  kAnd,
  kOr,  // short-circuit
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kIn,
  kNotIn,  // comparisons
};

struct CallArguments {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keywords;
  ExprPtr star_args;    // *args, or null
  ExprPtr star_kwargs;  // **kwargs, or null
};

struct Expr {
  ExprKind kind;
  int line = 0;
  Value literal;                // kLiteral
  std::string name;             // kName, kGetAttr attribute, kFilter / kTest name
  Op op = Op::kAdd;             // kUnary, kBinary
  std::vector<Op> compare_ops;  // kCompare
  std::vector<ExprPtr> children;
  CallArguments args;  // kCall, kFilter, kTest
};

struct Node;
using NodeList = std::vector<std::unique_ptr<Node>>;

enum class NodeKind {
  kText,         // text
  kOutput,       // {{ expr }}
  kIf,           // branches (test, body) for if/elif..., else_body
  kFor,          // for target in expr [if condition] [recursive]: body [else: else_body]
  kSet,          // set target = expr; target is a kName, a kTuple of names or ns.attr (kGetAttr)
  kSetBlock,     // set target [| filter]: body (the rendered body is assigned); expr is the filter
  kMacro,        // macro name(params = defaults): body
  kCallBlock,    // call(params) expr: body; `caller()` renders body
  kFilterBlock,  // filter expr: body
  kWith,         // with targets = values: body
  kBreak,
  kContinue,
  kScope,  // {% generation %} body {% endgeneration %}: renders body unchanged
};

struct Node {
  NodeKind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr target;
  ExprPtr condition;
  std::vector<std::pair<ExprPtr, NodeList>> branches;
  NodeList body;
  NodeList else_body;
  bool recursive = false;
  // Macros and call blocks: parameter names and the defaults of the last defaults.size() of them.
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;
  // With blocks.
  std::vector<ExprPtr> targets;
  std::vector<ExprPtr> values;
};

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_AST_H_
