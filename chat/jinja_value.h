// The values a template computes with, modelled on the Python objects Jinja2 sees when Hugging Face
// renders a chat template: undefined, None, bool, int (int64 here), float, str (UTF-8), list, tuple,
// dict (insertion-ordered), namespace and callables.
//
// Values are cheap to copy: strings, lists and dicts are shared and immutable once built (the
// templates run in an immutable sandbox: no list.append, no dict.update). Namespaces are the one
// mutable, reference-semantics object, as in Jinja. Containers record their nesting depth so that
// the interpreter can refuse values nested deeper than its limit (and the recursive walkers here
// never run out of stack).
//
// Thread safety: a Value may be read from several threads only while no namespace it reaches is
// being assigned to; each render builds its own values.
#ifndef TANDEM_CHAT_JINJA_VALUE_H_
#define TANDEM_CHAT_JINJA_VALUE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace tandem::jinja {

class Value;
class RenderContext;  // jinja_context.h

// Arguments of a call: f(1, 2, key=3).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keywords;
};

using NativeFunction = std::function<absl::StatusOr<Value>(RenderContext& context, CallArgs& args)>;

struct Callable {
  std::string name;  // for repr and error messages
  NativeFunction function;
};

struct ListData;
class DictData;
struct NamespaceData;

class Value {
 public:
  enum class Kind : uint8_t { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kCallable };

  // The undefined value. `hint` is the UndefinedError message raised when it is used where a value
  // is required ("'foo' is undefined"); empty gives a generic message.
  Value() = default;
  static Value Undefined(std::string hint);
  static Value None();
  static Value Bool(bool value);
  static Value Int(int64_t value);
  static Value Float(double value);
  static Value String(std::string value);
  static Value List(std::vector<Value> items);
  static Value Tuple(std::vector<Value> items);
  static Value Dict(DictData dict);
  static Value Namespace(std::shared_ptr<NamespaceData> ns);
  static Value Function(std::string name, NativeFunction function);

  // Converts JSON; nesting deeper than `max_depth` is an InvalidArgument error. Integers past
  // int64 become floats.
  static absl::StatusOr<Value> FromJson(const nlohmann::ordered_json& json, int max_depth);

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  // bool, int or float: Python's numbers.Number (bool is an int).
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }  // list or tuple
  bool is_tuple() const;
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_namespace() const { return kind() == Kind::kNamespace; }
  bool is_callable() const;

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return std::get<int64_t>(data_); }
  double as_float() const { return std::get<double>(data_); }
  // int(x) for bool and int; callers check is_bool() || is_int().
  int64_t as_integer() const { return is_bool() ? (as_bool() ? 1 : 0) : as_int(); }
  // float(x) for any number.
  double as_double() const;
  const std::string& as_string() const { return *std::get<StringPtr>(data_); }
  const std::vector<Value>& items() const;  // list or tuple
  const DictData& dict() const { return *std::get<DictPtr>(data_); }
  NamespaceData& ns() const { return *std::get<NamespacePtr>(data_); }
  const Callable& callable() const;
  const std::string& undefined_hint() const;

  // Python truthiness: None, False, 0, 0.0, "", [], {} and undefined are false.
  bool Truthy() const;
  // Container nesting: 0 for scalars, 1 + the deepest element for lists and dicts, 1 for
  // namespaces and callables.
  int depth() const;
  // True when both refer to the same shared object (Python `is` for containers).
  bool SameObject(const Value& other) const;

 private:
  struct UndefinedTag {
    std::shared_ptr<const std::string> hint;
  };
  struct NoneTag {};
  using StringPtr = std::shared_ptr<const std::string>;
  using ListPtr = std::shared_ptr<const ListData>;
  using DictPtr = std::shared_ptr<const DictData>;
  using NamespacePtr = std::shared_ptr<NamespaceData>;
  using CallablePtr = std::shared_ptr<const Callable>;
  // Alternative order must match Kind.
  std::variant<UndefinedTag, NoneTag, bool, int64_t, double, StringPtr, ListPtr, DictPtr, NamespacePtr, CallablePtr>
      data_;
};

struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;
  int depth = 1;
};

// An insertion-ordered dict. Keys are usually strings (indexed by hash); other keys (ints, bools,
// None, floats, tuples) are found by Python equality, so 1, 1.0 and True are the same key.
class DictData {
 public:
  const Value* Find(const Value& key) const;
  const Value* Find(absl::string_view key) const;
  // Inserts, or replaces the value of an existing key in place (keeping its position).
  void Set(Value key, Value value);
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::vector<std::pair<Value, Value>>& entries() const { return entries_; }
  int depth() const { return depth_; }

 private:
  std::vector<std::pair<Value, Value>> entries_;
  absl::flat_hash_map<std::string, size_t> string_index_;
  int depth_ = 1;
};

// namespace(): attributes assignable with {% set ns.attr = value %}. Loop contexts (`loop`) are
// read-only namespaces; a recursive loop's context is also callable (`loop(children)`).
struct NamespaceData {
  DictData attributes;  // string keys
  bool is_loop = false;
  NativeFunction call;  // set for `loop` of a recursive for
};

// Python type name, for error messages: "str", "int", "NoneType", "dict", ...
const char* TypeName(const Value& value);

// Python `==` (deep for lists, tuples and dicts; 1 == 1.0 == True; undefined equals undefined).
bool Equals(const Value& a, const Value& b);

// Python `<` etc. Ordering between numbers, between strings (code point order) and between
// lists/tuples of the same kind; anything else is Python's TypeError, as InvalidArgument.
absl::StatusOr<int> Compare(const Value& a, const Value& b);

// str(value) as Jinja prints it: "" for undefined, "None", "True", repr() of containers.
std::string ToStr(const Value& value);
// repr(value): strings quoted.
std::string ToRepr(const Value& value);

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_VALUE_H_
