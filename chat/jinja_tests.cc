#include "chat/jinja_tests.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "chat/jinja_filters.h"
#include "chat/jinja_operators.h"
#include "chat/jinja_strings.h"

namespace tandem::jinja {
namespace {

using TestFunction = absl::StatusOr<bool> (*)(RenderContext& context, const Value& input, const CallArgs& args);

absl::StatusOr<Value> OneArg(const CallArgs& args, const char* name) {
  ArgReader reader(args, name, {"other"});
  if (!reader.status().ok()) return reader.status();
  if (!reader.Has(0)) return TypeError(absl::StrCat(name, "() missing 1 required positional argument"));
  return reader.Get(0);
}

absl::StatusOr<bool> Modulo(RenderContext& context, const Value& input, const Value& divisor, int64_t* remainder) {
  absl::StatusOr<Value> mod = BinaryOp(context, Op::kMod, input, divisor);
  if (!mod.ok()) return mod.status();
  *remainder = mod->is_float() ? (mod->as_float() == 0.0 ? 0 : 1) : mod->as_integer();
  return true;
}

absl::StatusOr<bool> TestOdd(RenderContext& context, const Value& input, const CallArgs& args) {
  if (!args.positional.empty() || !args.keywords.empty()) {
    return TypeError("test takes 1 positional argument but more were given");
  }
  int64_t remainder;
  if (absl::StatusOr<bool> ok = Modulo(context, input, Value::Int(2), &remainder); !ok.ok()) return ok.status();
  return remainder == 1;
}

absl::StatusOr<bool> TestEven(RenderContext& context, const Value& input, const CallArgs& args) {
  if (!args.positional.empty() || !args.keywords.empty()) {
    return TypeError("test takes 1 positional argument but more were given");
  }
  int64_t remainder;
  if (absl::StatusOr<bool> ok = Modulo(context, input, Value::Int(2), &remainder); !ok.ok()) return ok.status();
  return remainder == 0;
}

absl::StatusOr<bool> TestDivisibleBy(RenderContext& context, const Value& input, const CallArgs& args) {
  absl::StatusOr<Value> divisor = OneArg(args, "divisibleby");
  if (!divisor.ok()) return divisor.status();
  int64_t remainder;
  if (absl::StatusOr<bool> ok = Modulo(context, input, *divisor, &remainder); !ok.ok()) return ok.status();
  return remainder == 0;
}

template <Op kOp>
absl::StatusOr<bool> TestCompare(RenderContext&, const Value& input, const CallArgs& args) {
  absl::StatusOr<Value> other = OneArg(args, "compare");
  if (!other.ok()) return other.status();
  return CompareOp(kOp, input, *other);
}

absl::StatusOr<bool> TestIn(RenderContext&, const Value& input, const CallArgs& args) {
  absl::StatusOr<Value> seq = OneArg(args, "in");
  if (!seq.ok()) return seq.status();
  return Contains(*seq, input);
}

absl::StatusOr<bool> TestSameAs(RenderContext&, const Value& input, const CallArgs& args) {
  absl::StatusOr<Value> other = OneArg(args, "sameas");
  if (!other.ok()) return other.status();
  if (input.kind() != other->kind()) return false;
  return input.SameObject(*other);
}

absl::StatusOr<bool> TestFilterExists(RenderContext&, const Value& input, const CallArgs& args) {
  if (!args.positional.empty() || !args.keywords.empty()) {
    return TypeError("test takes 1 positional argument but more were given");
  }
  return input.is_string() && HasFilter(input.as_string());
}

absl::StatusOr<bool> TestTestExists(RenderContext&, const Value& input, const CallArgs& args) {
  if (!args.positional.empty() || !args.keywords.empty()) {
    return TypeError("test takes 1 positional argument but more were given");
  }
  return input.is_string() && HasTest(input.as_string());
}

absl::StatusOr<bool> TestLower(RenderContext&, const Value& input, const CallArgs& args) {
  if (!args.positional.empty() || !args.keywords.empty()) {
    return TypeError("test takes 1 positional argument but more were given");
  }
  const std::string text = ToStr(input);
  bool cased = false;
  size_t pos = 0;
  while (pos < text.size()) {
    const char32_t c = NextCodePoint(text, &pos);
    if (IsUpperCodePoint(c)) return false;
    cased |= IsLowerCodePoint(c);
  }
  return cased;
}

absl::StatusOr<bool> TestUpper(RenderContext&, const Value& input, const CallArgs& args) {
  if (!args.positional.empty() || !args.keywords.empty()) {
    return TypeError("test takes 1 positional argument but more were given");
  }
  const std::string text = ToStr(input);
  bool cased = false;
  size_t pos = 0;
  while (pos < text.size()) {
    const char32_t c = NextCodePoint(text, &pos);
    if (IsLowerCodePoint(c)) return false;
    cased |= IsUpperCodePoint(c);
  }
  return cased;
}

#define TANDEM_KIND_TEST(Function, expression)                                              \
  absl::StatusOr<bool> Function(RenderContext&, const Value& input, const CallArgs& args) { \
    if (!args.positional.empty() || !args.keywords.empty()) {                               \
      return TypeError("test takes 1 positional argument but more were given");             \
    }                                                                                       \
    return expression;                                                                      \
  }

TANDEM_KIND_TEST(TestDefined, !input.is_undefined())
TANDEM_KIND_TEST(TestUndefined, input.is_undefined())
TANDEM_KIND_TEST(TestNone, input.is_none())
TANDEM_KIND_TEST(TestBoolean, input.is_bool())
TANDEM_KIND_TEST(TestTrue, input.is_bool() && input.as_bool())
TANDEM_KIND_TEST(TestFalse, input.is_bool() && !input.as_bool())
TANDEM_KIND_TEST(TestInteger, input.is_int())
TANDEM_KIND_TEST(TestFloat, input.is_float())
TANDEM_KIND_TEST(TestNumber, input.is_number())
TANDEM_KIND_TEST(TestString, input.is_string())
TANDEM_KIND_TEST(TestMapping, input.is_dict())
// Python: iter(x) works for str, list, tuple, dict and Jinja's Undefined.
TANDEM_KIND_TEST(TestIterable, input.is_string() || input.is_list() || input.is_dict() || input.is_undefined())
// Python: len(x) and x[...] both work.
TANDEM_KIND_TEST(TestSequence, input.is_string() || input.is_list() || input.is_dict() || input.is_undefined())
TANDEM_KIND_TEST(TestCallable, input.is_callable())
TANDEM_KIND_TEST(TestEscaped, false)

const absl::flat_hash_map<std::string_view, TestFunction>& Tests() {
  static const auto* const tests = new absl::flat_hash_map<std::string_view, TestFunction>{
      {"boolean", TestBoolean},
      {"callable", TestCallable},
      {"defined", TestDefined},
      {"divisibleby", TestDivisibleBy},
      {"eq", TestCompare<Op::kEq>},
      {"equalto", TestCompare<Op::kEq>},
      {"==", TestCompare<Op::kEq>},
      {"escaped", TestEscaped},
      {"even", TestEven},
      {"false", TestFalse},
      {"filter", TestFilterExists},
      {"float", TestFloat},
      {"ge", TestCompare<Op::kGe>},
      {">=", TestCompare<Op::kGe>},
      {"gt", TestCompare<Op::kGt>},
      {"greaterthan", TestCompare<Op::kGt>},
      {">", TestCompare<Op::kGt>},
      {"in", TestIn},
      {"integer", TestInteger},
      {"iterable", TestIterable},
      {"le", TestCompare<Op::kLe>},
      {"<=", TestCompare<Op::kLe>},
      {"lower", TestLower},
      {"lt", TestCompare<Op::kLt>},
      {"lessthan", TestCompare<Op::kLt>},
      {"<", TestCompare<Op::kLt>},
      {"mapping", TestMapping},
      {"ne", TestCompare<Op::kNe>},
      {"!=", TestCompare<Op::kNe>},
      {"none", TestNone},
      {"number", TestNumber},
      {"odd", TestOdd},
      {"sameas", TestSameAs},
      {"sequence", TestSequence},
      {"string", TestString},
      {"test", TestTestExists},
      {"true", TestTrue},
      {"undefined", TestUndefined},
      {"upper", TestUpper},
  };
  return *tests;
}

}  // namespace

bool HasTest(std::string_view name) { return Tests().contains(name); }

absl::StatusOr<bool> ApplyTest(RenderContext& context, std::string_view name, const Value& input,
                               const CallArgs& args) {
  auto it = Tests().find(name);
  if (it == Tests().end()) return absl::InvalidArgumentError(absl::StrCat("No test named '", std::string(name), "'."));
  return it->second(context, input, args);
}

}  // namespace tandem::jinja
