#include "chat/jinja_format.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem::jinja {
namespace {

std::string Percent(const std::string& format, const Value& args) {
  RenderContext context(RenderLimits(), nullptr);
  absl::StatusOr<std::string> out = PercentFormat(context, format, args);
  return out.ok() ? *out : "ERROR: " + std::string(out.status().message());
}

std::string Format(const std::string& format, std::vector<Value> positional) {
  RenderContext context(RenderLimits(), nullptr);
  CallArgs args;
  args.positional = std::move(positional);
  absl::StatusOr<std::string> out = StrFormat(context, format, args);
  return out.ok() ? *out : "ERROR: " + std::string(out.status().message());
}

TEST(JinjaFormatTest, PercentFormat) {
  EXPECT_EQ(
      Percent("%s|%r|%d|%i", Value::Tuple({Value::String("a"), Value::String("a"), Value::Float(3.9), Value::Int(-2)})),
      "a|'a'|3|-2");
  EXPECT_EQ(Percent("%5.2f|%-5d|%05d|%+d|% d", Value::Tuple({Value::Float(3.14159), Value::Int(42), Value::Int(42),
                                                             Value::Int(7), Value::Int(7)})),
            " 3.14|42   |00042|+7| 7");
  EXPECT_EQ(Percent("%x|%X|%#x|%o|%#o|%c|%%", Value::Tuple({Value::Int(255), Value::Int(255), Value::Int(255),
                                                            Value::Int(8), Value::Int(8), Value::Int(65)})),
            "ff|FF|0xff|10|0o10|A|%");
  EXPECT_EQ(Percent("%e|%g|%.3s|%*d", Value::Tuple({Value::Float(12345.678), Value::Float(0.00001),
                                                    Value::String("abcdef"), Value::Int(4), Value::Int(7)})),
            "1.234568e+04|1e-05|abc|   7");
  EXPECT_EQ(Percent("%s", Value::None()), "None");
  EXPECT_EQ(Percent("%s", Value::List({Value::Int(1)})), "[1]");
  EXPECT_EQ(Percent("%s and %s", Value::Tuple({Value::Int(1)})), "ERROR: not enough arguments for format string");
  EXPECT_EQ(Percent("x", Value::Int(1)), "ERROR: not all arguments converted during string formatting");
  EXPECT_EQ(Percent("%d", Value::String("a")), "ERROR: %d format: a real number is required, not str");
}

TEST(JinjaFormatTest, StrFormat) {
  EXPECT_EQ(Format("{} {}", {Value::Int(1), Value::String("b")}), "1 b");
  EXPECT_EQ(Format("{1}{0}{1}", {Value::String("a"), Value::String("b")}), "bab");
  EXPECT_EQ(Format("{{}} {0!r}", {Value::String("q")}), "{} 'q'");
  EXPECT_EQ(Format("{:>6.2f}|{:<4d}|{:^7}|{:_>5}",
                   {Value::Float(3.14159), Value::Int(5), Value::String("mid"), Value::String("x")}),
            "  3.14|5   |  mid  |____x");
  EXPECT_EQ(Format("{:,}|{:08.3f}|{:+}|{:b}", {Value::Int(1234567), Value::Float(-3.5), Value::Int(3), Value::Int(5)}),
            "1,234,567|-003.500|+3|101");
  EXPECT_EQ(Format("{0[1]} {0[0]}", {Value::List({Value::String("x"), Value::String("y")})}), "y x");
  EXPECT_EQ(Format("{2}", {Value::Int(1)}), "ERROR: Replacement index 2 out of range for positional args tuple");
}

TEST(JinjaFormatTest, Strftime) {
  const absl::CivilSecond t(2025, 3, 7, 12, 34, 56);  // a Friday
  EXPECT_EQ(Strftime("%d %b %Y", t), "07 Mar 2025");
  EXPECT_EQ(Strftime("%Y-%m-%d %H:%M:%S", t), "2025-03-07 12:34:56");
  EXPECT_EQ(Strftime("%A %a %B %j %p %I %y %e %u %w", t), "Friday Fri March 066 PM 12 25  7 5 5");
  EXPECT_EQ(Strftime("%-d/%-m %-H:%M %%", t), "7/3 12:34 %");
  EXPECT_EQ(Strftime("%c", t), "Fri Mar  7 12:34:56 2025");
  EXPECT_EQ(Strftime("%F %T %D", absl::CivilSecond(2024, 1, 2, 3, 4, 5)), "2024-01-02 03:04:05 01/02/24");
  EXPECT_EQ(Strftime("%U %W", absl::CivilSecond(2025, 3, 7, 0, 0, 0)), "09 09");
}

}  // namespace
}  // namespace tandem::jinja
