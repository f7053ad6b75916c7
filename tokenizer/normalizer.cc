#include "tokenizer/normalizer.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"

namespace tandem::tokenizer_internal {
namespace {

std::string ReplaceMatches(std::string_view text, const std::vector<ByteRange>& matches,
                           std::string_view content) {
  std::string out;
  size_t last = 0;
  for (const ByteRange& match : matches) {
    out.append(text.substr(last, match.begin - last));
    if (match.end > match.begin) out.append(content);
    last = match.end;
  }
  out.append(text.substr(last));
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Normalizer>> Normalizer::FromJson(const Json& normalizer,
                                                                 const std::string& path) {
  auto result = std::unique_ptr<Normalizer>(new Normalizer());
  TANDEM_RETURN_IF_ERROR(result->AddSteps(normalizer, path));
  return result;
}

absl::Status Normalizer::AddSteps(const Json& normalizer, const std::string& path) {
  if (!normalizer.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, " must be an object"));
  TANDEM_ASSIGN_OR_RETURN(const std::string type, GetString(normalizer, "type", path));
  if (type == "Sequence") {
    const Json* children = FindField(normalizer, "normalizers");
    if (children == nullptr || !children->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".normalizers must be an array"));
    }
    for (size_t i = 0; i < children->size(); ++i) {
      TANDEM_RETURN_IF_ERROR(AddSteps((*children)[i], absl::StrCat(path, ".normalizers[", i, "]")));
    }
    return absl::OkStatus();
  }
  Step step;
  if (type == "Prepend") {
    step.kind = Kind::kPrepend;
    TANDEM_ASSIGN_OR_RETURN(step.text, GetString(normalizer, "prepend", path));
  } else if (type == "Replace") {
    step.kind = Kind::kReplace;
    TANDEM_ASSIGN_OR_RETURN(const PatternSpec pattern, GetPattern(normalizer, "pattern", path));
    TANDEM_ASSIGN_OR_RETURN(step.content, GetString(normalizer, "content", path));
    if (pattern.is_regex) {
      TANDEM_ASSIGN_OR_RETURN(step.regex, Regex::Compile(pattern.text));
    } else if (pattern.text.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".pattern is empty"));
    } else {
      step.text = pattern.text;
    }
  } else if (type == "Strip") {
    step.kind = Kind::kStrip;
    TANDEM_ASSIGN_OR_RETURN(const bool left, GetBool(normalizer, "strip_left", path, true));
    TANDEM_ASSIGN_OR_RETURN(const bool right, GetBool(normalizer, "strip_right", path, true));
    if (!left && !right) return absl::OkStatus();
    const char* pattern = left && right ? "^\\s+|\\s+$" : (left ? "^\\s+" : "\\s+$");
    TANDEM_ASSIGN_OR_RETURN(step.regex, Regex::Compile(pattern));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ".type '", type, "' is not supported (supported: Sequence, Prepend, ",
                     "Replace, Strip)"));
  }
  steps_.push_back(std::move(step));
  return absl::OkStatus();
}

absl::StatusOr<std::string> Normalizer::Normalize(std::string_view text) const {
  std::string current(text);
  for (const Step& step : steps_) {
    switch (step.kind) {
      case Kind::kPrepend:
        if (!current.empty()) current.insert(0, step.text);
        break;
      case Kind::kReplace:
        if (step.regex == nullptr) {
          current = absl::StrReplaceAll(current, {{step.text, step.content}});
        } else {
          TANDEM_ASSIGN_OR_RETURN(auto matches, step.regex->FindAll(current));
          current = ReplaceMatches(current, matches, step.content);
        }
        break;
      case Kind::kStrip: {
        TANDEM_ASSIGN_OR_RETURN(auto matches, step.regex->FindAll(current));
        current = ReplaceMatches(current, matches, "");
        break;
      }
    }
  }
  return current;
}

}  // namespace tandem::tokenizer_internal
