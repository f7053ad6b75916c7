// Fuzzes the OpenAI-compatible HTTP API's request bodies: the input is one POST body, parsed as both a
// /v1/completions and a /v1/chat/completions request, then validated as the front door does.
//
// Invariants:
//   - Any body is parsed or refused with a Status: no exception escapes (the HTTP handler calls these
//     parsers directly), and a refusal is a short InvalidArgument that ErrorJson renders (request_checks.h).
//   - A parsed chat request keeps a non-empty list of message objects, each with a string role and a
//     string or null content (text parts joined).
//   - What parses then passes or fails PrepareGenerateRequest under the checks of request_checks.h (a chat
//     request with a fixed rendered prompt: the chat template is not fuzzed here).
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_support.h"
#include "fuzz/request_checks.h"
#include "router/openai_api.h"

namespace tandem::fuzz {
namespace {

void CheckChatMessages(const nlohmann::ordered_json& messages) {
  TANDEM_FUZZ_CHECK(messages.is_array() && !messages.empty(), "messages is not a non-empty list");
  for (const nlohmann::ordered_json& message : messages) {
    TANDEM_FUZZ_CHECK(message.is_object(), "a message is not an object");
    TANDEM_FUZZ_CHECK(message.contains("role") && message["role"].is_string(),
                      "a message has no string role");
    if (message.contains("content")) {
      TANDEM_FUZZ_CHECK(message["content"].is_string() || message["content"].is_null(),
                        "a message's content is neither a string nor null");
    }
  }
}

}  // namespace
}  // namespace tandem::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tandem::fuzz;
  namespace router = tandem::router;
  const std::string_view body = AsText(data, size);
  for (bool chat : {false, true}) {
    absl::StatusOr<router::OpenAiRequest> request =
        chat ? router::ParseChatRequest(body) : router::ParseCompletionRequest(body);
    if (!request.ok()) {
      CheckRequestError(request.status());
      continue;
    }
    TANDEM_FUZZ_CHECK(request->chat == chat, "chat flag");
    TANDEM_FUZZ_CHECK(request->stream || !request->include_usage, "include_usage without stream");
    TANDEM_FUZZ_CHECK(request->model == request->generate.model(), "model name");
    tandem::v1::GenerateRequest generate = request->generate;
    if (chat) {
      CheckChatMessages(request->messages);
      generate.set_prompt("<s>user: Hello\nassistant:");
    } else {
      TANDEM_FUZZ_CHECK(generate.input_case() != tandem::v1::GenerateRequest::INPUT_NOT_SET, "no prompt");
    }
    CheckPrepared(generate);
  }
  return 0;
}
