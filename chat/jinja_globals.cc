#include "chat/jinja_globals.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "chat/jinja_context.h"
#include "chat/jinja_format.h"
#include "chat/jinja_operators.h"

namespace tandem::jinja {
namespace {

absl::StatusOr<Value> Range(RenderContext& context, CallArgs& args) {
  if (!args.keywords.empty()) return TypeError("range() takes no keyword arguments");
  const size_t n = args.positional.size();
  if (n < 1 || n > 3) return TypeError(absl::StrCat("range expected 1 to 3 arguments, got ", n));
  int64_t bounds[3] = {0, 0, 1};
  for (size_t i = 0; i < n; ++i) {
    const Value& v = args.positional[i];
    if (!v.is_int() && !v.is_bool()) {
      return TypeError(absl::StrCat("'", TypeName(v), "' object cannot be interpreted as an integer"));
    }
  }
  if (n == 1) {
    bounds[1] = args.positional[0].as_integer();
  } else {
    bounds[0] = args.positional[0].as_integer();
    bounds[1] = args.positional[1].as_integer();
    if (n == 3) bounds[2] = args.positional[2].as_integer();
  }
  const int64_t start = bounds[0];
  const int64_t stop = bounds[1];
  const int64_t step = bounds[2];
  if (step == 0) return absl::InvalidArgumentError("range() arg 3 must not be zero");
  // Count in 128 bits: start and stop may be far apart.
  __int128 count = 0;
  if (step > 0 && start < stop) count = (static_cast<__int128>(stop) - start - 1) / step + 1;
  if (step < 0 && start > stop) count = (static_cast<__int128>(start) - stop - 1) / -static_cast<__int128>(step) + 1;
  if (count > kMaxRange) {
    return absl::ResourceExhaustedError(
        absl::StrCat("Range too big. The sandbox blocks ranges larger than MAX_RANGE (", kMaxRange, ")."));
  }
  if (absl::Status s = context.Charge(static_cast<int64_t>(count)); !s.ok()) return s;
  std::vector<Value> items;
  items.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < static_cast<int64_t>(count); ++i) items.push_back(Value::Int(start + i * step));
  return Value::List(std::move(items));
}

// Python dict(mapping_or_pairs, **kwargs) into `dict`.
absl::Status Update(DictData* dict, const CallArgs& args, const char* name) {
  if (args.positional.size() > 1) return TypeError(absl::StrCat(name, " expected at most 1 argument"));
  if (!args.positional.empty()) {
    const Value& source = args.positional[0];
    if (source.is_undefined()) return UndefinedError(source);  // Python asks it for .keys()
    if (source.is_dict()) {
      for (const auto& [key, value] : source.dict().entries()) dict->Set(key, value);
    } else if (source.is_namespace()) {
      for (const auto& [key, value] : source.ns().attributes.entries()) dict->Set(key, value);
    } else {
      absl::StatusOr<std::vector<Value>> pairs = Iterate(source);
      if (!pairs.ok()) return pairs.status();
      for (const Value& pair : *pairs) {
        if (!pair.is_list() || pair.items().size() != 2) {
          return TypeError("dictionary update sequence element has the wrong length; 2 is required");
        }
        dict->Set(pair.items()[0], pair.items()[1]);
      }
    }
  }
  for (const auto& [key, value] : args.keywords) dict->Set(Value::String(key), value);
  return absl::OkStatus();
}

absl::StatusOr<Value> Dict(RenderContext& context, CallArgs& args) {
  DictData dict;
  if (absl::Status s = Update(&dict, args, "dict"); !s.ok()) return s;
  Value value = Value::Dict(std::move(dict));
  if (absl::Status s = context.CheckValueDepth(value); !s.ok()) return s;
  return value;
}

absl::StatusOr<Value> Namespace(RenderContext& context, CallArgs& args) {
  auto ns = context.NewNamespace();
  DictData attributes;
  if (absl::Status s = Update(&attributes, args, "namespace"); !s.ok()) return s;
  for (const auto& [key, value] : attributes.entries()) {
    if (!key.is_string()) return TypeError("namespace attribute names must be strings");
  }
  ns->attributes = std::move(attributes);
  Value value = Value::Namespace(std::move(ns));
  if (absl::Status s = context.CheckValueDepth(value); !s.ok()) return s;
  return value;
}

absl::StatusOr<Value> Joiner(RenderContext&, CallArgs& args) {
  ArgReader reader(args, "joiner", {"sep"});
  if (!reader.status().ok()) return reader.status();
  const std::string separator = ToStr(reader.Get(0, Value::String(", ")));
  auto used = std::make_shared<bool>(false);
  return Value::Function("joiner", [separator, used](RenderContext&, CallArgs&) -> absl::StatusOr<Value> {
    if (!*used) {
      *used = true;
      return Value::String("");
    }
    return Value::String(separator);
  });
}

absl::StatusOr<Value> RaiseException(RenderContext&, CallArgs& args) {
  ArgReader reader(args, "raise_exception", {"message"});
  if (!reader.status().ok()) return reader.status();
  if (!reader.Has(0)) return TypeError("raise_exception() missing 1 required positional argument: 'message'");
  return TemplateRaisedError(ToStr(reader.Get(0)));
}

absl::StatusOr<Value> StrftimeNow(RenderContext& context, CallArgs& args) {
  ArgReader reader(args, "strftime_now", {"format"});
  if (!reader.status().ok()) return reader.status();
  const Value format = reader.Get(0);
  if (!format.is_string()) return TypeError("strftime() argument 1 must be str");
  return Value::String(Strftime(format.as_string(), context.Now()));
}

}  // namespace

const DictData& BuiltinGlobals() {
  static const DictData* const globals = [] {
    auto* g = new DictData();
    g->Set(Value::String("range"), Value::Function("range", Range));
    g->Set(Value::String("dict"), Value::Function("dict", Dict));
    g->Set(Value::String("namespace"), Value::Function("namespace", Namespace));
    g->Set(Value::String("joiner"), Value::Function("joiner", Joiner));
    g->Set(Value::String("raise_exception"), Value::Function("raise_exception", RaiseException));
    g->Set(Value::String("strftime_now"), Value::Function("strftime_now", StrftimeNow));
    return g;
  }();
  return *globals;
}

}  // namespace tandem::jinja
