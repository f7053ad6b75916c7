#include "chat/jinja_methods.h"

#include <algorithm>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "chat/jinja_context.h"
#include "chat/jinja_format.h"
#include "chat/jinja_operators.h"
#include "chat/jinja_strings.h"

namespace tandem::jinja {
namespace {

using Method = absl::StatusOr<Value> (*)(RenderContext& context, const Value& self, const CallArgs& args);

// Optional string argument: None/absent gives nullopt.
absl::StatusOr<std::optional<std::string>> OptionalString(const Value& value, absl::string_view what) {
  if (value.is_none() || value.is_undefined()) return std::optional<std::string>();
  if (!value.is_string()) return TypeError(absl::StrCat(what, " arg must be None or str"));
  return std::optional<std::string>(value.as_string());
}

absl::StatusOr<int64_t> IntArg(const Value& value, int64_t fallback, absl::string_view what) {
  if (value.is_undefined() || value.is_none()) return fallback;
  if (value.is_int() || value.is_bool()) return value.as_integer();
  return TypeError(absl::StrCat(what, ": '", TypeName(value), "' object cannot be interpreted as an integer"));
}

#define TANDEM_METHOD_READ(reader, name, ...)  \
  ArgReader reader(args, name, {__VA_ARGS__}); \
  if (!reader.status().ok()) return reader.status()

absl::StatusOr<Value> Strip(const Value& self, const CallArgs& args, StripSide side, const char* name) {
  TANDEM_METHOD_READ(reader, name, "chars");
  absl::StatusOr<std::optional<std::string>> chars = OptionalString(reader.Get(0), name);
  if (!chars.ok()) return chars.status();
  return Value::String(PyStrip(self.as_string(), side, *chars));
}

absl::StatusOr<Value> StrStrip(RenderContext&, const Value& self, const CallArgs& args) {
  return Strip(self, args, StripSide::kBoth, "strip");
}
absl::StatusOr<Value> StrLStrip(RenderContext&, const Value& self, const CallArgs& args) {
  return Strip(self, args, StripSide::kLeft, "lstrip");
}
absl::StatusOr<Value> StrRStrip(RenderContext&, const Value& self, const CallArgs& args) {
  return Strip(self, args, StripSide::kRight, "rstrip");
}

Value StringList(const std::vector<std::string>& parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (const std::string& part : parts) items.push_back(Value::String(part));
  return Value::List(std::move(items));
}

absl::StatusOr<Value> Split(const Value& self, const CallArgs& args, bool reverse) {
  TANDEM_METHOD_READ(reader, reverse ? "rsplit" : "split", "sep", "maxsplit");
  absl::StatusOr<std::optional<std::string>> sep = OptionalString(reader.Get(0), "sep");
  if (!sep.ok()) return sep.status();
  if (*sep && (*sep)->empty()) return absl::InvalidArgumentError("empty separator");
  absl::StatusOr<int64_t> maxsplit = IntArg(reader.Get(1), -1, "maxsplit");
  if (!maxsplit.ok()) return maxsplit.status();
  return StringList(reverse ? PyRSplit(self.as_string(), *sep, *maxsplit) : PySplit(self.as_string(), *sep, *maxsplit));
}

absl::StatusOr<Value> StrSplit(RenderContext&, const Value& self, const CallArgs& args) {
  return Split(self, args, false);
}
absl::StatusOr<Value> StrRSplit(RenderContext&, const Value& self, const CallArgs& args) {
  return Split(self, args, true);
}

absl::StatusOr<Value> StrSplitLines(RenderContext&, const Value& self, const CallArgs& args) {
  TANDEM_METHOD_READ(reader, "splitlines", "keepends");
  return StringList(PySplitLines(self.as_string(), reader.Get(0, Value::Bool(false)).Truthy()));
}

// The code-point slice [start:end] of a method's optional start/end arguments.
absl::StatusOr<std::string> Window(const std::string& text, const Value& start, const Value& end, int64_t* offset) {
  *offset = 0;
  if ((start.is_undefined() || start.is_none()) && (end.is_undefined() || end.is_none())) return text;
  absl::StatusOr<SliceBounds> bounds =
      NormalizeSlice(static_cast<int64_t>(CodePointCount(text)), start, end, Value::None());
  if (!bounds.ok()) return bounds.status();
  *offset = bounds->start;
  if (bounds->count == 0) return std::string();
  return SliceCodePoints(text, bounds->start, bounds->start + bounds->count, 1);
}

absl::StatusOr<Value> Affix(const Value& self, const CallArgs& args, bool suffix) {
  TANDEM_METHOD_READ(reader, suffix ? "endswith" : "startswith", "affix", "start", "end");
  int64_t offset;
  absl::StatusOr<std::string> text = Window(self.as_string(), reader.Get(1), reader.Get(2), &offset);
  if (!text.ok()) return text.status();
  const Value affix = reader.Get(0);
  std::vector<Value> candidates;
  if (affix.is_string()) {
    candidates.push_back(affix);
  } else if (affix.is_tuple()) {
    candidates = affix.items();
  } else {
    return TypeError(absl::StrCat(suffix ? "endswith" : "startswith", " first arg must be str or a tuple of str, not ",
                                  TypeName(affix)));
  }
  for (const Value& candidate : candidates) {
    if (!candidate.is_string()) return TypeError("tuple for startswith/endswith must only contain str");
    const std::string& c = candidate.as_string();
    if (c.size() > text->size()) continue;
    if (suffix ? text->compare(text->size() - c.size(), c.size(), c) == 0 : text->compare(0, c.size(), c) == 0) {
      return Value::Bool(true);
    }
  }
  return Value::Bool(false);
}

absl::StatusOr<Value> StrStartsWith(RenderContext&, const Value& self, const CallArgs& args) {
  return Affix(self, args, false);
}
absl::StatusOr<Value> StrEndsWith(RenderContext&, const Value& self, const CallArgs& args) {
  return Affix(self, args, true);
}

absl::StatusOr<Value> NoArgs(const CallArgs& args, const char* name) {
  if (!args.positional.empty() || !args.keywords.empty()) {
    return TypeError(absl::StrCat(name, "() takes no arguments"));
  }
  return Value();
}

#define TANDEM_STRING_TRANSFORM(Function, name, transform)                                  \
  absl::StatusOr<Value> Function(RenderContext&, const Value& self, const CallArgs& args) { \
    if (absl::StatusOr<Value> ok = NoArgs(args, name); !ok.ok()) return ok.status();        \
    return Value::String(transform(self.as_string()));                                      \
  }

TANDEM_STRING_TRANSFORM(StrUpper, "upper", PyUpper)
TANDEM_STRING_TRANSFORM(StrLower, "lower", PyLower)
TANDEM_STRING_TRANSFORM(StrTitle, "title", PyTitle)
TANDEM_STRING_TRANSFORM(StrCapitalize, "capitalize", PyCapitalize)

std::string SwapCase(std::string_view text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const char32_t c = NextCodePoint(text, &pos);
    const std::string one(text.substr(start, pos - start));
    out += IsUpperCodePoint(c) ? PyLower(one) : (IsLowerCodePoint(c) ? PyUpper(one) : one);
  }
  return out;
}
TANDEM_STRING_TRANSFORM(StrSwapCase, "swapcase", SwapCase)

absl::StatusOr<Value> StrReplace(RenderContext& context, const Value& self, const CallArgs& args) {
  TANDEM_METHOD_READ(reader, "replace", "old", "new", "count");
  const Value old_text = reader.Get(0);
  const Value new_text = reader.Get(1);
  if (!old_text.is_string() || !new_text.is_string()) return TypeError("replace() arguments must be str");
  absl::StatusOr<int64_t> count = IntArg(reader.Get(2), -1, "count");
  if (!count.ok()) return count.status();
  const std::string& text = self.as_string();
  const std::string& old_str = old_text.as_string();
  const std::string& new_str = new_text.as_string();
  // Bound the result before building it: every occurrence may grow the text.
  if (new_str.size() > old_str.size()) {
    int64_t occurrences = 0;
    if (old_str.empty()) {
      occurrences = static_cast<int64_t>(CodePointCount(text)) + 1;
    } else {
      for (size_t at = text.find(old_str); at != std::string::npos; at = text.find(old_str, at + old_str.size())) {
        ++occurrences;
      }
    }
    if (*count >= 0) occurrences = std::min(occurrences, *count);
    const size_t growth = (new_str.size() - old_str.size()) * static_cast<size_t>(occurrences);
    if (absl::Status s = context.CheckSize(text.size() + growth); !s.ok()) return s;
  }
  return Value::String(PyReplace(text, old_text.as_string(), new_text.as_string(), *count));
}

// find/rfind/index/rindex/count over code points.
absl::StatusOr<Value> Search(const Value& self, const CallArgs& args, const char* name, bool reverse, bool raise,
                             bool count) {
  TANDEM_METHOD_READ(reader, name, "sub", "start", "end");
  const Value sub = reader.Get(0);
  if (!sub.is_string()) return TypeError(absl::StrCat("must be str, not ", TypeName(sub)));
  int64_t offset;
  absl::StatusOr<std::string> text = Window(self.as_string(), reader.Get(1), reader.Get(2), &offset);
  if (!text.ok()) return text.status();
  const std::string& needle = sub.as_string();
  if (count) {
    if (needle.empty()) return Value::Int(static_cast<int64_t>(CodePointCount(*text)) + 1);
    int64_t n = 0;
    for (size_t at = text->find(needle); at != std::string::npos; at = text->find(needle, at + needle.size())) ++n;
    return Value::Int(n);
  }
  const size_t at = reverse ? text->rfind(needle) : text->find(needle);
  if (at == std::string::npos) {
    if (raise) return absl::InvalidArgumentError("substring not found");
    return Value::Int(-1);
  }
  return Value::Int(offset + static_cast<int64_t>(CodePointCount(std::string_view(*text).substr(0, at))));
}

absl::StatusOr<Value> StrFind(RenderContext&, const Value& self, const CallArgs& args) {
  return Search(self, args, "find", false, false, false);
}
absl::StatusOr<Value> StrRFind(RenderContext&, const Value& self, const CallArgs& args) {
  return Search(self, args, "rfind", true, false, false);
}
absl::StatusOr<Value> StrIndex(RenderContext&, const Value& self, const CallArgs& args) {
  return Search(self, args, "index", false, true, false);
}
absl::StatusOr<Value> StrRIndex(RenderContext&, const Value& self, const CallArgs& args) {
  return Search(self, args, "rindex", true, true, false);
}
absl::StatusOr<Value> StrCount(RenderContext&, const Value& self, const CallArgs& args) {
  return Search(self, args, "count", false, false, true);
}

absl::StatusOr<Value> StrJoin(RenderContext& context, const Value& self, const CallArgs& args) {
  TANDEM_METHOD_READ(reader, "join", "iterable");
  absl::StatusOr<std::vector<Value>> items = Iterate(reader.Get(0));
  if (!items.ok()) return items.status();
  if (absl::Status s = context.Charge(static_cast<int64_t>(items->size())); !s.ok()) return s;
  std::string out;
  for (size_t i = 0; i < items->size(); ++i) {
    const Value& item = (*items)[i];
    if (!item.is_string()) {
      return TypeError(absl::StrCat("sequence item ", i, ": expected str instance, ", TypeName(item), " found"));
    }
    if (i > 0) out.append(self.as_string());
    out.append(item.as_string());
    if (absl::Status s = context.CheckSize(out.size()); !s.ok()) return s;
  }
  return Value::String(std::move(out));
}

absl::StatusOr<Value> StrFormatMethod(RenderContext& context, const Value& self, const CallArgs& args) {
  absl::StatusOr<std::string> text = StrFormat(context, self.as_string(), args);
  if (!text.ok()) return text.status();
  return Value::String(*std::move(text));
}

// center / ljust / rjust.
absl::StatusOr<Value> Pad(RenderContext& context, const Value& self, const CallArgs& args, const char* name,
                          int align) {
  TANDEM_METHOD_READ(reader, name, "width", "fillchar");
  absl::StatusOr<int64_t> width = IntArg(reader.Get(0), 0, name);
  if (!width.ok()) return width.status();
  const Value fill = reader.Get(1, Value::String(" "));
  if (!fill.is_string() || CodePointCount(fill.as_string()) != 1) {
    return TypeError("The fill character must be exactly one character long");
  }
  const std::string& text = self.as_string();
  const int64_t length = static_cast<int64_t>(CodePointCount(text));
  if (*width <= length) return self;
  if (absl::Status s = context.CheckSize(static_cast<size_t>(*width) * fill.as_string().size()); !s.ok()) return s;
  const int64_t total = *width - length;
  int64_t left = align < 0 ? 0 : (align > 0 ? total : total / 2 + (total & *width & 1));
  std::string out;
  for (int64_t i = 0; i < left; ++i) out.append(fill.as_string());
  out.append(text);
  for (int64_t i = left; i < total; ++i) out.append(fill.as_string());
  return Value::String(std::move(out));
}

absl::StatusOr<Value> StrCenter(RenderContext& c, const Value& self, const CallArgs& args) {
  return Pad(c, self, args, "center", 0);
}
absl::StatusOr<Value> StrLJust(RenderContext& c, const Value& self, const CallArgs& args) {
  return Pad(c, self, args, "ljust", -1);
}
absl::StatusOr<Value> StrRJust(RenderContext& c, const Value& self, const CallArgs& args) {
  return Pad(c, self, args, "rjust", 1);
}

absl::StatusOr<Value> StrZFill(RenderContext& context, const Value& self, const CallArgs& args) {
  TANDEM_METHOD_READ(reader, "zfill", "width");
  absl::StatusOr<int64_t> width = IntArg(reader.Get(0), 0, "zfill");
  if (!width.ok()) return width.status();
  const std::string& text = self.as_string();
  const int64_t length = static_cast<int64_t>(CodePointCount(text));
  if (*width <= length) return self;
  if (absl::Status s = context.CheckSize(static_cast<size_t>(*width)); !s.ok()) return s;
  const bool sign = !text.empty() && (text[0] == '+' || text[0] == '-');
  std::string out = sign ? text.substr(0, 1) : "";
  out.append(static_cast<size_t>(*width - length), '0');
  out.append(sign ? text.substr(1) : text);
  return Value::String(std::move(out));
}

absl::StatusOr<Value> Partition(const Value& self, const CallArgs& args, bool reverse) {
  TANDEM_METHOD_READ(reader, reverse ? "rpartition" : "partition", "sep");
  const Value sep = reader.Get(0);
  if (!sep.is_string()) return TypeError(absl::StrCat("must be str, not ", TypeName(sep)));
  if (sep.as_string().empty()) return absl::InvalidArgumentError("empty separator");
  const std::string& text = self.as_string();
  const size_t at = reverse ? text.rfind(sep.as_string()) : text.find(sep.as_string());
  if (at == std::string::npos) {
    return reverse ? Value::Tuple({Value::String(""), Value::String(""), self})
                   : Value::Tuple({self, Value::String(""), Value::String("")});
  }
  return Value::Tuple(
      {Value::String(text.substr(0, at)), sep, Value::String(text.substr(at + sep.as_string().size()))});
}

absl::StatusOr<Value> StrPartition(RenderContext&, const Value& self, const CallArgs& args) {
  return Partition(self, args, false);
}
absl::StatusOr<Value> StrRPartition(RenderContext&, const Value& self, const CallArgs& args) {
  return Partition(self, args, true);
}

absl::StatusOr<Value> RemoveAffix(const Value& self, const CallArgs& args, bool suffix) {
  TANDEM_METHOD_READ(reader, suffix ? "removesuffix" : "removeprefix", "affix");
  const Value affix = reader.Get(0);
  if (!affix.is_string()) return TypeError(absl::StrCat("must be str, not ", TypeName(affix)));
  const std::string& text = self.as_string();
  const std::string& a = affix.as_string();
  if (a.empty() || a.size() > text.size()) return self;
  if (suffix && text.compare(text.size() - a.size(), a.size(), a) == 0) {
    return Value::String(text.substr(0, text.size() - a.size()));
  }
  if (!suffix && text.compare(0, a.size(), a) == 0) return Value::String(text.substr(a.size()));
  return self;
}

absl::StatusOr<Value> StrRemovePrefix(RenderContext&, const Value& self, const CallArgs& args) {
  return RemoveAffix(self, args, false);
}
absl::StatusOr<Value> StrRemoveSuffix(RenderContext&, const Value& self, const CallArgs& args) {
  return RemoveAffix(self, args, true);
}

// str.isX(): true when the text is non-empty and every code point passes.
template <bool (*Predicate)(char32_t)>
absl::StatusOr<Value> AllCodePoints(RenderContext&, const Value& self, const CallArgs& args) {
  const std::string& text = self.as_string();
  if (text.empty()) return Value::Bool(false);
  size_t pos = 0;
  while (pos < text.size()) {
    if (!Predicate(NextCodePoint(text, &pos))) return Value::Bool(false);
  }
  return Value::Bool(true);
}

bool IsAlnum(char32_t c) { return IsAlphaCodePoint(c) || IsDigitCodePoint(c); }

// isupper/islower: at least one cased character and no cased character of the other case.
template <bool kUpper>
absl::StatusOr<Value> CaseTest(RenderContext&, const Value& self, const CallArgs& args) {
  const std::string& text = self.as_string();
  bool cased = false;
  size_t pos = 0;
  while (pos < text.size()) {
    const char32_t c = NextCodePoint(text, &pos);
    if (kUpper ? IsLowerCodePoint(c) : IsUpperCodePoint(c)) return Value::Bool(false);
    if (kUpper ? IsUpperCodePoint(c) : IsLowerCodePoint(c)) cased = true;
  }
  return Value::Bool(cased);
}

absl::StatusOr<Value> DictItems(RenderContext& context, const Value& self, const CallArgs& args) {
  if (absl::StatusOr<Value> ok = NoArgs(args, "items"); !ok.ok()) return ok.status();
  if (absl::Status s = context.Charge(static_cast<int64_t>(self.dict().size())); !s.ok()) return s;
  std::vector<Value> items;
  items.reserve(self.dict().size());
  for (const auto& [key, value] : self.dict().entries()) items.push_back(Value::Tuple({key, value}));
  return Value::List(std::move(items));
}

absl::StatusOr<Value> DictKeys(RenderContext& context, const Value& self, const CallArgs& args) {
  if (absl::StatusOr<Value> ok = NoArgs(args, "keys"); !ok.ok()) return ok.status();
  if (absl::Status s = context.Charge(static_cast<int64_t>(self.dict().size())); !s.ok()) return s;
  std::vector<Value> keys;
  for (const auto& entry : self.dict().entries()) keys.push_back(entry.first);
  return Value::List(std::move(keys));
}

absl::StatusOr<Value> DictValues(RenderContext& context, const Value& self, const CallArgs& args) {
  if (absl::StatusOr<Value> ok = NoArgs(args, "values"); !ok.ok()) return ok.status();
  if (absl::Status s = context.Charge(static_cast<int64_t>(self.dict().size())); !s.ok()) return s;
  std::vector<Value> values;
  for (const auto& entry : self.dict().entries()) values.push_back(entry.second);
  return Value::List(std::move(values));
}

absl::StatusOr<Value> DictGet(RenderContext&, const Value& self, const CallArgs& args) {
  TANDEM_METHOD_READ(reader, "get", "key", "default");
  if (!reader.Has(0)) return TypeError("get expected at least 1 argument, got 0");
  const Value* value = self.dict().Find(reader.Get(0));
  return value ? *value : reader.Get(1, Value::None());
}

absl::StatusOr<Value> Copy(RenderContext&, const Value& self, const CallArgs& args) {
  if (absl::StatusOr<Value> ok = NoArgs(args, "copy"); !ok.ok()) return ok.status();
  return self;  // values are immutable: sharing is copying
}

absl::StatusOr<Value> ListIndex(RenderContext&, const Value& self, const CallArgs& args) {
  TANDEM_METHOD_READ(reader, "index", "value");
  const auto& items = self.items();
  for (size_t i = 0; i < items.size(); ++i) {
    if (Equals(items[i], reader.Get(0))) return Value::Int(static_cast<int64_t>(i));
  }
  return absl::InvalidArgumentError(absl::StrCat(ToRepr(reader.Get(0)), " is not in list"));
}

absl::StatusOr<Value> ListCount(RenderContext&, const Value& self, const CallArgs& args) {
  TANDEM_METHOD_READ(reader, "count", "value");
  int64_t n = 0;
  for (const Value& item : self.items()) n += Equals(item, reader.Get(0)) ? 1 : 0;
  return Value::Int(n);
}

const absl::flat_hash_map<std::string, Method>& StringMethods() {
  static const auto* const methods = new absl::flat_hash_map<std::string, Method>{
      {"strip", StrStrip},
      {"lstrip", StrLStrip},
      {"rstrip", StrRStrip},
      {"split", StrSplit},
      {"rsplit", StrRSplit},
      {"splitlines", StrSplitLines},
      {"startswith", StrStartsWith},
      {"endswith", StrEndsWith},
      {"upper", StrUpper},
      {"lower", StrLower},
      {"title", StrTitle},
      {"capitalize", StrCapitalize},
      {"swapcase", StrSwapCase},
      {"replace", StrReplace},
      {"find", StrFind},
      {"rfind", StrRFind},
      {"index", StrIndex},
      {"rindex", StrRIndex},
      {"count", StrCount},
      {"join", StrJoin},
      {"format", StrFormatMethod},
      {"center", StrCenter},
      {"ljust", StrLJust},
      {"rjust", StrRJust},
      {"zfill", StrZFill},
      {"partition", StrPartition},
      {"rpartition", StrRPartition},
      {"removeprefix", StrRemovePrefix},
      {"removesuffix", StrRemoveSuffix},
      {"isdigit", AllCodePoints<IsDigitCodePoint>},
      {"isnumeric", AllCodePoints<IsDigitCodePoint>},
      {"isdecimal", AllCodePoints<IsDigitCodePoint>},
      {"isalpha", AllCodePoints<IsAlphaCodePoint>},
      {"isalnum", AllCodePoints<IsAlnum>},
      {"isspace", AllCodePoints<IsPythonSpace>},
      {"isupper", CaseTest<true>},
      {"islower", CaseTest<false>},
  };
  return *methods;
}

const absl::flat_hash_map<std::string, Method>& DictMethods() {
  static const auto* const methods = new absl::flat_hash_map<std::string, Method>{
      {"items", DictItems}, {"keys", DictKeys}, {"values", DictValues}, {"get", DictGet}, {"copy", Copy}};
  return *methods;
}

const absl::flat_hash_map<std::string, Method>& ListMethods() {
  static const auto* const methods =
      new absl::flat_hash_map<std::string, Method>{{"index", ListIndex}, {"count", ListCount}, {"copy", Copy}};
  return *methods;
}

}  // namespace

std::optional<Value> FindMethod(const Value& object, const std::string& name) {
  const absl::flat_hash_map<std::string, Method>* table = nullptr;
  if (object.is_string()) {
    table = &StringMethods();
  } else if (object.is_dict()) {
    table = &DictMethods();
  } else if (object.is_list()) {
    table = &ListMethods();
  }
  if (table == nullptr) return std::nullopt;
  auto it = table->find(name);
  if (it == table->end()) return std::nullopt;
  const Method method = it->second;
  return Value::Function(
      absl::StrCat(TypeName(object), ".", name),
      [object, method](RenderContext& context, CallArgs& args) -> absl::StatusOr<Value> {
        if (object.is_string()) {
          if (absl::Status s = context.Charge(1 + static_cast<int64_t>(object.as_string().size() / 256)); !s.ok()) {
            return s;
          }
        }
        return method(context, object, args);
      });
}

bool IsUnsafeMethod(const Value& object, const std::string& name) {
  static const auto* const list_mutators = new absl::flat_hash_set<std::string>{
      "append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear", "__setitem__", "__delitem__"};
  static const auto* const dict_mutators = new absl::flat_hash_set<std::string>{
      "pop", "popitem", "update", "setdefault", "clear", "__setitem__", "__delitem__"};
  if (name.size() >= 2 && name[0] == '_' && name[1] == '_') return true;  // Python internals
  if (object.is_list() && !object.is_tuple()) return list_mutators->contains(name);
  if (object.is_dict()) return dict_mutators->contains(name);
  return false;
}

}  // namespace tandem::jinja
