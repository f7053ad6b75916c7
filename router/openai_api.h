// The OpenAI-compatible HTTP API's bodies: parsing /v1/completions and /v1/chat/completions requests into
// the public GenerateRequest, and writing OpenAI's response, streaming-chunk and error objects.
// Pure functions on strings and plain values (no sockets, no sessions), tested on their own.
//
// Requests: model, prompt (a string, or token ids, or a one-element list of either) or messages,
// max_tokens / max_completion_tokens, temperature, top_p, top_k, seed, stop (string or list),
// n (only 1), stream, stream_options.include_usage, ignore_eos, user, logprobs (completions: 0; chat:
// true with top_logprobs 0: the chosen tokens' log probabilities); tandem's own extras ride in the
// body: ttft_slo_ms, tpot_slo_ms, best_effort, request_id. Fields OpenAI defines that tandem does not
// serve (top alternatives in logprobs, echo, best_of > 1, suffix, logit_bias, presence/frequency_penalty
// other than 0, tools, response_format other than text) are refused with 400 naming the field rather
// than silently ignored; unknown extra fields are ignored, as OpenAI's servers do.
#ifndef TANDEM_ROUTER_OPENAI_API_H_
#define TANDEM_ROUTER_OPENAI_API_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "proto/tandem.pb.h"
#include "router/front_door.h"

namespace tandem::router {

struct OpenAiRequest {
  bool chat = false;
  bool stream = false;
  bool include_usage = false;
  std::string model;                   // as the client named it (echoed back)
  nlohmann::ordered_json messages;     // chat: as sent, for the chat template
  v1::GenerateRequest generate;        // completions: complete; chat: without the prompt
};

// InvalidArgument naming the field (OpenAI's name: "temperature", "messages[2].content", ...).
absl::StatusOr<OpenAiRequest> ParseCompletionRequest(std::string_view body);
absl::StatusOr<OpenAiRequest> ParseChatRequest(std::string_view body);

// HTTP status and OpenAI error object for a failed request:
//   InvalidArgument 400 invalid_request_error, NotFound 404 not_found_error,
//   ResourceExhausted 429 rate_limit_error (the refusal's reason as the message),
//   Unavailable 503 service_unavailable, DeadlineExceeded 504, Unimplemented 501, others 500.
int HttpStatusFor(const absl::Status& status);
std::string ErrorJson(const absl::Status& status);
// The field named at the start of an InvalidArgument message ("temperature must be ...") or null.
nlohmann::json ErrorParam(const absl::Status& status);

// What a response needs besides the generated text.
struct ResponseIds {
  std::string id;       // "cmpl-..." or "chatcmpl-..."
  int64_t created = 0;  // seconds since the epoch
  std::string model;
};

// The chosen tokens' log probabilities of a response or a chunk (top alternatives are not served).
struct TokenLogprobs {
  std::vector<std::string> tokens;  // each token's own text
  std::vector<float> logprobs;
};
// OpenAI's shapes: completions {"tokens", "token_logprobs", "top_logprobs": null, "text_offset"} with
// text offsets counted from `text_offset` (bytes of completion text before these tokens); chat
// {"content": [{"token", "logprob", "bytes", "top_logprobs": []}]}.
nlohmann::json CompletionLogprobsJson(const TokenLogprobs& logprobs, int64_t text_offset);
nlohmann::json ChatLogprobsJson(const TokenLogprobs& logprobs);

// tandem's extra field on the last object: finish reason, timing breakdown, SLO verdict, workers.
nlohmann::json TandemReport(const GenerateFinal& final);

// Non-streaming bodies.
// `logprobs`: null, or the object of CompletionLogprobsJson / ChatLogprobsJson.
std::string CompletionJson(const ResponseIds& ids, const std::string& text, const GenerateFinal& final,
                           const nlohmann::json& logprobs = nullptr);
std::string ChatCompletionJson(const ResponseIds& ids, const std::string& text, const GenerateFinal& final,
                               const nlohmann::json& logprobs = nullptr);

// Server-sent-event payloads ("data: ...\n\n" is added by the caller). A text delta; the last chunk
// (finish_reason set, empty delta, tandem's report); the usage chunk (choices empty) when asked for.
std::string CompletionChunkJson(const ResponseIds& ids, const std::string& text,
                                const nlohmann::json& logprobs = nullptr);
// The same text-delta objects, built once per request as a prefix and a suffix around the quoted text
// (the per-token path: no JSON object is built per token).
class DeltaWriter {
 public:
  DeltaWriter(bool chat, const ResponseIds& ids);
  // == CompletionChunkJson / ChatChunkJson(first = false); the first chat delta also names the role.
  std::string Delta(const std::string& text, bool first) const;

 private:
  std::string prefix_, first_prefix_, suffix_;
};
std::string ChatChunkJson(const ResponseIds& ids, const std::string& text, bool first,
                          const nlohmann::json& logprobs = nullptr);
std::string FinalChunkJson(bool chat, const ResponseIds& ids, const GenerateFinal& final);
std::string UsageChunkJson(bool chat, const ResponseIds& ids, const GenerateFinal& final);

// GET /v1/models.
std::string ModelsJson(const std::string& name, int64_t max_context, int64_t created);

}  // namespace tandem::router

#endif  // TANDEM_ROUTER_OPENAI_API_H_
