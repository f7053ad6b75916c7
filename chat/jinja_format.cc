#include "chat/jinja_format.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "chat/jinja_operators.h"
#include "chat/jinja_strings.h"

namespace tandem::jinja {
namespace {

// A parsed conversion: both printf-style and format-spec fields map onto this.
struct Spec {
  std::string fill = " ";
  char align = 0;  // '<', '>', '^', '=' or 0 for the type's default
  char sign = 0;   // '+', ' ' or 0
  bool alternate = false;
  bool zero = false;
  int64_t width = -1;
  char grouping = 0;  // ',' or '_'
  int64_t precision = -1;
  char type = 0;
};

absl::Status CheckWidth(RenderContext& context, int64_t width) {
  return width > 0 ? context.CheckSize(static_cast<size_t>(width)) : absl::OkStatus();
}

// Pads `body` (digits or text, no sign) with `prefix` (sign and 0x-style prefix) to the width.
std::string Pad(const std::string& prefix, const std::string& body, const Spec& spec, char default_align) {
  const int64_t length = static_cast<int64_t>(CodePointCount(prefix) + CodePointCount(body));
  if (spec.width <= length) return prefix + body;
  const int64_t padding = spec.width - length;
  char align = spec.align ? spec.align : default_align;
  std::string fill = spec.fill;
  if (spec.zero && !spec.align) {
    align = '=';
    fill = "0";
  }
  auto repeat = [&fill](int64_t n) {
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += fill;
    return out;
  };
  switch (align) {
    case '<':
      return prefix + body + repeat(padding);
    case '^':
      return repeat(padding / 2) + prefix + body + repeat(padding - padding / 2);
    case '=':
      return prefix + repeat(padding) + body;
    default:
      return repeat(padding) + prefix + body;
  }
}

std::string Group(const std::string& digits, char separator) {
  if (!separator) return digits;
  std::string out;
  const size_t n = digits.size();
  for (size_t i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out.push_back(separator);
    out.push_back(digits[i]);
  }
  return out;
}

std::string SignPrefix(bool negative, const Spec& spec) {
  if (negative) return "-";
  if (spec.sign == '+') return "+";
  if (spec.sign == ' ') return " ";
  return "";
}

absl::StatusOr<std::string> FormatInteger(int64_t value, const Spec& spec, bool percent_style) {
  const bool negative = value < 0;
  const uint64_t magnitude = negative ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  std::string digits;
  std::string prefix = SignPrefix(negative, spec);
  char type = spec.type ? spec.type : 'd';
  if (type == 'i' || type == 'u' || type == 'n') type = 'd';
  if (type == 'c') {
    if (value < 0 || value > 0x10FFFF) return absl::InvalidArgumentError("%c arg not in range(0x110000)");
    std::string ch;
    AppendUtf8(static_cast<char32_t>(value), &ch);
    return Pad("", ch, spec, percent_style ? '>' : '<');
  }
  int base = 10;
  if (type == 'x' || type == 'X') base = 16;
  if (type == 'o') base = 8;
  if (type == 'b') base = 2;
  if (base == 10 && type != 'd')
    return absl::InvalidArgumentError(
        absl::StrCat("Unknown format code '", std::string(1, type), "' for object of type 'int'"));
  uint64_t m = magnitude;
  do {
    const int d = static_cast<int>(m % static_cast<uint64_t>(base));
    digits.insert(digits.begin(), static_cast<char>(d < 10 ? '0' + d : (type == 'X' ? 'A' : 'a') + d - 10));
    m /= static_cast<uint64_t>(base);
  } while (m > 0);
  if (percent_style && spec.precision > static_cast<int64_t>(digits.size())) {
    digits.insert(0, static_cast<size_t>(spec.precision) - digits.size(), '0');
  }
  if (spec.alternate && base != 10) {
    prefix += base == 16 ? (type == 'X' ? "0X" : "0x") : (base == 8 ? "0o" : "0b");
  }
  return Pad(prefix, base == 10 ? Group(digits, spec.grouping) : digits, spec, '>');
}

absl::StatusOr<std::string> FormatFloat(double value, const Spec& spec) {
  char type = spec.type;
  std::string body;
  const bool negative = std::signbit(value) && !std::isnan(value);
  const double magnitude = std::fabs(value);
  if (type == 0 && spec.precision < 0) {
    body = PyFloatRepr(magnitude);
  } else {
    const int precision = spec.precision < 0 ? 6 : static_cast<int>(std::min<int64_t>(spec.precision, 500));
    double shown = magnitude;
    char conversion = type;
    if (type == 0) conversion = 'g';
    if (type == '%') {
      shown *= 100;
      conversion = 'f';
    }
    if (conversion != 'f' && conversion != 'F' && conversion != 'e' && conversion != 'E' && conversion != 'g' &&
        conversion != 'G') {
      return absl::InvalidArgumentError(
          absl::StrCat("Unknown format code '", std::string(1, type), "' for object of type 'float'"));
    }
    const std::string format = absl::StrCat("%", spec.alternate ? "#" : "", ".", precision, std::string(1, conversion));
    char buf[640];
    std::snprintf(buf, sizeof(buf), format.c_str(), shown);
    body = buf;
    if (type == 0 && body.find_first_of(".eni") == std::string::npos) body += ".0";
    if (type == '%') body += "%";
  }
  if (spec.grouping) {
    const size_t end = body.find_first_not_of("0123456789");
    body = Group(body.substr(0, end), spec.grouping) + (end == std::string::npos ? "" : body.substr(end));
  }
  return Pad(SignPrefix(negative, spec), body, spec, '>');
}

std::string FormatText(const std::string& text, const Spec& spec, char default_align) {
  std::string body = text;
  if (spec.precision >= 0 && static_cast<size_t>(spec.precision) < CodePointCount(text)) {
    body = SliceCodePoints(text, 0, spec.precision, 1);
  }
  return Pad("", body, spec, default_align);
}

// ---- printf style ----

absl::StatusOr<std::string> PercentConvert(RenderContext& context, const Value& arg, const Spec& spec) {
  switch (spec.type) {
    case 's':
      return FormatText(ToStr(arg), spec, '>');
    case 'r':
    case 'a':
      return FormatText(ToRepr(arg), spec, '>');
    case 'c':
      if (arg.is_string()) {
        if (CodePointCount(arg.as_string()) != 1) return TypeError("%c requires int or char");
        return Pad("", arg.as_string(), spec, '>');
      }
      if (!arg.is_int() && !arg.is_bool()) return TypeError("%c requires int or char");
      return FormatInteger(arg.as_integer(), spec, true);
    case 'd':
    case 'i':
    case 'u':
      if (arg.is_float()) {
        if (!std::isfinite(arg.as_float())) return absl::InvalidArgumentError("cannot convert float to integer");
        return FormatInteger(static_cast<int64_t>(arg.as_float()), spec, true);
      }
      [[fallthrough]];
    case 'o':
    case 'x':
    case 'X':
      if (!arg.is_int() && !arg.is_bool()) {
        return TypeError(absl::StrCat(
            "%", std::string(1, spec.type),
            " format: ", spec.type == 'd' || spec.type == 'i' || spec.type == 'u' ? "a real number" : "an integer",
            " is required, not ", TypeName(arg)));
      }
      return FormatInteger(arg.as_integer(), spec, true);
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G':
      if (!arg.is_number()) return TypeError(absl::StrCat("must be real number, not ", TypeName(arg)));
      return FormatFloat(arg.as_double(), spec);
    default:
      return absl::InvalidArgumentError(absl::StrCat("unsupported format character '", std::string(1, spec.type), "'"));
  }
}

}  // namespace

absl::StatusOr<std::string> PercentFormat(RenderContext& context, const std::string& format, const Value& args) {
  std::vector<Value> positional;
  // Python takes any object with __getitem__ for a mapping, Jinja's Undefined included.
  const bool mapping = args.is_dict() || args.is_undefined();
  if (args.is_tuple()) {
    positional = args.items();
  } else if (!mapping) {
    positional.push_back(args);
  }
  size_t next = 0;
  bool used_mapping = false;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out.push_back(format[i]);
      continue;
    }
    if (++i >= format.size()) return absl::InvalidArgumentError("incomplete format");
    if (format[i] == '%') {
      out.push_back('%');
      continue;
    }
    Value arg;
    bool have_arg = false;
    if (format[i] == '(') {
      const size_t close = format.find(')', i);
      if (close == std::string::npos) return absl::InvalidArgumentError("incomplete format key");
      if (!mapping) return TypeError("format requires a mapping");
      if (args.is_undefined()) return UndefinedError(args);
      const Value* value = args.dict().Find(absl::string_view(format).substr(i + 1, close - i - 1));
      if (value == nullptr)
        return absl::InvalidArgumentError(absl::StrCat("KeyError: '", format.substr(i + 1, close - i - 1), "'"));
      arg = *value;
      have_arg = used_mapping = true;
      i = close + 1;
    }
    Spec spec;
    for (; i < format.size(); ++i) {
      const char c = format[i];
      if (c == '-') {
        spec.align = '<';
      } else if (c == '+') {
        spec.sign = '+';
      } else if (c == ' ') {
        if (spec.sign != '+') spec.sign = ' ';
      } else if (c == '#') {
        spec.alternate = true;
      } else if (c == '0') {
        spec.zero = true;
      } else {
        break;
      }
    }
    if (spec.align == '<') spec.zero = false;
    auto read_number = [&](int64_t* target) -> absl::Status {
      if (i < format.size() && format[i] == '*') {
        if (next >= positional.size() || !(positional[next].is_int() || positional[next].is_bool())) {
          return TypeError("* wants int");
        }
        *target = positional[next++].as_integer();
        ++i;
        return absl::OkStatus();
      }
      if (i < format.size() && format[i] >= '0' && format[i] <= '9') {
        *target = 0;
        while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
          *target = std::min<int64_t>(*target * 10 + (format[i] - '0'), int64_t{1} << 40);
          ++i;
        }
      }
      return absl::OkStatus();
    };
    if (absl::Status s = read_number(&spec.width); !s.ok()) return s;
    if (spec.width < -1) {
      spec.align = '<';
      spec.width = -spec.width;
    }
    if (i < format.size() && format[i] == '.') {
      ++i;
      spec.precision = 0;
      if (absl::Status s = read_number(&spec.precision); !s.ok()) return s;
    }
    while (i < format.size() && (format[i] == 'h' || format[i] == 'l' || format[i] == 'L')) ++i;
    if (i >= format.size()) return absl::InvalidArgumentError("incomplete format");
    spec.type = format[i];
    if (absl::Status s = CheckWidth(context, spec.width); !s.ok()) return s;
    if (!have_arg) {
      if (mapping) {
        arg = args;
        used_mapping = true;
      } else {
        if (next >= positional.size()) return TypeError("not enough arguments for format string");
        arg = positional[next++];
      }
    }
    absl::StatusOr<std::string> piece = PercentConvert(context, arg, spec);
    if (!piece.ok()) return piece.status();
    out += *piece;
    if (absl::Status s = context.CheckSize(out.size()); !s.ok()) return s;
  }
  if (!mapping && next < positional.size()) return TypeError("not all arguments converted during string formatting");
  (void)used_mapping;
  return out;
}

namespace {

absl::StatusOr<Spec> ParseFormatSpec(const std::string& text) {
  Spec spec;
  const std::u32string cps = DecodeUtf8(text);
  size_t i = 0;
  auto is_align = [](char32_t c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (cps.size() >= 2 && is_align(cps[1])) {
    spec.fill = EncodeUtf8(cps.substr(0, 1));
    spec.align = static_cast<char>(cps[1]);
    i = 2;
  } else if (!cps.empty() && is_align(cps[0])) {
    spec.align = static_cast<char>(cps[0]);
    i = 1;
  }
  if (i < cps.size() && (cps[i] == '+' || cps[i] == '-' || cps[i] == ' ')) {
    spec.sign = cps[i] == '-' ? 0 : static_cast<char>(cps[i]);
    ++i;
  }
  if (i < cps.size() && cps[i] == '#') {
    spec.alternate = true;
    ++i;
  }
  if (i < cps.size() && cps[i] == '0') {
    spec.zero = true;
    ++i;
  }
  auto digits = [&](int64_t* target) {
    if (i >= cps.size() || cps[i] < '0' || cps[i] > '9') return;
    *target = 0;
    while (i < cps.size() && cps[i] >= '0' && cps[i] <= '9') {
      *target = std::min<int64_t>(*target * 10 + static_cast<int64_t>(cps[i] - '0'), int64_t{1} << 40);
      ++i;
    }
  };
  digits(&spec.width);
  if (i < cps.size() && (cps[i] == ',' || cps[i] == '_')) spec.grouping = static_cast<char>(cps[i++]);
  if (i < cps.size() && cps[i] == '.') {
    ++i;
    spec.precision = 0;
    if (i >= cps.size() || cps[i] < '0' || cps[i] > '9')
      return absl::InvalidArgumentError("Format specifier missing precision");
    digits(&spec.precision);
  }
  if (i < cps.size()) spec.type = static_cast<char>(cps[i++]);
  if (i != cps.size()) return absl::InvalidArgumentError("Invalid format specifier");
  return spec;
}

absl::StatusOr<std::string> FormatField(const Value& value, const Spec& spec) {
  if (value.is_int() || value.is_bool()) {
    if (value.is_bool() && spec.type == 0 && spec.width < 0) return ToStr(value);
    if (spec.type && std::string_view("eEfFgG%").find(spec.type) != std::string_view::npos) {
      return FormatFloat(value.as_double(), spec);
    }
    return FormatInteger(value.as_integer(), spec, false);
  }
  if (value.is_float()) return FormatFloat(value.as_float(), spec);
  if (spec.type && spec.type != 's') {
    return absl::InvalidArgumentError(absl::StrCat("Unknown format code '", std::string(1, spec.type),
                                                   "' for object of type '", TypeName(value), "'"));
  }
  return FormatText(ToStr(value), spec, '<');
}

// Resolves "0", "name", "name.attr", "0[key]" against the call arguments.
absl::StatusOr<Value> ResolveField(const std::string& field, const CallArgs& args, size_t* auto_index) {
  size_t end = field.find_first_of(".[");
  const std::string head = field.substr(0, end);
  Value value;
  if (head.empty() || std::isdigit(static_cast<unsigned char>(head[0]))) {
    size_t index = *auto_index;
    if (head.empty()) {
      ++*auto_index;
    } else {
      index = static_cast<size_t>(std::strtoull(head.c_str(), nullptr, 10));
    }
    if (index >= args.positional.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Replacement index ", index, " out of range for positional args tuple"));
    }
    value = args.positional[index];
  } else {
    bool found = false;
    for (const auto& [name, v] : args.keywords) {
      if (name == head) {
        value = v;
        found = true;
      }
    }
    if (!found) return absl::InvalidArgumentError(absl::StrCat("KeyError: '", head, "'"));
  }
  while (end != std::string::npos && end < field.size()) {
    if (field[end] == '.') {
      const size_t next = field.find_first_of(".[", end + 1);
      absl::StatusOr<Value> attr = GetAttr(value, field.substr(end + 1, next - end - 1));
      if (!attr.ok()) return attr.status();
      value = *attr;
      end = next;
    } else {
      const size_t close = field.find(']', end);
      if (close == std::string::npos) return absl::InvalidArgumentError("Missing ']' in format string");
      const std::string key = field.substr(end + 1, close - end - 1);
      const bool numeric = !key.empty() && key.find_first_not_of("0123456789") == std::string::npos;
      absl::StatusOr<Value> item =
          GetItem(value, numeric ? Value::Int(std::strtoll(key.c_str(), nullptr, 10)) : Value::String(key));
      if (!item.ok()) return item.status();
      value = *item;
      end = close + 1;
    }
  }
  return value;
}

}  // namespace

absl::StatusOr<std::string> StrFormat(RenderContext& context, const std::string& format, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (c == '}') {
      if (i + 1 < format.size() && format[i + 1] == '}')
        ++i;
      else
        return absl::InvalidArgumentError("Single '}' encountered in format string");
      out.push_back('}');
      continue;
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    const size_t close = format.find('}', i);
    if (close == std::string::npos) return absl::InvalidArgumentError("Single '{' encountered in format string");
    std::string field = format.substr(i + 1, close - i - 1);
    if (field.find('{') != std::string::npos)
      return absl::InvalidArgumentError("nested format fields are not supported");
    std::string spec_text;
    if (const size_t colon = field.find(':'); colon != std::string::npos) {
      spec_text = field.substr(colon + 1);
      field.resize(colon);
    }
    char conversion = 0;
    if (const size_t bang = field.find('!'); bang != std::string::npos) {
      if (bang + 2 != field.size()) return absl::InvalidArgumentError("expected ':' after conversion specifier");
      conversion = field[bang + 1];
      field.resize(bang);
    }
    absl::StatusOr<Value> value = ResolveField(field, args, &auto_index);
    if (!value.ok()) return value.status();
    if (conversion == 'r' || conversion == 'a') {
      *value = Value::String(ToRepr(*value));
    } else if (conversion == 's') {
      *value = Value::String(ToStr(*value));
    } else if (conversion != 0) {
      return absl::InvalidArgumentError(absl::StrCat("Unknown conversion specifier ", std::string(1, conversion)));
    }
    absl::StatusOr<Spec> spec = ParseFormatSpec(spec_text);
    if (!spec.ok()) return spec.status();
    if (absl::Status s = CheckWidth(context, spec->width); !s.ok()) return s;
    absl::StatusOr<std::string> piece = FormatField(*value, *spec);
    if (!piece.ok()) return piece.status();
    out += *piece;
    if (absl::Status s = context.CheckSize(out.size()); !s.ok()) return s;
    i = close;
  }
  return out;
}

std::string Strftime(const std::string& format, absl::CivilSecond time) {
  static constexpr const char* kDays[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
  static constexpr const char* kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                            "July",    "August",   "September", "October", "November", "December"};
  const absl::Weekday weekday = absl::GetWeekday(time);
  const int day_index = static_cast<int>(weekday);  // Monday = 0
  const int sunday_based = (day_index + 1) % 7;     // %w: Sunday = 0
  const int yday = absl::GetYearDay(time);          // 1-based
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 >= format.size()) {
      out.push_back(format[i]);
      continue;
    }
    size_t j = i + 1;
    char pad = 0;  // 0: the directive's default
    if (format[j] == '-' || format[j] == '_' || format[j] == '0') pad = format[j++];
    if (j >= format.size()) {
      out.append(format, i, std::string::npos);
      break;
    }
    auto number = [&](int64_t value, int width, char default_pad) {
      std::string digits = absl::StrCat(value);
      const char p = pad == '-' ? 0 : (pad == '_' ? ' ' : (pad == '0' ? '0' : default_pad));
      if (p && static_cast<int>(digits.size()) < width) digits.insert(0, static_cast<size_t>(width) - digits.size(), p);
      out += digits;
    };
    const int hour12 = time.hour() % 12 == 0 ? 12 : time.hour() % 12;
    switch (format[j]) {
      case 'a':
        out += std::string(kDays[day_index]).substr(0, 3);
        break;
      case 'A':
        out += kDays[day_index];
        break;
      case 'b':
      case 'h':
        out += std::string(kMonths[time.month() - 1]).substr(0, 3);
        break;
      case 'B':
        out += kMonths[time.month() - 1];
        break;
      case 'C':
        number(time.year() / 100, 2, '0');
        break;
      case 'c':
        out += Strftime("%a %b ", time);
        number(time.day(), 2, ' ');
        out += Strftime(" %H:%M:%S %Y", time);
        break;
      case 'd':
        number(time.day(), 2, '0');
        break;
      case 'D':
        out += Strftime("%m/%d/%y", time);
        break;
      case 'e':
        number(time.day(), 2, ' ');
        break;
      case 'F':
        out += Strftime("%Y-%m-%d", time);
        break;
      case 'H':
        number(time.hour(), 2, '0');
        break;
      case 'I':
        number(hour12, 2, '0');
        break;
      case 'j':
        number(yday, 3, '0');
        break;
      case 'k':
        number(time.hour(), 2, ' ');
        break;
      case 'l':
        number(hour12, 2, ' ');
        break;
      case 'm':
        number(time.month(), 2, '0');
        break;
      case 'M':
        number(time.minute(), 2, '0');
        break;
      case 'n':
        out += '\n';
        break;
      case 'p':
        out += time.hour() < 12 ? "AM" : "PM";
        break;
      case 'R':
        out += Strftime("%H:%M", time);
        break;
      case 'S':
        number(time.second(), 2, '0');
        break;
      case 't':
        out += '\t';
        break;
      case 'T':
      case 'X':
        out += Strftime("%H:%M:%S", time);
        break;
      case 'u':
        number(day_index + 1, 1, '0');
        break;
      case 'w':
        number(sunday_based, 1, '0');
        break;
      case 'U':
        number((yday - 1 + 7 - sunday_based) / 7, 2, '0');
        break;
      case 'W':
        number((yday - 1 + 7 - day_index) / 7, 2, '0');
        break;
      case 'x':
        out += Strftime("%m/%d/%y", time);
        break;
      case 'y':
        number(time.year() % 100, 2, '0');
        break;
      case 'Y':
        number(time.year(), 1, '0');
        break;
      case 'z':
      case 'Z':
        break;  // a naive datetime has no zone
      case '%':
        out += '%';
        break;
      default:
        out.append(format, i, j + 1 - i);
        break;
    }
    i = j;
  }
  return out;
}

}  // namespace tandem::jinja
