// The collection filters of jinja_filters.h, with Jinja's semantics: attribute paths ("a.b.0")
// looked up like x[...] (so a missing one is undefined), strings compared case-insensitively
// unless case_sensitive is set, and each item walked charged to the work budget.
#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "chat/jinja_filters.h"
#include "chat/jinja_operators.h"
#include "chat/jinja_strings.h"
#include "chat/jinja_tests.h"

namespace tandem::jinja {
namespace {

#define TANDEM_FILTER_READ(reader, name, ...)  \
  ArgReader reader(args, name, {__VA_ARGS__}); \
  if (!reader.status().ok()) return reader.status()

// The items of `input`, charged to the budget.
absl::StatusOr<std::vector<Value>> Items(RenderContext& context, const Value& input) {
  absl::StatusOr<std::vector<Value>> items = Iterate(input);
  if (!items.ok()) return items.status();
  if (absl::Status s = context.Charge(static_cast<int64_t>(items->size())); !s.ok()) return s;
  return items;
}

// Jinja's make_attrgetter: "a.b.0" is item["a"]["b"][0]; an int attribute is one index.
class AttributePath {
 public:
  explicit AttributePath(const Value& attribute) {
    if (attribute.is_none() || attribute.is_undefined()) return;
    if (!attribute.is_string()) {
      parts_.push_back(attribute);
      return;
    }
    for (absl::string_view part : absl::StrSplit(attribute.as_string(), '.')) {
      const bool digits = !part.empty() && part.find_first_not_of("0123456789") == absl::string_view::npos;
      parts_.push_back(digits && part.size() < 18 ? Value::Int(std::stoll(std::string(part)))
                                                  : Value::String(std::string(part)));
    }
  }

  absl::StatusOr<Value> Get(Value item, const Value& fallback = Value::None()) const {
    for (const Value& part : parts_) {
      absl::StatusOr<Value> next = GetItem(item, part);
      if (!next.ok()) return next.status();
      item = *std::move(next);
    }
    if (!fallback.is_none() && item.is_undefined()) return fallback;
    return item;
  }

 private:
  std::vector<Value> parts_;
};

Value IgnoreCase(const Value& value, bool case_sensitive) {
  if (case_sensitive || !value.is_string()) return value;
  return Value::String(PyLower(value.as_string()));
}

// Stable sort by `key`, Python's sorted(..., reverse=...).
absl::Status SortByKey(std::vector<std::pair<Value, Value>>* keyed, bool reverse) {
  absl::Status status;
  std::stable_sort(keyed->begin(), keyed->end(), [&status, reverse](const auto& a, const auto& b) {
    absl::StatusOr<int> c = reverse ? Compare(b.first, a.first) : Compare(a.first, b.first);
    if (!c.ok()) {
      if (status.ok()) status = c.status();
      return false;
    }
    return *c < 0;
  });
  return status;
}

// select / reject / selectattr / rejectattr.
absl::StatusOr<Value> SelectOrReject(RenderContext& context, const Value& input, const CallArgs& args, bool select,
                                     bool by_attribute) {
  size_t offset = 0;
  AttributePath path(Value::None());
  if (by_attribute) {
    if (args.positional.empty()) return absl::InvalidArgumentError("Missing parameter for attribute name");
    path = AttributePath(args.positional[0]);
    offset = 1;
  }
  std::optional<std::string> test;
  CallArgs test_args;
  if (args.positional.size() > offset) {
    if (!args.positional[offset].is_string()) return TypeError("test name must be a string");
    test = args.positional[offset].as_string();
    test_args.positional.assign(args.positional.begin() + static_cast<ptrdiff_t>(offset) + 1, args.positional.end());
    test_args.keywords = args.keywords;
  }
  if (!input.Truthy()) return Value::List({});  // Jinja checks `if value:` before iterating
  absl::StatusOr<std::vector<Value>> items = Items(context, input);
  if (!items.ok()) return items.status();
  std::vector<Value> kept;
  for (const Value& item : *items) {
    absl::StatusOr<Value> subject = path.Get(item);
    if (!subject.ok()) return subject.status();
    bool passed;
    if (test) {
      absl::StatusOr<bool> result = ApplyTest(context, *test, *subject, test_args);
      if (!result.ok()) return result.status();
      passed = *result;
    } else {
      passed = subject->Truthy();
    }
    if (passed == select) kept.push_back(item);
  }
  return Value::List(std::move(kept));
}

// min / max.
absl::StatusOr<Value> Extreme(RenderContext& context, const Value& input, const CallArgs& args, bool want_max) {
  TANDEM_FILTER_READ(reader, want_max ? "max" : "min", "case_sensitive", "attribute");
  const bool case_sensitive = reader.Get(0, Value::Bool(false)).Truthy();
  const AttributePath path(reader.Get(1, Value::None()));
  absl::StatusOr<std::vector<Value>> items = Items(context, input);
  if (!items.ok()) return items.status();
  if (items->empty()) return Value::Undefined("No aggregated item, sequence was empty.");
  std::optional<Value> best;
  Value best_key;
  for (const Value& item : *items) {
    absl::StatusOr<Value> key = path.Get(item);
    if (!key.ok()) return key.status();
    const Value k = IgnoreCase(*key, case_sensitive);
    if (best) {
      absl::StatusOr<int> c = Compare(k, best_key);
      if (!c.ok()) return c.status();
      if (want_max ? *c <= 0 : *c >= 0) continue;
    }
    best = item;
    best_key = k;
  }
  return *best;
}

// A hashable identity for unique(): Python's dict-key equality for the scalar cases.
std::string UniqueKey(const Value& value) {
  if (value.is_int() || value.is_bool()) return absl::StrCat("n:", value.as_integer());
  if (value.is_float()) {
    const double x = value.as_float();
    if (x == static_cast<double>(static_cast<int64_t>(x))) return absl::StrCat("n:", static_cast<int64_t>(x));
    return absl::StrCat("f:", PyFloatRepr(x));
  }
  return absl::StrCat("r:", ToRepr(value));
}

}  // namespace

absl::StatusOr<Value> FilterBatch(RenderContext& context, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "batch", "linecount", "fill_with");
  const Value count = reader.Get(0);
  if (!count.is_int() || count.as_int() < 1)
    return absl::InvalidArgumentError("batch linecount must be a positive int");
  const size_t line_count = static_cast<size_t>(count.as_int());
  const Value fill = reader.Get(1, Value::None());
  absl::StatusOr<std::vector<Value>> items = Items(context, input);
  if (!items.ok()) return items.status();
  std::vector<Value> batches;
  for (size_t i = 0; i < items->size(); i += line_count) {
    std::vector<Value> batch(items->begin() + static_cast<ptrdiff_t>(i),
                             items->begin() + static_cast<ptrdiff_t>(std::min(items->size(), i + line_count)));
    if (!fill.is_none()) {
      if (absl::Status s = context.Charge(static_cast<int64_t>(line_count)); !s.ok()) return s;
      batch.resize(std::max(batch.size(), line_count), fill);
    }
    batches.push_back(Value::List(std::move(batch)));
  }
  return Value::List(std::move(batches));
}

absl::StatusOr<Value> FilterLength(RenderContext&, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "length");
  switch (input.kind()) {
    case Value::Kind::kUndefined:
      return Value::Int(0);
    case Value::Kind::kString:
      return Value::Int(static_cast<int64_t>(CodePointCount(input.as_string())));
    case Value::Kind::kList:
      return Value::Int(static_cast<int64_t>(input.items().size()));
    case Value::Kind::kDict:
      return Value::Int(static_cast<int64_t>(input.dict().size()));
    default:
      return TypeError(absl::StrCat("object of type '", TypeName(input), "' has no len()"));
  }
}

absl::StatusOr<Value> FilterDictSort(RenderContext& context, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "dictsort", "case_sensitive", "by", "reverse");
  if (!input.is_dict()) return TypeError("dictsort expects a mapping");
  const bool case_sensitive = reader.Get(0, Value::Bool(false)).Truthy();
  const Value by = reader.Get(1, Value::String("key"));
  if (!by.is_string() || (by.as_string() != "key" && by.as_string() != "value")) {
    return absl::InvalidArgumentError("You can only sort by either \"key\" or \"value\"");
  }
  if (absl::Status s = context.Charge(static_cast<int64_t>(input.dict().size())); !s.ok()) return s;
  std::vector<std::pair<Value, Value>> keyed;
  for (const auto& [key, value] : input.dict().entries()) {
    keyed.emplace_back(IgnoreCase(by.as_string() == "key" ? key : value, case_sensitive), Value::Tuple({key, value}));
  }
  if (absl::Status s = SortByKey(&keyed, reader.Get(2, Value::Bool(false)).Truthy()); !s.ok()) return s;
  std::vector<Value> out;
  for (auto& [key, pair] : keyed) out.push_back(std::move(pair));
  return Value::List(std::move(out));
}

absl::StatusOr<Value> FilterFirst(RenderContext& context, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "first");
  if (input.is_list()) {
    if (input.items().empty()) return Value::Undefined("No first item, sequence was empty.");
    return input.items().front();
  }
  absl::StatusOr<std::vector<Value>> items = Items(context, input);
  if (!items.ok()) return items.status();
  if (items->empty()) return Value::Undefined("No first item, sequence was empty.");
  return items->front();
}

absl::StatusOr<Value> FilterLast(RenderContext& context, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "last");
  if (input.is_list()) {
    if (input.items().empty()) return Value::Undefined("No last item, sequence was empty.");
    return input.items().back();
  }
  absl::StatusOr<std::vector<Value>> items = Items(context, input);
  if (!items.ok()) return items.status();
  if (items->empty()) return Value::Undefined("No last item, sequence was empty.");
  return items->back();
}

absl::StatusOr<Value> FilterItems(RenderContext& context, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "items");
  if (input.is_undefined()) return Value::List({});
  if (!input.is_dict()) return TypeError("Can only get item pairs from a mapping.");
  if (absl::Status s = context.Charge(static_cast<int64_t>(input.dict().size())); !s.ok()) return s;
  std::vector<Value> pairs;
  for (const auto& [key, value] : input.dict().entries()) pairs.push_back(Value::Tuple({key, value}));
  return Value::List(std::move(pairs));
}

absl::StatusOr<Value> FilterJoin(RenderContext& context, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "join", "d", "attribute");
  const std::string separator = ToStr(reader.Get(0, Value::String("")));
  const AttributePath path(reader.Get(1, Value::None()));
  absl::StatusOr<std::vector<Value>> items = Items(context, input);
  if (!items.ok()) return items.status();
  std::string out;
  for (size_t i = 0; i < items->size(); ++i) {
    absl::StatusOr<Value> item = path.Get((*items)[i]);
    if (!item.ok()) return item.status();
    if (i > 0) out += separator;
    out += ToStr(*item);
    if (absl::Status s = context.CheckSize(out.size()); !s.ok()) return s;
  }
  return Value::String(std::move(out));
}

absl::StatusOr<Value> FilterList(RenderContext& context, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "list");
  if (input.is_list() && !input.is_tuple()) return input;
  absl::StatusOr<std::vector<Value>> items = Items(context, input);
  if (!items.ok()) return items.status();
  return Value::List(*std::move(items));
}

absl::StatusOr<Value> FilterMap(RenderContext& context, const Value& input, const CallArgs& args) {
  if (!input.Truthy()) return Value::List({});  // Jinja checks `if value:` before iterating
  absl::StatusOr<std::vector<Value>> items = Items(context, input);
  if (!items.ok()) return items.status();
  std::vector<Value> out;
  out.reserve(items->size());
  if (args.positional.empty()) {
    Value attribute;
    Value fallback = Value::None();
    for (const auto& [name, value] : args.keywords) {
      if (name == "attribute") {
        attribute = value;
      } else if (name == "default") {
        fallback = value;
      } else {
        return TypeError(absl::StrCat("Unexpected keyword argument '", name, "'"));
      }
    }
    if (attribute.is_undefined()) return absl::InvalidArgumentError("map requires a filter argument");
    const AttributePath path(attribute);
    for (const Value& item : *items) {
      absl::StatusOr<Value> mapped = path.Get(item, fallback);
      if (!mapped.ok()) return mapped.status();
      out.push_back(*std::move(mapped));
    }
    return Value::List(std::move(out));
  }
  if (!args.positional[0].is_string()) return TypeError("map filter name must be a string");
  const std::string filter = args.positional[0].as_string();
  CallArgs filter_args;
  filter_args.positional.assign(args.positional.begin() + 1, args.positional.end());
  filter_args.keywords = args.keywords;
  for (const Value& item : *items) {
    absl::StatusOr<Value> mapped = ApplyFilter(context, filter, item, filter_args);
    if (!mapped.ok()) return mapped.status();
    out.push_back(*std::move(mapped));
  }
  return Value::List(std::move(out));
}

absl::StatusOr<Value> FilterMax(RenderContext& context, const Value& input, const CallArgs& args) {
  return Extreme(context, input, args, true);
}

absl::StatusOr<Value> FilterMin(RenderContext& context, const Value& input, const CallArgs& args) {
  return Extreme(context, input, args, false);
}

absl::StatusOr<Value> FilterReject(RenderContext& context, const Value& input, const CallArgs& args) {
  return SelectOrReject(context, input, args, false, false);
}

absl::StatusOr<Value> FilterRejectAttr(RenderContext& context, const Value& input, const CallArgs& args) {
  return SelectOrReject(context, input, args, false, true);
}

absl::StatusOr<Value> FilterSelect(RenderContext& context, const Value& input, const CallArgs& args) {
  return SelectOrReject(context, input, args, true, false);
}

absl::StatusOr<Value> FilterSelectAttr(RenderContext& context, const Value& input, const CallArgs& args) {
  return SelectOrReject(context, input, args, true, true);
}

absl::StatusOr<Value> FilterReverse(RenderContext& context, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "reverse");
  if (input.is_string()) {
    std::u32string text = DecodeUtf8(input.as_string());
    std::reverse(text.begin(), text.end());
    return Value::String(EncodeUtf8(text));
  }
  absl::StatusOr<std::vector<Value>> items = Items(context, input);
  if (!items.ok()) return items.status();
  std::reverse(items->begin(), items->end());
  return Value::List(*std::move(items));
}

absl::StatusOr<Value> FilterSlice(RenderContext& context, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "slice", "slices", "fill_with");
  const Value slices_value = reader.Get(0);
  if (!slices_value.is_int() || slices_value.as_int() < 1 || slices_value.as_int() > 100000) {
    return absl::InvalidArgumentError("slice count must be an int in [1, 100000]");
  }
  const Value fill = reader.Get(1, Value::None());
  absl::StatusOr<std::vector<Value>> items = Items(context, input);
  if (!items.ok()) return items.status();
  const int64_t slices = slices_value.as_int();
  if (absl::Status s = context.Charge(slices); !s.ok()) return s;
  const int64_t length = static_cast<int64_t>(items->size());
  const int64_t per_slice = length / slices;
  const int64_t with_extra = length % slices;
  int64_t offset = 0;
  std::vector<Value> out;
  for (int64_t n = 0; n < slices; ++n) {
    const int64_t start = offset + n * per_slice;
    if (n < with_extra) ++offset;
    const int64_t end = offset + (n + 1) * per_slice;
    std::vector<Value> part(items->begin() + start, items->begin() + end);
    if (!fill.is_none() && n >= with_extra) part.push_back(fill);
    out.push_back(Value::List(std::move(part)));
  }
  return Value::List(std::move(out));
}

absl::StatusOr<Value> FilterSort(RenderContext& context, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "sort", "reverse", "case_sensitive", "attribute");
  const bool case_sensitive = reader.Get(1, Value::Bool(false)).Truthy();
  const AttributePath path(reader.Get(2, Value::None()));
  absl::StatusOr<std::vector<Value>> items = Items(context, input);
  if (!items.ok()) return items.status();
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& item : *items) {
    absl::StatusOr<Value> key = path.Get(item);
    if (!key.ok()) return key.status();
    keyed.emplace_back(IgnoreCase(*key, case_sensitive), item);
  }
  if (absl::Status s = SortByKey(&keyed, reader.Get(0, Value::Bool(false)).Truthy()); !s.ok()) return s;
  std::vector<Value> out;
  for (auto& [key, item] : keyed) out.push_back(std::move(item));
  return Value::List(std::move(out));
}

absl::StatusOr<Value> FilterSum(RenderContext& context, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "sum", "attribute", "start");
  const AttributePath path(reader.Get(0, Value::None()));
  Value total = reader.Get(1, Value::Int(0));
  absl::StatusOr<std::vector<Value>> items = Items(context, input);
  if (!items.ok()) return items.status();
  for (const Value& item : *items) {
    absl::StatusOr<Value> term = path.Get(item);
    if (!term.ok()) return term.status();
    absl::StatusOr<Value> next = BinaryOp(context, Op::kAdd, total, *term);
    if (!next.ok()) return next.status();
    total = *std::move(next);
  }
  return total;
}

absl::StatusOr<Value> FilterUnique(RenderContext& context, const Value& input, const CallArgs& args) {
  TANDEM_FILTER_READ(reader, "unique", "case_sensitive", "attribute");
  const bool case_sensitive = reader.Get(0, Value::Bool(false)).Truthy();
  const AttributePath path(reader.Get(1, Value::None()));
  absl::StatusOr<std::vector<Value>> items = Items(context, input);
  if (!items.ok()) return items.status();
  absl::flat_hash_set<std::string> seen;
  std::vector<Value> out;
  for (const Value& item : *items) {
    absl::StatusOr<Value> key = path.Get(item);
    if (!key.ok()) return key.status();
    if (seen.insert(UniqueKey(IgnoreCase(*key, case_sensitive))).second) out.push_back(item);
  }
  return Value::List(std::move(out));
}

}  // namespace tandem::jinja
