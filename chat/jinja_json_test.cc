#include "chat/jinja_json.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem::jinja {
namespace {

using Json = nlohmann::ordered_json;

std::string Dumps(const char* json, const JsonDumpOptions& options = JsonDumpOptions()) {
  absl::StatusOr<std::string> out = JsonDumps(*Value::FromJson(Json::parse(json), 64), options, 1 << 20);
  return out.ok() ? *out : std::string(out.status().message());
}

TEST(JinjaJsonTest, PythonDefaults) {
  // Insertion order, ", " and ": " separators, no HTML escaping, non-ASCII kept.
  EXPECT_EQ(Dumps(R"({"z": [1, 2.0, null, true], "a": "<é & \"q\">"})"),
            R"({"z": [1, 2.0, null, true], "a": "<é & \"q\">"})");
  EXPECT_EQ(Dumps(R"("\n\t\b\f\r\u0001\\/")"), R"("\n\t\b\f\r\u0001\\/")");
  EXPECT_EQ(Dumps("[1e16, 0.1, 1e-05, 100.0]"), "[1e+16, 0.1, 1e-05, 100.0]");
}

TEST(JinjaJsonTest, Indent) {
  JsonDumpOptions options;
  options.indent = "    ";
  EXPECT_EQ(Dumps(R"({"a": [1, {"b": []}], "c": {}})", options),
            "{\n    \"a\": [\n        1,\n        {\n            \"b\": []\n        }\n    ],\n    \"c\": {}\n}");
  options.indent = "";
  EXPECT_EQ(Dumps("[1, 2]", options), "[\n1,\n2\n]");
}

TEST(JinjaJsonTest, EnsureAsciiSeparatorsSortKeys) {
  JsonDumpOptions options;
  options.ensure_ascii = true;
  EXPECT_EQ(Dumps(R"("é🚀")", options), R"("\u00e9\ud83d\ude80")");
  JsonDumpOptions compact;
  compact.item_separator = ",";
  compact.key_separator = ":";
  compact.sort_keys = true;
  EXPECT_EQ(Dumps(R"({"b": 1, "a": [1, 2]})", compact), R"({"a":[1,2],"b":1})");
}

TEST(JinjaJsonTest, NonStringKeysAndUnserializableValues) {
  DictData dict;
  dict.Set(Value::Int(1), Value::None());
  dict.Set(Value::Bool(false), Value::Float(2.5));
  EXPECT_EQ(*JsonDumps(Value::Dict(dict), JsonDumpOptions(), 1000), R"({"1": null, "false": 2.5})");
  absl::StatusOr<std::string> undefined = JsonDumps(Value(), JsonDumpOptions(), 1000);
  EXPECT_EQ(undefined.status().message(), "Object of type Undefined is not JSON serializable");
  EXPECT_EQ(JsonDumps(Value::String(std::string(100, 'x')), JsonDumpOptions(), 10).status().code(),
            absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace tandem::jinja
