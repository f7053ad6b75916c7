// Typed, non-throwing access to tokenizer.json fields. Errors name the field by its JSON path
// ("model.unk_token must be a string or null"); callers prefix the file name.
#ifndef TANDEM_TOKENIZER_JSON_FIELDS_H_
#define TANDEM_TOKENIZER_JSON_FIELDS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace tandem::tokenizer_internal {

using Json = nlohmann::json;

// `object[key]` when present and not null, else nullptr. `object` must be a JSON object.
const Json* FindField(const Json& object, const std::string& key);

// A string field; `fallback` when absent or null (nullopt fallback: the field is required).
absl::StatusOr<std::string> GetString(const Json& object, const std::string& key,
                                      const std::string& path,
                                      std::optional<std::string> fallback = std::nullopt);
// As GetString, but absent or null gives nullopt.
absl::StatusOr<std::optional<std::string>> GetOptionalString(const Json& object,
                                                             const std::string& key,
                                                             const std::string& path);
absl::StatusOr<bool> GetBool(const Json& object, const std::string& key, const std::string& path,
                             bool fallback);
absl::StatusOr<int64_t> GetInt(const Json& object, const std::string& key, const std::string& path,
                               int64_t fallback);

// "<path>.<key>" for messages.
std::string FieldPath(const std::string& path, const std::string& key);

// A replacement pattern {"String": "..."} or {"Regex": "..."}.
struct PatternSpec {
  bool is_regex = false;
  std::string text;
};
absl::StatusOr<PatternSpec> GetPattern(const Json& object, const std::string& key,
                                       const std::string& path);

}  // namespace tandem::tokenizer_internal

#endif  // TANDEM_TOKENIZER_JSON_FIELDS_H_
