#include "chat/jinja_value.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem::jinja {
namespace {

using Json = nlohmann::ordered_json;

Value FromJson(const char* text) { return *Value::FromJson(Json::parse(text), 64); }

TEST(JinjaValueTest, FromJsonKeepsKeyOrderAndTypes) {
  const Value v = FromJson(R"({"z": 1, "a": [true, null, 1.5, "s"], "m": {"y": 2, "b": 3}})");
  ASSERT_TRUE(v.is_dict());
  EXPECT_EQ(ToStr(v), "{'z': 1, 'a': [True, None, 1.5, 's'], 'm': {'y': 2, 'b': 3}}");
  EXPECT_EQ(v.depth(), 2);
  EXPECT_TRUE(FromJson("18446744073709551615").is_float());  // past int64
  EXPECT_FALSE(Value::FromJson(Json::parse("[[[[1]]]]"), 3).ok());
}

TEST(JinjaValueTest, Truthiness) {
  EXPECT_FALSE(Value().Truthy());
  EXPECT_FALSE(Value::None().Truthy());
  EXPECT_FALSE(Value::Int(0).Truthy());
  EXPECT_FALSE(Value::Float(0.0).Truthy());
  EXPECT_FALSE(Value::String("").Truthy());
  EXPECT_FALSE(Value::List({}).Truthy());
  EXPECT_FALSE(FromJson("{}").Truthy());
  EXPECT_TRUE(Value::String(" ").Truthy());
  EXPECT_TRUE(Value::List({Value::None()}).Truthy());
}

TEST(JinjaValueTest, PythonEquality) {
  EXPECT_TRUE(Equals(Value::Int(1), Value::Float(1.0)));
  EXPECT_TRUE(Equals(Value::Int(1), Value::Bool(true)));
  EXPECT_FALSE(Equals(Value::String(""), Value::Bool(false)));
  EXPECT_FALSE(Equals(Value::None(), Value()));
  EXPECT_TRUE(Equals(Value(), Value::Undefined("other")));
  EXPECT_TRUE(Equals(FromJson(R"({"a": 1, "b": [1, {"c": 2}]})"), FromJson(R"({"b": [1, {"c": 2}], "a": 1})")));
  EXPECT_FALSE(Equals(FromJson(R"({"a": 1})"), FromJson(R"({"a": 2})")));
  EXPECT_FALSE(Equals(Value::List({Value::Int(1)}), Value::Tuple({Value::Int(1)})));
}

TEST(JinjaValueTest, Ordering) {
  EXPECT_EQ(*Compare(Value::Int(1), Value::Float(1.5)), -1);
  EXPECT_EQ(*Compare(Value::String("b"), Value::String("a")), 1);
  EXPECT_EQ(*Compare(Value::String("z"), Value::String("é")), -1);  // code point order
  EXPECT_EQ(*Compare(Value::List({Value::Int(1), Value::Int(2)}), Value::List({Value::Int(1)})), 1);
  EXPECT_FALSE(Compare(Value::String("a"), Value::Int(1)).ok());
}

TEST(JinjaValueTest, StrAndRepr) {
  EXPECT_EQ(ToStr(Value()), "");
  EXPECT_EQ(ToStr(Value::None()), "None");
  EXPECT_EQ(ToStr(Value::Bool(true)), "True");
  EXPECT_EQ(ToStr(Value::Float(2.0)), "2.0");
  EXPECT_EQ(ToStr(Value::String("it's")), "it's");
  EXPECT_EQ(ToRepr(Value::String("it's")), "\"it's\"");
  EXPECT_EQ(ToStr(Value::Tuple({Value::Int(1)})), "(1,)");
  EXPECT_EQ(ToStr(Value::List({Value::String("a"), Value::None(), Value()})), "['a', None, Undefined]");
}

TEST(JinjaValueTest, DictSetReplacesInPlace) {
  DictData dict;
  dict.Set(Value::String("a"), Value::Int(1));
  dict.Set(Value::Int(1), Value::String("one"));
  dict.Set(Value::String("b"), Value::Int(2));
  dict.Set(Value::String("a"), Value::Int(3));
  dict.Set(Value::Bool(true), Value::String("true"));  // True == 1: same key
  EXPECT_EQ(ToStr(Value::Dict(dict)), "{'a': 3, 1: 'true', 'b': 2}");
  EXPECT_EQ(dict.Find("b")->as_int(), 2);
  EXPECT_EQ(dict.Find(Value::Float(1.0))->as_string(), "true");
  EXPECT_EQ(dict.Find("zz"), nullptr);
}

TEST(JinjaValueTest, SelfReferencingNamespaceReprTerminates) {
  auto ns = std::make_shared<NamespaceData>();
  const Value value = Value::Namespace(ns);
  ns->attributes.Set(Value::String("self"), value);
  EXPECT_EQ(ToStr(value), "<Namespace {'self': <Namespace {...}>}>");
  ns->attributes = DictData();  // break the cycle
}

}  // namespace
}  // namespace tandem::jinja
