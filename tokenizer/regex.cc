#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tokenizer/unicode.h"

namespace tandem::tokenizer_internal {
namespace {

std::string PcreMessage(int error_code) {
  PCRE2_UCHAR buffer[256];
  const int length = pcre2_get_error_message(error_code, buffer, sizeof(buffer));
  if (length < 0) return absl::StrCat("PCRE2 error ", error_code);
  return std::string(reinterpret_cast<const char*>(buffer), static_cast<size_t>(length));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Regex>> Regex::Compile(std::string_view pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   // \C (one code unit) could split a UTF-8 character, and matching skips UTF checks:
                                   // a tokenizer.json using it is refused at load.
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("regex '", std::string(pattern), "' at offset ", error_offset,
                                                   ": ", PcreMessage(error_code)));
  }
  // JIT is an optimisation only: without it (e.g. unsupported platform) the interpreter is used.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return std::unique_ptr<Regex>(new Regex(std::string(pattern), code));
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

absl::StatusOr<std::vector<ByteRange>> Regex::FindAll(std::string_view text) const {
  auto* code = static_cast<pcre2_code*>(code_);
  pcre2_match_data* match_data = pcre2_match_data_create_from_pattern(code, nullptr);
  if (match_data == nullptr) return absl::ResourceExhaustedError("pcre2 match data allocation");
  std::vector<ByteRange> matches;
  absl::Status status;
  size_t offset = 0;
  // The caller guarantees valid UTF-8 (Encode checks its input once), so skip PCRE2's check.
  const uint32_t options = PCRE2_NO_UTF_CHECK;
  while (offset <= text.size()) {
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                               offset, options, match_data, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      status = absl::InternalError(
          absl::StrCat("regex '", pattern_, "' failed on input: ", PcreMessage(rc)));
      break;
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data);
    const size_t begin = ovector[0];
    const size_t end = ovector[1];
    matches.push_back({begin, end});
    if (end > begin) {
      offset = end;
    } else {
      if (end >= text.size()) break;
      offset = end + Utf8SequenceLength(static_cast<unsigned char>(text[end]));
    }
  }
  pcre2_match_data_free(match_data);
  if (!status.ok()) return status;
  return matches;
}

}  // namespace tandem::tokenizer_internal
