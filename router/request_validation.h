// Validation of the public API's requests against the served model (RELIABILITY.md V1-V8).
//
// Every check that does not need token ids runs before the prompt is tokenized, so a hostile request
// (a 10 MB prompt, a bad model name) costs no tokenizer time. Errors are InvalidArgument naming the
// field ("max_tokens", "sampling.top_p", "prompt_token_ids[3]"), except an unknown model name, which
// is NotFound.
//
// Thread safety: pure functions; the Tokenizer is used read-only.
#ifndef TANDEM_ROUTER_REQUEST_VALIDATION_H_
#define TANDEM_ROUTER_REQUEST_VALIDATION_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "proto/tandem.pb.h"
#include "tokenizer/tokenizer.h"
#include "types/sampling.h"

namespace tandem::router {

// Bounds on request-derived sizes.
inline constexpr int64_t kMaxPromptBytesPerToken = 32;  // a prompt longer than context * 32 bytes
                                                        // cannot fit and is refused untokenized
inline constexpr int kMaxStopStrings = 16;
inline constexpr int kMaxStopStringBytes = 256;
inline constexpr int kMaxStopTokenIds = 64;

// The model this router serves.
// The longest client request_id accepted (it is logged, escaped).
inline constexpr size_t kMaxClientRequestIdBytes = 256;

struct ServedModel {
  std::string name;            // the model directory's basename
  int64_t max_context = 0;     // config.json max_position_embeddings
  int64_t vocab_size = 0;      // config.json vocab_size (embedding rows)
  std::vector<int32_t> eos_token_ids;
  int32_t default_max_tokens = 64;
};

// A request that passed validation, in the router's terms.
struct PreparedRequest {
  std::vector<int32_t> prompt;          // token ids, all in [0, vocab_size)
  int32_t max_tokens = 0;               // >= 1; prompt.size() + max_tokens <= max_context
  SamplingParams sampling;              // validated; top_p 0 already mapped to 1
  std::vector<std::string> stop;        // stop strings
  std::vector<int32_t> stop_token_ids;  // the request's, plus the model's EOS unless ignore_eos
  double ttft_slo_ms = 0;
  double tpot_slo_ms = 0;
  bool best_effort = false;
  bool logprobs = false;  // return each token's log probability
};

// `name` is "" (the only model) or the served model's name. Names with "..", "/", "\" or
// whitespace are InvalidArgument; other names that are not the served one are NotFound.
absl::Status ValidateModelName(const std::string& name, const ServedModel& model);

// Offset of the first byte that is not part of well-formed UTF-8, or -1 when `text` is valid.
int64_t FindInvalidUtf8(std::string_view text);

// Parses a public API request from its wire bytes. Protobuf refuses a proto3 string field that is not
// UTF-8, and gRPC's typed handlers then answer UNIMPLEMENTED with no message (issue 11 item 7); this
// says why instead, as InvalidArgument naming the field: "prompt: not valid UTF-8 (at byte 2)",
// "stop[1]: ...", or, when the bytes are not a protobuf message at all, "request: not a valid
// tandem.v1.GenerateRequest (malformed protobuf wire format)".
absl::Status ParseRequestNamingTheField(std::string_view bytes, google::protobuf::Message* request);

// All checks, then tokenization, then the context-length check (V1).
absl::StatusOr<PreparedRequest> PrepareGenerateRequest(const v1::GenerateRequest& request,
                                                       const ServedModel& model,
                                                       const Tokenizer& tokenizer);

}  // namespace tandem::router

#endif  // TANDEM_ROUTER_REQUEST_VALIDATION_H_
