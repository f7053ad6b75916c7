#include "chat/jinja_value.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "chat/jinja_strings.h"

namespace tandem::jinja {
namespace {

int MaxDepth(const std::vector<Value>& items) {
  int depth = 0;
  for (const Value& item : items) depth = std::max(depth, item.depth());
  return depth;
}

const std::string& EmptyString() {
  static const std::string* const empty = new std::string();
  return *empty;
}

// Compares an int with a float exactly (long double holds every int64 on the platforms we build).
int CompareNumbers(const Value& a, const Value& b) {
  if (!a.is_float() && !b.is_float()) {
    const int64_t x = a.as_integer();
    const int64_t y = b.as_integer();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  const long double x = a.is_float() ? a.as_float() : static_cast<long double>(a.as_integer());
  const long double y = b.is_float() ? b.as_float() : static_cast<long double>(b.as_integer());
  if (x < y) return -1;
  if (x > y) return 1;
  return 0;
}

// Namespaces are mutable and may contain themselves, so repr() tracks the namespaces it is inside:
// a cycle prints as Python does ("{...}"), and so does nesting past kMaxNamespaceNesting (which
// only a pathological template builds, and which would otherwise exhaust the stack).
constexpr size_t kMaxNamespaceNesting = 64;

void AppendRepr(const Value& value, std::string* out, std::vector<const NamespaceData*>* open_namespaces);

void AppendSequenceRepr(const Value& value, std::string* out, std::vector<const NamespaceData*>* open_namespaces) {
  const bool tuple = value.is_tuple();
  out->push_back(tuple ? '(' : '[');
  bool first = true;
  for (const Value& item : value.items()) {
    if (!first) out->append(", ");
    first = false;
    AppendRepr(item, out, open_namespaces);
  }
  if (tuple && value.items().size() == 1) out->push_back(',');
  out->push_back(tuple ? ')' : ']');
}

void AppendDictRepr(const DictData& dict, std::string* out, std::vector<const NamespaceData*>* open_namespaces) {
  out->push_back('{');
  bool first = true;
  for (const auto& [key, item] : dict.entries()) {
    if (!first) out->append(", ");
    first = false;
    AppendRepr(key, out, open_namespaces);
    out->append(": ");
    AppendRepr(item, out, open_namespaces);
  }
  out->push_back('}');
}

void AppendRepr(const Value& value, std::string* out, std::vector<const NamespaceData*>* open_namespaces) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      out->append("Undefined");
      return;
    case Value::Kind::kString:
      out->append(PyRepr(value.as_string()));
      return;
    case Value::Kind::kList:
      AppendSequenceRepr(value, out, open_namespaces);
      return;
    case Value::Kind::kDict:
      AppendDictRepr(value.dict(), out, open_namespaces);
      return;
    case Value::Kind::kNamespace: {
      const NamespaceData& ns = value.ns();
      if (ns.is_loop) {
        const Value* index = ns.attributes.Find("index");
        const Value* length = ns.attributes.Find("length");
        out->append(
            absl::StrCat("<LoopContext ", index ? ToStr(*index) : "?", "/", length ? ToStr(*length) : "?", ">"));
        return;
      }
      out->append("<Namespace ");
      const bool cycle = std::find(open_namespaces->begin(), open_namespaces->end(), &ns) != open_namespaces->end();
      if (cycle || open_namespaces->size() >= kMaxNamespaceNesting) {
        out->append("{...}>");
        return;
      }
      open_namespaces->push_back(&ns);
      AppendDictRepr(ns.attributes, out, open_namespaces);
      open_namespaces->pop_back();
      out->push_back('>');
      return;
    }
    case Value::Kind::kCallable:
      out->append(absl::StrCat("<function ", value.callable().name, ">"));
      return;
    default:
      out->append(ToStr(value));
      return;
  }
}

}  // namespace

Value Value::Undefined(std::string hint) {
  Value v;
  if (!hint.empty()) v.data_ = UndefinedTag{std::make_shared<const std::string>(std::move(hint))};
  return v;
}

Value Value::None() {
  Value v;
  v.data_ = NoneTag{};
  return v;
}

Value Value::Bool(bool value) {
  Value v;
  v.data_ = value;
  return v;
}

Value Value::Int(int64_t value) {
  Value v;
  v.data_ = value;
  return v;
}

Value Value::Float(double value) {
  Value v;
  v.data_ = value;
  return v;
}

Value Value::String(std::string value) {
  Value v;
  v.data_ = std::make_shared<const std::string>(std::move(value));
  return v;
}

Value Value::List(std::vector<Value> items) {
  auto data = std::make_shared<ListData>();
  data->depth = 1 + MaxDepth(items);
  data->items = std::move(items);
  Value v;
  v.data_ = ListPtr(std::move(data));
  return v;
}

Value Value::Tuple(std::vector<Value> items) {
  auto data = std::make_shared<ListData>();
  data->depth = 1 + MaxDepth(items);
  data->items = std::move(items);
  data->is_tuple = true;
  Value v;
  v.data_ = ListPtr(std::move(data));
  return v;
}

Value Value::Dict(DictData dict) {
  Value v;
  v.data_ = std::make_shared<const DictData>(std::move(dict));
  return v;
}

Value Value::Namespace(std::shared_ptr<NamespaceData> ns) {
  Value v;
  v.data_ = std::move(ns);
  return v;
}

Value Value::Function(std::string name, NativeFunction function) {
  Value v;
  v.data_ = std::make_shared<const Callable>(Callable{std::move(name), std::move(function)});
  return v;
}

absl::StatusOr<Value> Value::FromJson(const nlohmann::ordered_json& json, int max_depth) {
  using Type = nlohmann::ordered_json::value_t;
  switch (json.type()) {
    case Type::null:
      return None();
    case Type::boolean:
      return Bool(json.get<bool>());
    case Type::number_integer:
      return Int(json.get<int64_t>());
    case Type::number_unsigned: {
      const uint64_t u = json.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return Int(static_cast<int64_t>(u));
      return Float(static_cast<double>(u));
    }
    case Type::number_float:
      return Float(json.get<double>());
    case Type::string:
      return String(json.get<std::string>());
    case Type::array:
    case Type::object: {
      if (max_depth <= 0) return absl::InvalidArgumentError("JSON value nested too deeply");
      if (json.is_array()) {
        std::vector<Value> items;
        items.reserve(json.size());
        for (const auto& element : json) {
          absl::StatusOr<Value> item = FromJson(element, max_depth - 1);
          if (!item.ok()) return item.status();
          items.push_back(*std::move(item));
        }
        return List(std::move(items));
      }
      DictData dict;
      for (const auto& [key, element] : json.items()) {
        absl::StatusOr<Value> item = FromJson(element, max_depth - 1);
        if (!item.ok()) return item.status();
        dict.Set(String(key), *std::move(item));
      }
      return Dict(std::move(dict));
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("unsupported JSON value of type ", json.type_name()));
  }
}

bool Value::is_tuple() const { return is_list() && std::get<ListPtr>(data_)->is_tuple; }

bool Value::is_callable() const {
  if (kind() == Kind::kCallable) return true;
  return is_namespace() && static_cast<bool>(ns().call);
}

double Value::as_double() const { return is_float() ? as_float() : static_cast<double>(as_integer()); }

const std::vector<Value>& Value::items() const { return std::get<ListPtr>(data_)->items; }

const Callable& Value::callable() const { return *std::get<CallablePtr>(data_); }

const std::string& Value::undefined_hint() const {
  const UndefinedTag& tag = std::get<UndefinedTag>(data_);
  return tag.hint ? *tag.hint : EmptyString();
}

bool Value::Truthy() const {
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return as_bool();
    case Kind::kInt:
      return as_int() != 0;
    case Kind::kFloat:
      return as_float() != 0.0;
    case Kind::kString:
      return !as_string().empty();
    case Kind::kList:
      return !items().empty();
    case Kind::kDict:
      return !dict().empty();
    default:
      return true;
  }
}

int Value::depth() const {
  switch (kind()) {
    case Kind::kList:
      return std::get<ListPtr>(data_)->depth;
    case Kind::kDict:
      return dict().depth();
    case Kind::kNamespace:
    case Kind::kCallable:
      return 1;
    default:
      return 0;
  }
}

bool Value::SameObject(const Value& other) const {
  if (kind() != other.kind()) return false;
  switch (kind()) {
    case Kind::kString:
      return std::get<StringPtr>(data_) == std::get<StringPtr>(other.data_);
    case Kind::kList:
      return std::get<ListPtr>(data_) == std::get<ListPtr>(other.data_);
    case Kind::kDict:
      return std::get<DictPtr>(data_) == std::get<DictPtr>(other.data_);
    case Kind::kNamespace:
      return std::get<NamespacePtr>(data_) == std::get<NamespacePtr>(other.data_);
    case Kind::kCallable:
      return std::get<CallablePtr>(data_) == std::get<CallablePtr>(other.data_);
    default:
      return Equals(*this, other);
  }
}

const Value* DictData::Find(const Value& key) const {
  if (key.is_string()) return Find(absl::string_view(key.as_string()));
  for (const auto& [k, v] : entries_) {
    if (!k.is_string() && Equals(k, key)) return &v;
  }
  return nullptr;
}

const Value* DictData::Find(absl::string_view key) const {
  auto it = string_index_.find(key);
  return it == string_index_.end() ? nullptr : &entries_[it->second].second;
}

void DictData::Set(Value key, Value value) {
  depth_ = std::max({depth_, 1 + key.depth(), 1 + value.depth()});
  if (key.is_string()) {
    auto [it, inserted] = string_index_.try_emplace(key.as_string(), entries_.size());
    if (!inserted) {
      entries_[it->second].second = std::move(value);
      return;
    }
  } else {
    for (auto& entry : entries_) {
      if (!entry.first.is_string() && Equals(entry.first, key)) {
        entry.second = std::move(value);
        return;
      }
    }
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

const char* TypeName(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      return "Undefined";
    case Value::Kind::kNone:
      return "NoneType";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return "str";
    case Value::Kind::kList:
      return value.is_tuple() ? "tuple" : "list";
    case Value::Kind::kDict:
      return "dict";
    case Value::Kind::kNamespace:
      return value.ns().is_loop ? "LoopContext" : "Namespace";
    case Value::Kind::kCallable:
      return "function";
  }
  return "object";
}

bool Equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (!a.is_float() && !b.is_float()) return a.as_integer() == b.as_integer();
    const long double x = a.is_float() ? a.as_float() : static_cast<long double>(a.as_integer());
    const long double y = b.is_float() ? b.as_float() : static_cast<long double>(b.as_integer());
    return x == y;
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.as_string() == b.as_string();
    case Value::Kind::kList: {
      if (a.is_tuple() != b.is_tuple()) return false;
      const auto& x = a.items();
      const auto& y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!Equals(x[i], y[i])) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      const DictData& x = a.dict();
      const DictData& y = b.dict();
      if (x.size() != y.size()) return false;
      for (const auto& [key, value] : x.entries()) {
        const Value* other = y.Find(key);
        if (other == nullptr || !Equals(value, *other)) return false;
      }
      return true;
    }
    default:
      return a.SameObject(b);
  }
}

absl::StatusOr<int> Compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return CompareNumbers(a, b);
  if (a.is_string() && b.is_string()) {
    const int c = a.as_string().compare(b.as_string());  // UTF-8 byte order is code point order
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (Equals(x[i], y[i])) continue;
      return Compare(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'<' not supported between instances of '", TypeName(a), "' and '", TypeName(b), "'"));
}

std::string ToStr(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      return "";
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return value.as_bool() ? "True" : "False";
    case Value::Kind::kInt:
      return absl::StrCat(value.as_int());
    case Value::Kind::kFloat:
      return PyFloatRepr(value.as_float());
    case Value::Kind::kString:
      return value.as_string();
    default:
      return ToRepr(value);
  }
}

std::string ToRepr(const Value& value) {
  std::string out;
  std::vector<const NamespaceData*> open_namespaces;
  AppendRepr(value, &out, &open_namespaces);
  return out;
}

}  // namespace tandem::jinja
