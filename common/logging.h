// One line per event on stderr: time, level, component, optional request id, message.
//
//   TANDEM_LOG(INFO, "prefill") << "batch of " << n << " prompts";
//   TANDEM_LOG_REQ(WARNING, "decode", request_id) << "cancelled";
//
// Thread safety: lines from different threads never interleave.
#ifndef TANDEM_COMMON_LOGGING_H_
#define TANDEM_COMMON_LOGGING_H_

#include <sstream>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace tandem {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Lines below this level are dropped. Default kInfo.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// "debug", "info", "warning", "error".
absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name);

// What a log line may contain from untrusted input: control characters (a newline would forge a line)
// escaped as \xNN, and at most `max_bytes` bytes kept ("... (N bytes)" marks a cut).
std::string LogSafe(std::string_view text, size_t max_bytes);

// One line: the request id (up to 128 bytes) and the message (up to 8 KiB) go through LogSafe.
class LogLine {
 public:
  LogLine(LogLevel level, std::string_view component, std::string_view request_id);
  ~LogLine();
  template <typename T>
  LogLine& operator<<(const T& value) {
    if (enabled_) stream_ << value;
    return *this;
  }

 private:
  bool enabled_;
  LogLevel level_;
  std::string component_;
  std::string request_id_;
  std::ostringstream stream_;
};

}  // namespace tandem

#define TANDEM_LOG_LEVEL_DEBUG ::tandem::LogLevel::kDebug
#define TANDEM_LOG_LEVEL_INFO ::tandem::LogLevel::kInfo
#define TANDEM_LOG_LEVEL_WARNING ::tandem::LogLevel::kWarning
#define TANDEM_LOG_LEVEL_ERROR ::tandem::LogLevel::kError

#define TANDEM_LOG(level, component) ::tandem::LogLine(TANDEM_LOG_LEVEL_##level, component, "")
#define TANDEM_LOG_REQ(level, component, request_id) \
  ::tandem::LogLine(TANDEM_LOG_LEVEL_##level, component, request_id)

#endif  // TANDEM_COMMON_LOGGING_H_
