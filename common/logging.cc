#include "common/logging.h"

#include <algorithm>

#include <atomic>
#include <cstdio>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tandem {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_mu;
const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarning: return "WARN";
    case LogLevel::kError: return "ERROR";
  }
  return "?";
}
}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(std::string(name));
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warning" || lower == "warn") return LogLevel::kWarning;
  if (lower == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("--log-level: '", std::string(name), "' is not one of debug, info, warning, error"));
}

std::string LogSafe(std::string_view text, size_t max_bytes) {
  std::string out;
  const size_t keep = std::min(text.size(), max_bytes);
  out.reserve(keep + 16);
  for (size_t i = 0; i < keep; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (keep < text.size()) absl::StrAppend(&out, "... (", text.size(), " bytes)");
  return out;
}

LogLine::LogLine(LogLevel level, std::string_view component, std::string_view request_id)
    : enabled_(static_cast<int>(level) >= g_level.load()),
      level_(level),
      component_(component),
      request_id_(request_id) {}

LogLine::~LogLine() {
  if (!enabled_) return;
  std::string line = absl::StrCat(
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()), " ",
      LevelName(level_), " ", component_);
  // Untrusted text (client ids, prompts quoted in errors) reaches log lines: one line per call, bounded.
  if (!request_id_.empty()) absl::StrAppend(&line, " req=", LogSafe(request_id_, 128));
  absl::StrAppend(&line, " ", LogSafe(stream_.str(), 8192), "\n");
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace tandem
