#include "chat/jinja_filters.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "chat/jinja_format.h"
#include "chat/jinja_json.h"
#include "chat/jinja_methods.h"
#include "chat/jinja_operators.h"
#include "chat/jinja_strings.h"

namespace tandem::jinja {
namespace {

#define TANDEM_FILTER_READ(reader, name, ...)  \
  ArgReader reader(args, name, {__VA_ARGS__}); \
  if (!reader.status().ok()) return reader.status()

absl::StatusOr<Value> FilterAbs(RenderContext&, const Value& input, const CallArgs&) {
  if (input.is_float()) return Value::Float(std::fabs(input.as_float()));
  if (input.is_int() || input.is_bool()) {
    const int64_t x = input.as_integer();
    if (x == std::numeric_limits<int64_t>::min()) return absl::InvalidArgumentError("integer overflow");
    return Value::Int(x < 0 ? -x : x);
  }
  if (input.is_undefined()) return UndefinedError(input);
  return TypeError(absl::StrCat("bad operand type for abs(): '", TypeName(input), "'"));
}

// attr(name): the Python attribute only, never the item.
absl::StatusOr<Value> FilterAttr(RenderContext&, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "attr", "name");
  const Value name = reader.Get(0);
  if (!name.is_string()) return TypeError("attribute name must be a string");
  if (input.is_undefined()) return UndefinedError(input);
  if (input.is_namespace()) {
    const Value* value = input.ns().attributes.Find(name.as_string());
    if (value) return *value;
  } else if (!IsUnsafeMethod(input, name.as_string())) {
    if (std::optional<Value> method = FindMethod(input, name.as_string())) return *method;
  }
  return Value::Undefined(absl::StrCat("'", TypeName(input), " object' has no attribute '", name.as_string(), "'"));
}

#define TANDEM_TEXT_FILTER(Function, name, transform)                                        \
  absl::StatusOr<Value> Function(RenderContext&, const Value& input, const CallArgs& args) { \
    TANDEM_FILTER_READ(reader, name);                                                        \
    return Value::String(transform(ToStr(input)));                                           \
  }

TANDEM_TEXT_FILTER(FilterCapitalize, "capitalize", PyCapitalize)
TANDEM_TEXT_FILTER(FilterLower, "lower", PyLower)
TANDEM_TEXT_FILTER(FilterUpper, "upper", PyUpper)

bool IsTitleSeparator(char32_t c) {
  return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || IsPythonSpace(c);
}

// Jinja's title: upper-case the first character after each run of "-", whitespace or opening
// brackets, lower-case the rest.
std::string JinjaTitle(const std::string& text) {
  std::string out;
  bool word_start = true;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const char32_t c = NextCodePoint(text, &pos);
    const std::string one = text.substr(start, pos - start);
    if (IsTitleSeparator(c)) {
      out += one;
      word_start = true;
    } else {
      out += word_start ? PyUpper(one) : PyLower(one);
      word_start = false;
    }
  }
  return out;
}
TANDEM_TEXT_FILTER(FilterTitle, "title", JinjaTitle)

std::string HtmlEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}
TANDEM_TEXT_FILTER(FilterEscape, "escape", HtmlEscape)

std::string Identity(const std::string& text) { return text; }
TANDEM_TEXT_FILTER(FilterString, "string", Identity)

absl::StatusOr<Value> FilterPprint(RenderContext&, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "pprint");
  return Value::String(ToRepr(input));
}

absl::StatusOr<Value> FilterCenter(RenderContext& context, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "center", "width");
  std::optional<Value> center = FindMethod(Value::String(ToStr(input)), "center");
  CallArgs method_args;
  method_args.positional.push_back(reader.Get(0, Value::Int(80)));
  return context.Call(*center, std::move(method_args));
}

absl::StatusOr<Value> FilterDefault(RenderContext&, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "default", "default_value", "boolean");
  if (input.is_undefined() || (reader.Get(1, Value::Bool(false)).Truthy() && !input.Truthy())) {
    return reader.Get(0, Value::String(""));
  }
  return input;
}

// Python int(text, base), or nullopt when the text is not an integer literal.
std::optional<int64_t> ParsePythonInt(std::string_view text, int base) {
  const std::string stripped = PyStrip(text, StripSide::kBoth, std::nullopt);
  std::string_view s = stripped;
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.size() >= 2 && s[0] == '0') {
    const char p = static_cast<char>(s[1] | 0x20);
    const int prefixed = p == 'x' ? 16 : (p == 'o' ? 8 : (p == 'b' ? 2 : 0));
    if (prefixed && (base == 0 || base == prefixed)) {
      base = prefixed;
      s.remove_prefix(2);
      if (!s.empty() && s[0] == '_') s.remove_prefix(1);
    }
  }
  if (base == 0) base = 10;
  if (s.empty() || s.front() == '_' || s.back() == '_') return std::nullopt;
  uint64_t value = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      if (s[i + 1] == '_') return std::nullopt;
      continue;
    }
    const char c = static_cast<char>(s[i] | 0x20);
    const int d = (c >= '0' && c <= '9') ? c - '0' : ((c >= 'a' && c <= 'z') ? c - 'a' + 10 : 99);
    if (d >= base) return std::nullopt;
    if (value > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1 - static_cast<uint64_t>(d)) /
                    static_cast<uint64_t>(base)) {
      return std::nullopt;
    }
    value = value * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  if (!negative && value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return negative ? static_cast<int64_t>(0 - value) : static_cast<int64_t>(value);
}

// Python float(text), or nullopt.
std::optional<double> ParsePythonFloat(std::string_view text) {
  std::string s;
  for (char c : PyStrip(text, StripSide::kBoth, std::nullopt)) {
    if (c != '_') s.push_back(c);
  }
  if (s.empty() || s.find_first_of("xXpP") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return value;
}

absl::StatusOr<Value> FilterInt(RenderContext&, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "int", "default", "base");
  const Value fallback = reader.Get(0, Value::Int(0));
  const Value base = reader.Get(1, Value::Int(10));
  if (input.is_int() || input.is_bool()) return Value::Int(input.as_integer());
  if (input.is_float() || input.is_string()) {
    if (input.is_string()) {
      if (!base.is_int() || (base.as_int() != 0 && (base.as_int() < 2 || base.as_int() > 36))) {
        return absl::InvalidArgumentError("int() base must be >= 2 and <= 36, or 0");
      }
      if (std::optional<int64_t> parsed = ParsePythonInt(input.as_string(), static_cast<int>(base.as_int()))) {
        return Value::Int(*parsed);
      }
    }
    std::optional<double> number =
        input.is_float() ? std::optional<double>(input.as_float()) : ParsePythonFloat(input.as_string());
    if (!number || std::isnan(*number)) return fallback;
    if (std::isinf(*number)) return absl::InvalidArgumentError("cannot convert float infinity to integer");
    if (std::fabs(*number) >= 9.2233720368547758e18) return absl::InvalidArgumentError("integer overflow");
    return Value::Int(static_cast<int64_t>(*number));
  }
  return fallback;
}

absl::StatusOr<Value> FilterFloat(RenderContext&, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "float", "default");
  if (input.is_number()) return Value::Float(input.as_double());
  if (input.is_string()) {
    if (std::optional<double> parsed = ParsePythonFloat(input.as_string())) return Value::Float(*parsed);
  }
  return reader.Get(0, Value::Float(0.0));
}

absl::StatusOr<Value> FilterFormat(RenderContext& context, const Value& input, const CallArgs& args) {
  if (!args.positional.empty() && !args.keywords.empty()) {
    return absl::InvalidArgumentError("can't handle positional and keyword arguments at the same time");
  }
  Value values;
  if (!args.keywords.empty()) {
    DictData dict;
    for (const auto& [name, value] : args.keywords) dict.Set(Value::String(name), value);
    values = Value::Dict(std::move(dict));
  } else {
    values = Value::Tuple(args.positional);
  }
  absl::StatusOr<std::string> text = PercentFormat(context, ToStr(input), values);
  if (!text.ok()) return text.status();
  return Value::String(*std::move(text));
}

absl::StatusOr<Value> FilterIndent(RenderContext& context, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "indent", "width", "first", "blank");
  const Value width = reader.Get(0, Value::Int(4));
  std::string indention;
  if (width.is_string()) {
    indention = width.as_string();
  } else if (width.is_int() || width.is_bool()) {
    if (absl::Status s = context.CheckSize(static_cast<size_t>(std::max<int64_t>(0, width.as_integer()))); !s.ok()) {
      return s;
    }
    indention.assign(static_cast<size_t>(std::max<int64_t>(0, width.as_integer())), ' ');
  } else {
    return TypeError("indent width must be an int or a string");
  }
  if (input.is_undefined()) return UndefinedError(input);
  const std::vector<std::string> lines = PySplitLines(ToStr(input) + "\n", false);
  if (absl::Status s = context.CheckSize(ToStr(input).size() + lines.size() * indention.size()); !s.ok()) return s;
  std::string out;
  if (reader.Get(2, Value::Bool(false)).Truthy()) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) out += "\n" + indention;
      out += lines[i];
    }
  } else {
    out = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) out += "\n" + (lines[i].empty() ? "" : indention + lines[i]);
  }
  if (reader.Get(1, Value::Bool(false)).Truthy()) out = indention + out;
  return Value::String(std::move(out));
}

absl::StatusOr<Value> FilterReplace(RenderContext& context, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "replace", "old", "new", "count");
  CallArgs method_args;
  method_args.positional = {Value::String(ToStr(reader.Get(0))), Value::String(ToStr(reader.Get(1)))};
  if (reader.Has(2) && !reader.Get(2).is_none()) method_args.positional.push_back(reader.Get(2));
  return context.Call(*FindMethod(Value::String(ToStr(input)), "replace"), std::move(method_args));
}

absl::StatusOr<Value> FilterRound(RenderContext&, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "round", "precision", "method");
  const Value precision = reader.Get(0, Value::Int(0));
  const Value method = reader.Get(1, Value::String("common"));
  if (!method.is_string() ||
      (method.as_string() != "common" && method.as_string() != "ceil" && method.as_string() != "floor")) {
    return absl::InvalidArgumentError("method must be common, ceil or floor");
  }
  if (!precision.is_int() && !precision.is_bool()) return TypeError("precision must be an integer");
  if (input.is_undefined()) return UndefinedError(input);
  if (!input.is_number()) return TypeError(absl::StrCat("type ", TypeName(input), " doesn't define __round__ method"));
  const int64_t digits = std::clamp<int64_t>(precision.as_integer(), -308, 308);
  if (method.as_string() == "common" && !input.is_float() && digits >= 0) return Value::Int(input.as_integer());
  const double scale = std::pow(10.0, static_cast<double>(digits));
  const double x = input.as_double() * scale;
  double rounded;
  if (method.as_string() == "ceil") {
    rounded = std::ceil(x);
  } else if (method.as_string() == "floor") {
    rounded = std::floor(x);
  } else {
    rounded = std::nearbyint(x);  // round half to even, as Python's round()
  }
  return Value::Float(rounded / scale);
}

absl::StatusOr<Value> FilterSafe(RenderContext&, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "safe");
  return Value::String(ToStr(input));
}

absl::StatusOr<Value> FilterStripTags(RenderContext&, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "striptags");
  const std::string text = ToStr(input);
  std::string stripped;
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 4, "<!--") == 0) {
      const size_t end = text.find("-->", i + 4);
      if (end != std::string::npos) {
        i = end + 3;
        continue;
      }
    }
    if (text[i] == '<') {
      const size_t end = text.find('>', i + 1);
      if (end != std::string::npos) {
        i = end + 1;
        continue;
      }
    }
    stripped.push_back(text[i++]);
  }
  std::string out;
  for (const std::string& word : PySplit(stripped, std::nullopt, -1)) {
    if (!out.empty()) out.push_back(' ');
    out += word;
  }
  return Value::String(std::move(out));
}

absl::StatusOr<Value> FilterToJson(RenderContext& context, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "tojson", "ensure_ascii", "indent", "separators", "sort_keys");
  JsonDumpOptions options;
  options.ensure_ascii = reader.Get(0, Value::Bool(false)).Truthy();
  const Value indent = reader.Get(1, Value::None());
  if (indent.is_string()) {
    options.indent = indent.as_string();
  } else if (indent.is_int() || indent.is_bool()) {
    const int64_t n = std::min<int64_t>(indent.as_integer(), 1024);
    options.indent = std::string(static_cast<size_t>(std::max<int64_t>(0, n)), ' ');
  } else if (!indent.is_none()) {
    return TypeError("tojson indent must be None, an int or a string");
  }
  const Value separators = reader.Get(2, Value::None());
  if (separators.is_list() && separators.items().size() == 2 && separators.items()[0].is_string() &&
      separators.items()[1].is_string()) {
    options.item_separator = separators.items()[0].as_string();
    options.key_separator = separators.items()[1].as_string();
  } else if (!separators.is_none()) {
    return TypeError("tojson separators must be None or a pair of strings");
  }
  options.sort_keys = reader.Get(3, Value::Bool(false)).Truthy();
  absl::StatusOr<std::string> text = JsonDumps(input, options, context.limits().max_output_bytes);
  if (!text.ok()) return text.status();
  if (absl::Status s = context.Charge(1 + static_cast<int64_t>(text->size() / 256)); !s.ok()) return s;
  return Value::String(*std::move(text));
}

absl::StatusOr<Value> FilterTrim(RenderContext&, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "trim", "chars");
  const Value chars = reader.Get(0, Value::None());
  std::optional<std::string> set;
  if (chars.is_string()) {
    set = chars.as_string();
  } else if (!chars.is_none()) {
    return TypeError("trim chars must be None or a string");
  }
  return Value::String(PyStrip(ToStr(input), StripSide::kBoth, set));
}

absl::StatusOr<Value> FilterTruncate(RenderContext&, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "truncate", "length", "killwords", "end", "leeway");
  const Value length_value = reader.Get(0, Value::Int(255));
  const Value leeway_value = reader.Get(3, Value::Int(5));
  const std::string end = ToStr(reader.Get(2, Value::String("...")));
  if (!(length_value.is_int() || length_value.is_bool()) || !(leeway_value.is_int() || leeway_value.is_bool())) {
    return TypeError("truncate length and leeway must be integers");
  }
  const int64_t length = length_value.as_integer();
  const int64_t end_length = static_cast<int64_t>(CodePointCount(end));
  if (length < end_length)
    return absl::InvalidArgumentError(absl::StrCat("expected length >= ", end_length, ", got ", length));
  if (leeway_value.as_integer() < 0) return absl::InvalidArgumentError("expected leeway >= 0");
  const std::string text = ToStr(input);
  const int64_t size = static_cast<int64_t>(CodePointCount(text));
  if (size <= length + leeway_value.as_integer()) return Value::String(text);
  std::string head = SliceCodePoints(text, 0, length - end_length, 1);
  if (!reader.Get(1, Value::Bool(false)).Truthy()) head = PyRSplit(head, std::string(" "), 1)[0];
  return Value::String(head + end);
}

absl::StatusOr<Value> FilterWordCount(RenderContext&, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "wordcount");
  const std::string text = ToStr(input);
  int64_t words = 0;
  bool in_word = false;
  size_t pos = 0;
  while (pos < text.size()) {
    const char32_t c = NextCodePoint(text, &pos);
    const bool word_char = c == '_' || IsAlphaCodePoint(c) || IsDigitCodePoint(c);
    if (word_char && !in_word) ++words;
    in_word = word_char;
  }
  return Value::Int(words);
}

const absl::flat_hash_map<std::string_view, FilterFunction>& Filters() {
  static const auto* const filters = new absl::flat_hash_map<std::string_view, FilterFunction>{
      {"abs", FilterAbs},
      {"attr", FilterAttr},
      {"batch", FilterBatch},
      {"capitalize", FilterCapitalize},
      {"center", FilterCenter},
      {"count", FilterLength},
      {"d", FilterDefault},
      {"default", FilterDefault},
      {"dictsort", FilterDictSort},
      {"e", FilterEscape},
      {"escape", FilterEscape},
      {"first", FilterFirst},
      {"float", FilterFloat},
      {"forceescape", FilterEscape},
      {"format", FilterFormat},
      {"indent", FilterIndent},
      {"int", FilterInt},
      {"items", FilterItems},
      {"join", FilterJoin},
      {"last", FilterLast},
      {"length", FilterLength},
      {"list", FilterList},
      {"lower", FilterLower},
      {"map", FilterMap},
      {"max", FilterMax},
      {"min", FilterMin},
      {"pprint", FilterPprint},
      {"reject", FilterReject},
      {"rejectattr", FilterRejectAttr},
      {"replace", FilterReplace},
      {"reverse", FilterReverse},
      {"round", FilterRound},
      {"safe", FilterSafe},
      {"select", FilterSelect},
      {"selectattr", FilterSelectAttr},
      {"slice", FilterSlice},
      {"sort", FilterSort},
      {"string", FilterString},
      {"striptags", FilterStripTags},
      {"sum", FilterSum},
      {"title", FilterTitle},
      {"tojson", FilterToJson},
      {"trim", FilterTrim},
      {"truncate", FilterTruncate},
      {"unique", FilterUnique},
      {"upper", FilterUpper},
      {"wordcount", FilterWordCount},
  };
  return *filters;
}

}  // namespace

bool HasFilter(std::string_view name) { return Filters().contains(name); }

absl::StatusOr<Value> ApplyFilter(RenderContext& context, std::string_view name, const Value& input,
                                  const CallArgs& args) {
  auto it = Filters().find(name);
  if (it == Filters().end())
    return absl::InvalidArgumentError(absl::StrCat("No filter named '", std::string(name), "'."));
  return it->second(context, input, args);
}

}  // namespace tandem::jinja
