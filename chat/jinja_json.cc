#include "chat/jinja_json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "chat/jinja_strings.h"

namespace tandem::jinja {
namespace {

class JsonWriter {
 public:
  JsonWriter(const JsonDumpOptions& options, size_t max_bytes)
      : options_(options),
        item_separator_(options.item_separator ? *options.item_separator : (options.indent ? "," : ", ")),
        max_bytes_(max_bytes) {}

  absl::Status Write(const Value& value, int level) {
    if (out_.size() > max_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat("tojson output exceeds ", max_bytes_, " bytes"));
    }
    switch (value.kind()) {
      case Value::Kind::kNone:
        out_.append("null");
        return absl::OkStatus();
      case Value::Kind::kBool:
        out_.append(value.as_bool() ? "true" : "false");
        return absl::OkStatus();
      case Value::Kind::kInt:
        out_.append(absl::StrCat(value.as_int()));
        return absl::OkStatus();
      case Value::Kind::kFloat:
        out_.append(FloatText(value.as_float()));
        return absl::OkStatus();
      case Value::Kind::kString:
        out_.append(JsonQuote(value.as_string(), options_.ensure_ascii));
        return absl::OkStatus();
      case Value::Kind::kList:
        return WriteList(value, level);
      case Value::Kind::kDict:
        return WriteDict(value.dict(), level);
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("Object of type ", TypeName(value), " is not JSON serializable"));
    }
  }

  std::string Take() { return std::move(out_); }

 private:
  static std::string FloatText(double x) {
    if (std::isnan(x)) return "NaN";
    if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
    return PyFloatRepr(x);
  }

  void NewLine(int level) {
    if (!options_.indent) return;
    out_.push_back('\n');
    for (int i = 0; i < level; ++i) out_.append(*options_.indent);
  }

  absl::Status WriteList(const Value& value, int level) {
    const auto& items = value.items();
    if (items.empty()) {
      out_.append("[]");
      return absl::OkStatus();
    }
    out_.push_back('[');
    NewLine(level + 1);
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) {
        out_.append(item_separator_);
        NewLine(level + 1);
      }
      if (absl::Status s = Write(items[i], level + 1); !s.ok()) return s;
    }
    NewLine(level);
    out_.push_back(']');
    return absl::OkStatus();
  }

  static absl::StatusOr<std::string> KeyText(const Value& key) {
    switch (key.kind()) {
      case Value::Kind::kString:
        return key.as_string();
      case Value::Kind::kNone:
        return std::string("null");
      case Value::Kind::kBool:
        return std::string(key.as_bool() ? "true" : "false");
      case Value::Kind::kInt:
        return absl::StrCat(key.as_int());
      case Value::Kind::kFloat:
        return FloatText(key.as_float());
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("keys must be str, int, float, bool or None, not ", TypeName(key)));
    }
  }

  absl::Status WriteDict(const DictData& dict, int level) {
    if (dict.empty()) {
      out_.append("{}");
      return absl::OkStatus();
    }
    std::vector<const std::pair<Value, Value>*> entries;
    entries.reserve(dict.size());
    for (const auto& entry : dict.entries()) entries.push_back(&entry);
    if (options_.sort_keys) {
      absl::Status status;
      std::stable_sort(entries.begin(), entries.end(), [&status](const auto* a, const auto* b) {
        absl::StatusOr<int> c = Compare(a->first, b->first);
        if (!c.ok()) {
          status = c.status();
          return false;
        }
        return *c < 0;
      });
      if (!status.ok()) return status;
    }
    out_.push_back('{');
    NewLine(level + 1);
    bool first = true;
    for (const auto* entry : entries) {
      absl::StatusOr<std::string> key = KeyText(entry->first);
      if (!key.ok()) return key.status();
      if (!first) {
        out_.append(item_separator_);
        NewLine(level + 1);
      }
      first = false;
      out_.append(JsonQuote(*key, options_.ensure_ascii));
      out_.append(options_.key_separator);
      if (absl::Status s = Write(entry->second, level + 1); !s.ok()) return s;
    }
    NewLine(level);
    out_.push_back('}');
    return absl::OkStatus();
  }

  const JsonDumpOptions& options_;
  const std::string item_separator_;
  const size_t max_bytes_;
  std::string out_;
};

void AppendUnicodeEscape(char32_t unit, std::string* out) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(unit));
  out->append(buf);
}

}  // namespace

std::string JsonQuote(const std::string& text, bool ensure_ascii) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const char32_t c = NextCodePoint(text, &pos);
    switch (c) {
      case '"':
        out.append("\\\"");
        continue;
      case '\\':
        out.append("\\\\");
        continue;
      case '\n':
        out.append("\\n");
        continue;
      case '\r':
        out.append("\\r");
        continue;
      case '\t':
        out.append("\\t");
        continue;
      case '\b':
        out.append("\\b");
        continue;
      case '\f':
        out.append("\\f");
        continue;
      default:
        break;
    }
    if (c < 0x20) {
      AppendUnicodeEscape(c, &out);
    } else if (ensure_ascii && c >= 0x80) {
      if (c >= 0x10000) {
        const char32_t v = c - 0x10000;
        AppendUnicodeEscape(0xD800 + (v >> 10), &out);
        AppendUnicodeEscape(0xDC00 + (v & 0x3FF), &out);
      } else {
        AppendUnicodeEscape(c, &out);
      }
    } else {
      out.append(text, start, pos - start);
    }
  }
  out.push_back('"');
  return out;
}

absl::StatusOr<std::string> JsonDumps(const Value& value, const JsonDumpOptions& options, size_t max_bytes) {
  JsonWriter writer(options, max_bytes);
  if (absl::Status s = writer.Write(value, 0); !s.ok()) return s;
  std::string out = writer.Take();
  if (out.size() > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("tojson output exceeds ", max_bytes, " bytes"));
  }
  return out;
}

}  // namespace tandem::jinja
