#include "chat/jinja_strings.h"

#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem::jinja {
namespace {

using ::testing::ElementsAre;

TEST(JinjaStringsTest, Utf8RoundTripAndValidation) {
  const std::string text = "aé日🚀";
  EXPECT_EQ(DecodeUtf8(text), U"aé日🚀");
  EXPECT_EQ(EncodeUtf8(U"aé日🚀"), text);
  EXPECT_EQ(CodePointCount(text), 4u);
  EXPECT_EQ(FindInvalidUtf8(text), std::nullopt);
  EXPECT_EQ(FindInvalidUtf8("ok\xC3"), 2u);        // truncated
  EXPECT_EQ(FindInvalidUtf8("\xC0\x80"), 0u);      // overlong
  EXPECT_EQ(FindInvalidUtf8("\xED\xA0\x80"), 0u);  // surrogate
  EXPECT_EQ(DecodeUtf8("a\xFF"
                       "b"),
            U"a\uFFFDb");  // malformed bytes decode as U+FFFD
}

TEST(JinjaStringsTest, PythonWhitespace) {
  for (char32_t c : {U' ', U'\t', U'\n', U'\v', U'\f', U'\r', U'\x1c', U'\x85', U'\u00a0', U'\u2009', U'\u3000'}) {
    EXPECT_TRUE(IsPythonSpace(c)) << static_cast<uint32_t>(c);
  }
  for (char32_t c : {U'a', U'\u200b', U'\ufeff', U'_'}) EXPECT_FALSE(IsPythonSpace(c)) << static_cast<uint32_t>(c);
}

TEST(JinjaStringsTest, Strip) {
  EXPECT_EQ(PyStrip(" \t\u00a0 hi \n\u3000", StripSide::kBoth, std::nullopt), "hi");
  EXPECT_EQ(PyStrip("  hi  ", StripSide::kLeft, std::nullopt), "hi  ");
  EXPECT_EQ(PyStrip("  hi  ", StripSide::kRight, std::nullopt), "  hi");
  EXPECT_EQ(PyStrip("xyhiyx", StripSide::kBoth, std::string("xy")), "hi");
  EXPECT_EQ(PyStrip("ééaé", StripSide::kBoth, std::string("é")), "a");
}

TEST(JinjaStringsTest, Split) {
  EXPECT_THAT(PySplit("  a  b c ", std::nullopt, -1), ElementsAre("a", "b", "c"));
  EXPECT_THAT(PySplit("a,b,,c", std::string(","), -1), ElementsAre("a", "b", "", "c"));
  EXPECT_THAT(PySplit("a b c", std::string(" "), 1), ElementsAre("a", "b c"));
  EXPECT_THAT(PySplit("  a b c ", std::nullopt, 1), ElementsAre("a", "b c "));
  EXPECT_THAT(PyRSplit("a b c", std::string(" "), 1), ElementsAre("a b", "c"));
  EXPECT_THAT(PyRSplit(" a b c  ", std::nullopt, 1), ElementsAre(" a b", "c"));
  EXPECT_THAT(PySplit("", std::nullopt, -1), ElementsAre());
  EXPECT_THAT(PySplitLines("a\nb\r\nc\rd\x0b"
                           "e\u2028f\n",
                           false),
              ElementsAre("a", "b", "c", "d", "e", "f"));
  EXPECT_THAT(PySplitLines("a\nb", true), ElementsAre("a\n", "b"));
}

TEST(JinjaStringsTest, Replace) {
  EXPECT_EQ(PyReplace("hello", "l", "L", -1), "heLLo");
  EXPECT_EQ(PyReplace("hello", "l", "L", 1), "heLlo");
  EXPECT_EQ(PyReplace("aé", "", "-", -1), "-a-é-");
}

TEST(JinjaStringsTest, CaseMapping) {
  EXPECT_EQ(PyUpper("héllo straße"), "HÉLLO STRASSE");
  EXPECT_EQ(PyLower("HÉLLO ΣΑ"), "héllo σα");
  EXPECT_EQ(PyTitle("hello wORLD it's"), "Hello World It'S");
  EXPECT_EQ(PyCapitalize("hELLO World"), "Hello world");
}

TEST(JinjaStringsTest, Repr) {
  EXPECT_EQ(PyRepr("abc"), "'abc'");
  EXPECT_EQ(PyRepr("it's"), "\"it's\"");
  EXPECT_EQ(PyRepr("a'b\"c"), "'a\\'b\"c'");
  EXPECT_EQ(PyRepr("\n\t\\\x01é\u00a0"), "'\\n\\t\\\\\\x01é\\xa0'");
}

TEST(JinjaStringsTest, FloatRepr) {
  EXPECT_EQ(PyFloatRepr(1.0), "1.0");
  EXPECT_EQ(PyFloatRepr(0.1), "0.1");
  EXPECT_EQ(PyFloatRepr(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(PyFloatRepr(1e16), "1e+16");
  EXPECT_EQ(PyFloatRepr(1e15), "1000000000000000.0");
  EXPECT_EQ(PyFloatRepr(0.0001), "0.0001");
  EXPECT_EQ(PyFloatRepr(0.00001), "1e-05");
  EXPECT_EQ(PyFloatRepr(1.5e-7), "1.5e-07");
  EXPECT_EQ(PyFloatRepr(-0.0), "-0.0");
  EXPECT_EQ(PyFloatRepr(123456789012345678.0), "1.2345678901234568e+17");
  EXPECT_EQ(PyFloatRepr(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(PyFloatRepr(std::numeric_limits<double>::quiet_NaN()), "nan");
}

TEST(JinjaStringsTest, SliceCodePoints) {
  EXPECT_EQ(SliceCodePoints("héllo", 1, 3, 1), "él");
  EXPECT_EQ(SliceCodePoints("héllo", 4, -1, -1), "olléh");
  EXPECT_EQ(SliceCodePoints("abcdef", 0, 6, 2), "ace");
}

}  // namespace
}  // namespace tandem::jinja
