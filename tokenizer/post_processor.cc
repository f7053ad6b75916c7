#include "tokenizer/post_processor.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tandem::tokenizer_internal {
namespace {

// The ids of TemplateProcessing's special_tokens[name].
absl::StatusOr<std::vector<int32_t>> SpecialTokenIds(const Json& post_processor,
                                                     const std::string& name,
                                                     const std::string& path) {
  const Json* specials = FindField(post_processor, "special_tokens");
  const Json* entry = specials == nullptr ? nullptr : FindField(*specials, name);
  const Json* ids = entry == nullptr ? nullptr : FindField(*entry, "ids");
  if (ids == nullptr || !ids->is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ".special_tokens['", name, "'].ids is missing"));
  }
  std::vector<int32_t> result;
  for (const Json& id : *ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".special_tokens['", name, "'].ids must hold token ids"));
    }
    result.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return result;
}

// The id of a ["token", id] pair as BertProcessing and RobertaProcessing store cls and sep.
absl::StatusOr<int32_t> PairId(const Json& post_processor, const std::string& key,
                               const std::string& path) {
  const Json* pair = FindField(post_processor, key);
  if (pair == nullptr || !pair->is_array() || pair->size() != 2 ||
      !(*pair)[1].is_number_integer()) {
    return absl::InvalidArgumentError(
        absl::StrCat(FieldPath(path, key), " must be a [token, id] pair"));
  }
  return static_cast<int32_t>((*pair)[1].get<int64_t>());
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostProcessor>> PostProcessor::FromJson(const Json* post_processor,
                                                                       const std::string& path) {
  auto result = std::unique_ptr<PostProcessor>(new PostProcessor());
  if (post_processor != nullptr) TANDEM_RETURN_IF_ERROR(result->Add(*post_processor, path));
  return result;
}

absl::Status PostProcessor::Add(const Json& post_processor, const std::string& path) {
  if (!post_processor.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " must be an object"));
  }
  TANDEM_ASSIGN_OR_RETURN(const std::string type, GetString(post_processor, "type", path));
  std::vector<int32_t> prefix, suffix;
  if (type == "Sequence") {
    const Json* children = FindField(post_processor, "processors");
    if (children == nullptr || !children->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".processors must be an array"));
    }
    for (size_t i = 0; i < children->size(); ++i) {
      TANDEM_RETURN_IF_ERROR(Add((*children)[i], absl::StrCat(path, ".processors[", i, "]")));
    }
    return absl::OkStatus();
  } else if (type == "ByteLevel") {
    return absl::OkStatus();
  } else if (type == "TemplateProcessing") {
    const Json* single = FindField(post_processor, "single");
    if (single == nullptr || !single->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".single must be an array"));
    }
    bool seen_sequence = false;
    for (size_t i = 0; i < single->size(); ++i) {
      const Json& item = (*single)[i];
      const std::string item_path = absl::StrCat(path, ".single[", i, "]");
      if (const Json* special = FindField(item, "SpecialToken")) {
        TANDEM_ASSIGN_OR_RETURN(const std::string name, GetString(*special, "id", item_path));
        TANDEM_ASSIGN_OR_RETURN(auto ids, SpecialTokenIds(post_processor, name, path));
        auto& target = seen_sequence ? suffix : prefix;
        target.insert(target.end(), ids.begin(), ids.end());
      } else if (const Json* sequence = FindField(item, "Sequence")) {
        TANDEM_ASSIGN_OR_RETURN(const std::string name, GetString(*sequence, "id", item_path));
        if (name != "A" || seen_sequence) {
          return absl::InvalidArgumentError(
              absl::StrCat(item_path, ": the single template must hold $A exactly once"));
        }
        seen_sequence = true;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(item_path, " must be a SpecialToken or a Sequence"));
      }
    }
    if (!seen_sequence) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".single has no $A"));
    }
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    TANDEM_ASSIGN_OR_RETURN(const int32_t cls, PairId(post_processor, "cls", path));
    TANDEM_ASSIGN_OR_RETURN(const int32_t sep, PairId(post_processor, "sep", path));
    prefix.push_back(cls);
    suffix.push_back(sep);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(path, ".type '", type, "' is not supported"));
  }
  // Later processors wrap the output of earlier ones.
  prefix_ids_.insert(prefix_ids_.begin(), prefix.begin(), prefix.end());
  suffix_ids_.insert(suffix_ids_.end(), suffix.begin(), suffix.end());
  return absl::OkStatus();
}

}  // namespace tandem::tokenizer_internal
