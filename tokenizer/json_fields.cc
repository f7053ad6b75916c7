#include "tokenizer/json_fields.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tandem::tokenizer_internal {

std::string FieldPath(const std::string& path, const std::string& key) {
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
}

const Json* FindField(const Json& object, const std::string& key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::StatusOr<std::string> GetString(const Json& object, const std::string& key,
                                      const std::string& path, std::optional<std::string> fallback) {
  const Json* field = FindField(object, key);
  if (field == nullptr) {
    if (fallback.has_value()) return *fallback;
    return absl::InvalidArgumentError(absl::StrCat(FieldPath(path, key), " is missing"));
  }
  if (!field->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(FieldPath(path, key), " must be a string"));
  }
  return field->get<std::string>();
}

absl::StatusOr<std::optional<std::string>> GetOptionalString(const Json& object,
                                                             const std::string& key,
                                                             const std::string& path) {
  const Json* field = FindField(object, key);
  if (field == nullptr) return std::optional<std::string>();
  if (!field->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(FieldPath(path, key), " must be a string or null"));
  }
  return std::optional<std::string>(field->get<std::string>());
}

absl::StatusOr<bool> GetBool(const Json& object, const std::string& key, const std::string& path,
                             bool fallback) {
  const Json* field = FindField(object, key);
  if (field == nullptr) return fallback;
  if (!field->is_boolean()) {
    return absl::InvalidArgumentError(absl::StrCat(FieldPath(path, key), " must be a boolean"));
  }
  return field->get<bool>();
}

absl::StatusOr<int64_t> GetInt(const Json& object, const std::string& key, const std::string& path,
                               int64_t fallback) {
  const Json* field = FindField(object, key);
  if (field == nullptr) return fallback;
  if (!field->is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat(FieldPath(path, key), " must be an integer"));
  }
  return field->get<int64_t>();
}

absl::StatusOr<PatternSpec> GetPattern(const Json& object, const std::string& key,
                                       const std::string& path) {
  const std::string field_path = FieldPath(path, key);
  const Json* field = FindField(object, key);
  if (field == nullptr || !field->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field_path, " must be an object {\"String\": ..} or {\"Regex\": ..}"));
  }
  PatternSpec spec;
  if (const Json* text = FindField(*field, "String"); text != nullptr && text->is_string()) {
    spec.text = text->get<std::string>();
    return spec;
  }
  if (const Json* text = FindField(*field, "Regex"); text != nullptr && text->is_string()) {
    spec.is_regex = true;
    spec.text = text->get<std::string>();
    return spec;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field_path, " must hold a string under \"String\" or \"Regex\""));
}

}  // namespace tandem::tokenizer_internal
