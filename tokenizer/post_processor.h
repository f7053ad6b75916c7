// The "post_processor" of a tokenizer.json, reduced to what single-sequence encoding needs: ids
// to put before and after the encoded text when special tokens are requested. Supported:
// TemplateProcessing ("single" template), ByteLevel (no ids), BertProcessing, RobertaProcessing
// and Sequence of these; null adds nothing.
//
// Thread safety: immutable after FromJson.
#ifndef TANDEM_TOKENIZER_POST_PROCESSOR_H_
#define TANDEM_TOKENIZER_POST_PROCESSOR_H_

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tokenizer/json_fields.h"

namespace tandem::tokenizer_internal {

class PostProcessor {
 public:
  // `post_processor` may be nullptr (JSON null).
  static absl::StatusOr<std::unique_ptr<PostProcessor>> FromJson(const Json* post_processor,
                                                                 const std::string& path);

  const std::vector<int32_t>& prefix_ids() const { return prefix_ids_; }
  const std::vector<int32_t>& suffix_ids() const { return suffix_ids_; }

 private:
  PostProcessor() = default;
  absl::Status Add(const Json& post_processor, const std::string& path);

  std::vector<int32_t> prefix_ids_;
  std::vector<int32_t> suffix_ids_;
};

}  // namespace tandem::tokenizer_internal

#endif  // TANDEM_TOKENIZER_POST_PROCESSOR_H_
