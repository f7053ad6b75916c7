#include "router/api_keys.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/cluster_secret.h"

namespace tandem::router {
absl::StatusOr<ApiKeys> ApiKeys::FromFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read '", path, "'"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return FromText(absl::StrCat(flag, " '", path, "'"), buffer.str());
}

absl::StatusOr<ApiKeys> ApiKeys::FromText(absl::string_view source, absl::string_view text) {
  ApiKeys keys;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    if (line.size() < 16) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, " line ", line_number, ": a key of ", line.size(), " characters; at least 16 needed"));
    }
    for (char c : line) {
      if (c < 0x21 || c > 0x7e) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, " line ", line_number, ": keys are printable ASCII without spaces"));
      }
    }
    keys.keys_.emplace_back(line);
  }
  if (keys.keys_.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no key in it"));
  return keys;
}

absl::StatusOr<int> ApiKeys::Match(absl::string_view authorization) const {
  if (keys_.empty()) return -1;
  authorization = absl::StripAsciiWhitespace(authorization);
  if (authorization.empty()) {
    return absl::UnauthenticatedError("no API key: send the header 'Authorization: Bearer <key>'");
  }
  if (authorization.size() < 7 || !absl::EqualsIgnoreCase(authorization.substr(0, 7), "bearer ")) {
    return absl::UnauthenticatedError("the Authorization header is not 'Bearer <key>'");
  }
  const absl::string_view key = absl::StripLeadingAsciiWhitespace(authorization.substr(7));
  int match = -1;
  for (size_t i = 0; i < keys_.size(); ++i) {  // no early exit
    if (ConstantTimeEquals(std::string_view(key.data(), key.size()), keys_[i])) match = static_cast<int>(i);
  }
  if (match < 0) return absl::UnauthenticatedError("invalid API key");
  return match;
}

}  // namespace tandem::router
