#include "common/logging.h"

#include <string>

#include "gtest/gtest.h"

namespace tandem {
namespace {

// A client-chosen request id went into log lines as is: a newline forged a second line, 1 MB made a
// 1 MB line (issue 11, item 7).
TEST(LogSafeTest, EscapesControlCharactersAndBoundsTheLength) {
  EXPECT_EQ(LogSafe("plain id-7", 64), "plain id-7");
  EXPECT_EQ(LogSafe("a\nFAKE ERROR line", 64), "a\\x0aFAKE ERROR line");
  EXPECT_EQ(LogSafe(std::string("\r\t\x7f", 3), 64), "\\x0d\\x09\\x7f");
  EXPECT_EQ(LogSafe("caf\xc3\xa9", 64), "caf\xc3\xa9");  // UTF-8 kept
  const std::string huge(1 << 20, 'x');
  const std::string cut = LogSafe(huge, 128);
  EXPECT_EQ(cut, std::string(128, 'x') + "... (1048576 bytes)");
}

}  // namespace
}  // namespace tandem
