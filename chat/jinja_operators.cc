#include "chat/jinja_operators.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "chat/jinja_format.h"
#include "chat/jinja_methods.h"
#include "chat/jinja_strings.h"

namespace tandem::jinja {
namespace {

absl::Status Unsupported(absl::string_view op, const Value& a, const Value& b) {
  return TypeError(
      absl::StrCat("unsupported operand type(s) for ", op, ": '", TypeName(a), "' and '", TypeName(b), "'"));
}

absl::Status Overflow() { return absl::InvalidArgumentError("integer overflow"); }

absl::string_view OpText(Op op) {
  switch (op) {
    case Op::kAdd:
      return "+";
    case Op::kSub:
      return "-";
    case Op::kMul:
      return "*";
    case Op::kDiv:
      return "/";
    case Op::kFloorDiv:
      return "//";
    case Op::kMod:
      return "%";
    case Op::kPow:
      return "**";
    default:
      return "?";
  }
}

// Python's float % (the result takes the sign of the divisor).
double PyFloatMod(double a, double b) {
  double mod = std::fmod(a, b);
  if (mod != 0.0 && ((b < 0) != (mod < 0))) mod += b;
  if (mod == 0.0) mod = std::copysign(0.0, b);
  return mod;
}

absl::StatusOr<Value> IntArithmetic(Op op, int64_t a, int64_t b) {
  int64_t result;
  switch (op) {
    case Op::kAdd:
      if (__builtin_add_overflow(a, b, &result)) return Overflow();
      return Value::Int(result);
    case Op::kSub:
      if (__builtin_sub_overflow(a, b, &result)) return Overflow();
      return Value::Int(result);
    case Op::kMul:
      if (__builtin_mul_overflow(a, b, &result)) return Overflow();
      return Value::Int(result);
    case Op::kDiv:
      if (b == 0) return absl::InvalidArgumentError("division by zero");
      return Value::Float(static_cast<double>(a) / static_cast<double>(b));
    case Op::kFloorDiv: {
      if (b == 0) return absl::InvalidArgumentError("integer division or modulo by zero");
      if (a == std::numeric_limits<int64_t>::min() && b == -1) return Overflow();
      int64_t q = a / b;
      if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
      return Value::Int(q);
    }
    case Op::kMod: {
      if (b == 0) return absl::InvalidArgumentError("integer modulo by zero");
      if (b == -1) return Value::Int(0);
      int64_t m = a % b;
      if (m != 0 && ((m < 0) != (b < 0))) m += b;
      return Value::Int(m);
    }
    case Op::kPow: {
      if (b < 0) return Value::Float(std::pow(static_cast<double>(a), static_cast<double>(b)));
      int64_t base = a;
      int64_t exponent = b;
      result = 1;
      while (exponent > 0) {
        if (exponent & 1) {
          if (__builtin_mul_overflow(result, base, &result)) return Overflow();
        }
        exponent >>= 1;
        if (exponent > 0 && __builtin_mul_overflow(base, base, &base)) return Overflow();
      }
      return Value::Int(result);
    }
    default:
      return absl::InternalError("not an arithmetic operator");
  }
}

absl::StatusOr<Value> FloatArithmetic(Op op, double a, double b) {
  switch (op) {
    case Op::kAdd:
      return Value::Float(a + b);
    case Op::kSub:
      return Value::Float(a - b);
    case Op::kMul:
      return Value::Float(a * b);
    case Op::kDiv:
      if (b == 0.0) return absl::InvalidArgumentError("float division by zero");
      return Value::Float(a / b);
    case Op::kFloorDiv:
      if (b == 0.0) return absl::InvalidArgumentError("float floor division by zero");
      return Value::Float(std::floor(a / b));
    case Op::kMod:
      if (b == 0.0) return absl::InvalidArgumentError("float modulo");
      return Value::Float(PyFloatMod(a, b));
    case Op::kPow:
      if (a == 0.0 && b < 0) return absl::InvalidArgumentError("0.0 cannot be raised to a negative power");
      return Value::Float(std::pow(a, b));
    default:
      return absl::InternalError("not an arithmetic operator");
  }
}

// str * int and list * int.
absl::StatusOr<Value> Repeat(RenderContext& context, const Value& sequence, int64_t times) {
  if (times <= 0)
    return sequence.is_string() ? Value::String("") : (sequence.is_tuple() ? Value::Tuple({}) : Value::List({}));
  if (sequence.is_string()) {
    const std::string& text = sequence.as_string();
    if (!text.empty() && static_cast<uint64_t>(times) > context.limits().max_output_bytes / text.size()) {
      return context.CheckSize(context.limits().max_output_bytes + 1);
    }
    std::string out;
    out.reserve(text.size() * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out.append(text);
    return Value::String(std::move(out));
  }
  const auto& items = sequence.items();
  if (!items.empty()) {
    if (static_cast<uint64_t>(times) > static_cast<uint64_t>(context.limits().max_steps) / items.size()) {
      return context.Charge(context.limits().max_steps + 1);
    }
    if (absl::Status s = context.Charge(static_cast<int64_t>(items.size()) * times); !s.ok()) return s;
  }
  std::vector<Value> out;
  out.reserve(items.size() * static_cast<size_t>(times));
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), items.begin(), items.end());
  return sequence.is_tuple() ? Value::Tuple(std::move(out)) : Value::List(std::move(out));
}

std::string ObjectTypeRepr(const Value& value) {
  if (value.is_none()) return "None";
  return absl::StrCat(TypeName(value), " object");
}

Value MissingAttribute(const Value& object, const std::string& name) {
  return Value::Undefined(absl::StrCat("'", ObjectTypeRepr(object), "' has no attribute '", name, "'"));
}

Value MissingElement(const Value& object, const Value& key) {
  if (key.is_string()) return MissingAttribute(object, key.as_string());
  return Value::Undefined(absl::StrCat(ObjectTypeRepr(object), " has no element ", ToRepr(key)));
}

Value UnsafeAttribute(const Value& object, const std::string& name) {
  return Value::Undefined(
      absl::StrCat("access to attribute '", name, "' of '", TypeName(object), "' object is unsafe."));
}

// Index for list[i] and str[i]: ints and bools; nullopt for other key types.
std::optional<int64_t> IndexOf(const Value& key) {
  if (key.is_int() || key.is_bool()) return key.as_integer();
  return std::nullopt;
}

}  // namespace

absl::StatusOr<Value> BinaryOp(RenderContext& context, Op op, const Value& a, const Value& b) {
  if (op == Op::kMod && a.is_string() && b.is_undefined()) {
    // str % x runs before x's own operators, and Python takes Jinja's Undefined (which has
    // __getitem__) for a mapping: "text" % undefined is "text".
    absl::StatusOr<std::string> text = PercentFormat(context, a.as_string(), b);
    if (!text.ok()) return text.status();
    return Value::String(*std::move(text));
  }
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return FloatArithmetic(op, a.as_double(), b.as_double());
    return IntArithmetic(op, a.as_integer(), b.as_integer());
  }
  switch (op) {
    case Op::kAdd:
      if (a.is_string() && b.is_string()) {
        if (absl::Status s = context.CheckSize(a.as_string().size() + b.as_string().size()); !s.ok()) return s;
        return Value::String(absl::StrCat(a.as_string(), b.as_string()));
      }
      if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
        std::vector<Value> items = a.items();
        items.insert(items.end(), b.items().begin(), b.items().end());
        if (absl::Status s = context.Charge(static_cast<int64_t>(items.size())); !s.ok()) return s;
        return a.is_tuple() ? Value::Tuple(std::move(items)) : Value::List(std::move(items));
      }
      if (a.is_string() || a.is_list()) {
        return TypeError(
            absl::StrCat("can only concatenate ", TypeName(a), " (not \"", TypeName(b), "\") to ", TypeName(a)));
      }
      break;
    case Op::kMul:
      if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return Repeat(context, a, b.as_integer());
      if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return Repeat(context, b, a.as_integer());
      break;
    case Op::kMod:
      if (a.is_string()) {
        absl::StatusOr<std::string> text = PercentFormat(context, a.as_string(), b);
        if (!text.ok()) return text.status();
        return Value::String(*std::move(text));
      }
      break;
    default:
      break;
  }
  return Unsupported(OpText(op), a, b);
}

absl::StatusOr<Value> UnaryOp(Op op, const Value& a) {
  if (a.is_undefined()) return UndefinedError(a);
  if (a.is_float()) return Value::Float(op == Op::kNeg ? -a.as_float() : a.as_float());
  if (a.is_int() || a.is_bool()) {
    const int64_t x = a.as_integer();
    if (op == Op::kPos) return Value::Int(x);
    if (x == std::numeric_limits<int64_t>::min()) return Overflow();
    return Value::Int(-x);
  }
  return TypeError(absl::StrCat("bad operand type for unary ", op == Op::kNeg ? "-" : "+", ": '", TypeName(a), "'"));
}

absl::StatusOr<bool> Contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kString:
      if (!item.is_string()) {
        return TypeError(absl::StrCat("'in <string>' requires string as left operand, not ", TypeName(item)));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& element : container.items()) {
        if (Equals(element, item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      return container.dict().Find(item) != nullptr;
    default:
      return TypeError(absl::StrCat("argument of type '", TypeName(container), "' is not iterable"));
  }
}

absl::StatusOr<bool> CompareOp(Op op, const Value& a, const Value& b) {
  switch (op) {
    case Op::kEq:
      return Equals(a, b);
    case Op::kNe:
      return !Equals(a, b);
    case Op::kIn:
      return Contains(b, a);
    case Op::kNotIn: {
      absl::StatusOr<bool> in = Contains(b, a);
      if (!in.ok()) return in.status();
      return !*in;
    }
    default:
      break;
  }
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  absl::StatusOr<int> c = Compare(a, b);
  if (!c.ok()) {
    const absl::string_view text = op == Op::kLt ? "<" : op == Op::kLe ? "<=" : op == Op::kGt ? ">" : ">=";
    return TypeError(
        absl::StrCat("'", text, "' not supported between instances of '", TypeName(a), "' and '", TypeName(b), "'"));
  }
  switch (op) {
    case Op::kLt:
      return *c < 0;
    case Op::kLe:
      return *c <= 0;
    case Op::kGt:
      return *c > 0;
    default:
      return *c >= 0;
  }
}

absl::StatusOr<std::vector<Value>> Iterate(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      return std::vector<Value>();
    case Value::Kind::kList:
      return value.items();
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      keys.reserve(value.dict().size());
      for (const auto& entry : value.dict().entries()) keys.push_back(entry.first);
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      const std::string& text = value.as_string();
      size_t pos = 0;
      while (pos < text.size()) {
        const size_t start = pos;
        NextCodePoint(text, &pos);
        chars.push_back(Value::String(text.substr(start, pos - start)));
      }
      return chars;
    }
    default:
      return TypeError(absl::StrCat("'", TypeName(value), "' object is not iterable"));
  }
}

absl::StatusOr<Value> GetAttr(const Value& object, const std::string& name) {
  switch (object.kind()) {
    case Value::Kind::kUndefined:
      return UndefinedError(object);
    case Value::Kind::kNamespace: {
      const Value* value = object.ns().attributes.Find(name);
      return value ? *value : MissingAttribute(object, name);
    }
    case Value::Kind::kDict: {
      if (IsUnsafeMethod(object, name)) return UnsafeAttribute(object, name);
      if (std::optional<Value> method = FindMethod(object, name)) return *method;
      const Value* value = object.dict().Find(name);
      return value ? *value : MissingAttribute(object, name);
    }
    default:
      if (IsUnsafeMethod(object, name)) return UnsafeAttribute(object, name);
      if (std::optional<Value> method = FindMethod(object, name)) return *method;
      return MissingAttribute(object, name);
  }
}

absl::StatusOr<Value> GetItem(const Value& object, const Value& key) {
  switch (object.kind()) {
    case Value::Kind::kUndefined:
      return UndefinedError(object);
    case Value::Kind::kDict: {
      if (const Value* value = object.dict().Find(key)) return *value;
      break;
    }
    case Value::Kind::kList: {
      const std::optional<int64_t> index = IndexOf(key);
      if (!index) break;
      const int64_t size = static_cast<int64_t>(object.items().size());
      const int64_t i = *index < 0 ? *index + size : *index;
      if (i >= 0 && i < size) return object.items()[static_cast<size_t>(i)];
      return MissingElement(object, key);
    }
    case Value::Kind::kString: {
      const std::optional<int64_t> index = IndexOf(key);
      if (!index) break;
      const std::string& text = object.as_string();
      const int64_t size = static_cast<int64_t>(IsAscii(text) ? text.size() : CodePointCount(text));
      const int64_t i = *index < 0 ? *index + size : *index;
      if (i >= 0 && i < size) return Value::String(SliceCodePoints(text, i, i + 1, 1));
      return MissingElement(object, key);
    }
    default:
      break;
  }
  if (key.is_string()) {
    absl::StatusOr<Value> attribute = GetAttr(object, key.as_string());
    if (!attribute.ok() || !attribute->is_undefined()) return attribute;
  }
  return MissingElement(object, key);
}

absl::StatusOr<SliceBounds> NormalizeSlice(int64_t length, const Value& start, const Value& stop, const Value& step) {
  auto bound = [](const Value& v) -> std::optional<std::optional<int64_t>> {
    if (v.is_none() || v.is_undefined()) return std::optional<int64_t>();
    if (v.is_int() || v.is_bool()) return std::optional<int64_t>(v.as_integer());
    return std::nullopt;  // not a valid index
  };
  const auto start_bound = bound(start);
  const auto stop_bound = bound(stop);
  const auto step_bound = bound(step);
  if (!start_bound || !stop_bound || !step_bound) {
    return TypeError("slice indices must be integers or None or have an __index__ method");
  }
  SliceBounds b;
  b.step = step_bound->value_or(1);
  if (b.step == 0) return absl::InvalidArgumentError("slice step cannot be zero");
  if (b.step == std::numeric_limits<int64_t>::min()) b.step = -std::numeric_limits<int64_t>::max();
  auto adjust = [&](std::optional<int64_t> index, bool is_start) -> int64_t {
    if (!index) {
      if (b.step > 0) return is_start ? 0 : length;
      return is_start ? length - 1 : -1;
    }
    int64_t i = *index;
    if (i < 0) {
      i = i < -length ? -1 : i + length;  // avoids overflow on very negative indices
      if (i < 0) i = b.step < 0 ? -1 : 0;
    } else if (i >= length) {
      i = b.step < 0 ? length - 1 : length;
    }
    return i;
  };
  b.start = adjust(*start_bound, true);
  b.stop = adjust(*stop_bound, false);
  if (b.step > 0) {
    b.count = b.start < b.stop ? (b.stop - b.start - 1) / b.step + 1 : 0;
  } else {
    b.count = b.stop < b.start ? (b.start - b.stop - 1) / (-b.step) + 1 : 0;
  }
  return b;
}

absl::StatusOr<Value> GetSlice(const Value& object, const Value& start, const Value& stop, const Value& step) {
  // Jinja compiles slices to plain Python subscripts, without the forgiving getitem: errors here
  // are Python's.
  if (object.is_undefined()) return UndefinedError(object);
  if (object.is_dict()) return TypeError("unhashable type: 'slice'");
  if (!object.is_list() && !object.is_string()) {
    return TypeError(absl::StrCat("'", TypeName(object), "' object is not subscriptable"));
  }
  const bool is_string = object.is_string();
  const int64_t length = is_string ? static_cast<int64_t>(CodePointCount(object.as_string()))
                                   : static_cast<int64_t>(object.items().size());
  absl::StatusOr<SliceBounds> bounds = NormalizeSlice(length, start, stop, step);
  if (!bounds.ok()) return bounds.status();
  if (is_string) {
    if (bounds->count == 0) return Value::String("");
    return Value::String(
        SliceCodePoints(object.as_string(), bounds->start, bounds->start + bounds->step * bounds->count, bounds->step));
  }
  std::vector<Value> items;
  items.reserve(static_cast<size_t>(bounds->count));
  for (int64_t k = 0, i = bounds->start; k < bounds->count; ++k, i += bounds->step) {
    items.push_back(object.items()[static_cast<size_t>(i)]);
  }
  return object.is_tuple() ? Value::Tuple(std::move(items)) : Value::List(std::move(items));
}

}  // namespace tandem::jinja
