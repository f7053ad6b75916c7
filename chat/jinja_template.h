// A small Jinja2 interpreter for chat templates: parse once, render many times.
//
//   absl::StatusOr<jinja::Template> t = jinja::Template::Parse("Hello {{ name | upper }}!");
//   jinja::DictData variables;
//   variables.Set(jinja::Value::String("name"), jinja::Value::String("world"));
//   absl::StatusOr<std::string> text = t->Render(variables);   // "Hello WORLD!"
//
// It reproduces what Hugging Face transformers renders with Jinja2's
// ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, loopcontrols): Python
// values and operators, Jinja's filters, tests and Undefined, plus transformers' tojson,
// raise_exception and strftime_now. It is a sandbox for untrusted templates and inputs: no file
// or network access, bounded work, output, nesting and recursion (RenderLimits), and malformed
// source is an error, never a crash.
//
// Errors: syntax errors are InvalidArgument "line N: ..."; raise_exception(msg) is
// InvalidArgument with exactly `msg` (IsTemplateRaisedError() tells it apart); other render
// errors are InvalidArgument "line N: <Python-style message>"; exceeded limits are
// ResourceExhausted.
//
// Thread safety: a Template is immutable; Render may run concurrently from many threads.
#ifndef TANDEM_CHAT_JINJA_TEMPLATE_H_
#define TANDEM_CHAT_JINJA_TEMPLATE_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "chat/jinja_ast.h"
#include "chat/jinja_context.h"
#include "chat/jinja_lexer.h"
#include "chat/jinja_value.h"

namespace tandem::jinja {

struct RenderOptions {
  RenderLimits limits;
  Clock clock;  // for strftime_now(); empty means the local time now
};

class Template {
 public:
  static absl::StatusOr<Template> Parse(std::string_view source, const SyntaxOptions& options = SyntaxOptions());

  // Renders with `variables` (string keys) as the top-level names.
  absl::StatusOr<std::string> Render(const DictData& variables, const RenderOptions& options = RenderOptions()) const;

 private:
  explicit Template(std::shared_ptr<const NodeList> nodes) : nodes_(std::move(nodes)) {}

  std::shared_ptr<const NodeList> nodes_;
};

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_TEMPLATE_H_
