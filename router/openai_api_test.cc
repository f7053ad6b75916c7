#include "router/openai_api.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tandem::router {
namespace {

std::string MessageOf(const absl::StatusOr<OpenAiRequest>& r) { return std::string(r.status().message()); }

TEST(OpenAiApiTest, CompletionRequestMapsEveryServedField) {
  auto r = ParseCompletionRequest(R"({"model": "m", "prompt": "Hi", "max_tokens": 7, "temperature": 0.5,
      "top_p": 0.9, "top_k": 40, "seed": 3, "stop": ["a", "b"], "stream": true,
      "stream_options": {"include_usage": true}, "ignore_eos": true, "ttft_slo_ms": 200, "tpot_slo_ms": 50,
      "best_effort": true, "request_id": "x1", "user": "u", "n": 1, "presence_penalty": 0})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->chat);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_EQ(r->model, "m");
  const v1::GenerateRequest& g = r->generate;
  EXPECT_EQ(g.prompt(), "Hi");
  EXPECT_EQ(g.max_tokens(), 7);
  EXPECT_FLOAT_EQ(g.sampling().temperature(), 0.5f);
  EXPECT_FLOAT_EQ(g.sampling().top_p(), 0.9f);
  EXPECT_EQ(g.sampling().top_k(), 40);
  EXPECT_EQ(g.sampling().seed(), 3u);
  ASSERT_EQ(g.stop_size(), 2);
  EXPECT_EQ(g.stop(1), "b");
  EXPECT_TRUE(g.ignore_eos());
  EXPECT_EQ(g.slo().ttft_ms(), 200);
  EXPECT_EQ(g.slo().tpot_ms(), 50);
  EXPECT_TRUE(g.slo().best_effort());
  EXPECT_EQ(g.request_id(), "x1");
}

TEST(OpenAiApiTest, DefaultsAreOpenAisAndPromptsTakeEveryShape) {
  auto plain = ParseCompletionRequest(R"({"prompt": "Hi"})");
  ASSERT_TRUE(plain.ok());
  EXPECT_FLOAT_EQ(plain->generate.sampling().temperature(), 1.0f);  // OpenAI's default
  EXPECT_FALSE(plain->generate.has_max_tokens());
  EXPECT_FALSE(plain->stream);
  auto ids = ParseCompletionRequest(R"({"prompt": [1, 2, 3]})");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->generate.prompt_token_ids().ids_size(), 3);
  auto one_string = ParseCompletionRequest(R"({"prompt": ["Hi"]})");
  ASSERT_TRUE(one_string.ok());
  EXPECT_EQ(one_string->generate.prompt(), "Hi");
  auto one_ids = ParseCompletionRequest(R"({"prompt": [[5, 6]]})");
  ASSERT_TRUE(one_ids.ok());
  EXPECT_EQ(one_ids->generate.prompt_token_ids().ids(1), 6);
  auto max_completion = ParseCompletionRequest(R"({"prompt": "x", "max_completion_tokens": 9, "top_k": -1})");
  ASSERT_TRUE(max_completion.ok());
  EXPECT_EQ(max_completion->generate.max_tokens(), 9);
  EXPECT_EQ(max_completion->generate.sampling().top_k(), 0);
}

TEST(OpenAiApiTest, BadRequestsNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not valid JSON"},
      {"[1]", "JSON object"},
      {R"({})", "prompt"},
      {R"({"prompt": 3})", "prompt"},
      {R"({"prompt": ["a", "b"]})", "batch of 2"},
      {R"({"prompt": [1, "x"]})", "prompt[1]"},
      {R"({"prompt": []})", "prompt: is empty"},
      {R"({"prompt": "x", "max_tokens": 0})", "max_tokens"},
      {R"({"prompt": "x", "max_tokens": 2.5})", "max_tokens"},
      {R"({"prompt": "x", "max_tokens": 3, "max_completion_tokens": 4})", "disagree"},
      {R"({"prompt": "x", "temperature": -1})", "temperature"},
      {R"({"prompt": "x", "temperature": "hot"})", "temperature"},
      {R"({"prompt": "x", "top_p": 0})", "top_p"},
      {R"({"prompt": "x", "top_p": 1.5})", "top_p"},
      {R"({"prompt": "x", "top_k": -2})", "top_k"},
      {R"({"prompt": "x", "stop": [1]})", "stop[0]"},
      {R"({"prompt": "x", "n": 2})", "n: only n = 1"},
      {R"({"prompt": "x", "best_of": 3})", "best_of"},
      {R"({"prompt": "x", "logprobs": 2})", "logprobs: top alternatives"},
      {R"({"prompt": "x", "echo": true})", "echo"},
      {R"({"prompt": "x", "suffix": "s"})", "suffix"},
      {R"({"prompt": "x", "logit_bias": {"5": 1}})", "logit_bias"},
      {R"({"prompt": "x", "frequency_penalty": 0.5})", "frequency_penalty"},
      {R"({"prompt": "x", "stream_options": {"include_usage": true}})", "only allowed with stream"},
      {R"({"prompt": "x", "ttft_slo_ms": -1})", "ttft_slo_ms"},
      {R"({"prompt": "x", "model": 7})", "model"},
  };
  for (const auto& [body, expected] : cases) {
    auto r = ParseCompletionRequest(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << body;
    EXPECT_NE(MessageOf(r).find(expected), std::string::npos) << body << " -> " << r.status();
  }
}

TEST(OpenAiApiTest, ChatRequestsKeepMessagesAndJoinTextParts) {
  auto r = ParseChatRequest(R"({"messages": [{"role": "system", "content": "Be brief."},
      {"role": "user", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]}],
      "max_tokens": 4, "logprobs": false})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->chat);
  ASSERT_EQ(r->messages.size(), 2u);
  EXPECT_EQ(r->messages[1]["content"], "Hello");
  EXPECT_EQ(r->messages[0].begin().key(), "role");  // order kept for the template
  EXPECT_FALSE(r->generate.has_prompt_token_ids());

  for (const auto& [body, expected] : std::vector<std::pair<std::string, std::string>>{
           {R"({})", "messages"},
           {R"({"messages": []})", "messages"},
           {R"({"messages": [3]})", "messages[0]"},
           {R"({"messages": [{"content": "x"}]})", "messages[0].role"},
           {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", "messages[0].content[0]"},
           {R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content"},
           {R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 3})", "top_logprobs"},
           {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})", "tools"},
           {R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}})",
            "response_format"}}) {
    auto bad = ParseChatRequest(body);
    ASSERT_FALSE(bad.ok()) << body;
    EXPECT_NE(MessageOf(bad).find(expected), std::string::npos) << body << " -> " << bad.status();
  }
}

// Found by fuzz/openai_request_fuzzer. The HTTP handler calls these parsers directly, so an exception
// escaping them, or a stack overflow, takes the router down: a "type" that is not a string made
// Json::value throw, and a deeply nested body overflowed the stack when its chat message was copied.
TEST(OpenAiApiTest, HostileBodiesAreRefusedNotThrownOrRecursedInto) {
  for (const std::string body : {R"({"messages": [{"role": "user", "content": [{"type": 1, "text": "a"}]}]})",
                                 R"({"messages": [{"role": "user", "content": "a"}], "response_format": {"type": []}})"}) {
    absl::StatusOr<OpenAiRequest> r = absl::UnknownError("not run");
    ASSERT_NO_THROW(r = ParseChatRequest(body)) << body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << body << " -> " << r.status();
  }
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  auto chat = ParseChatRequest(R"({"messages": [{"role": "user", "content": "a", "x": )" + deep + "}]}");
  EXPECT_EQ(chat.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(MessageOf(chat).find("nests deeper than 64 levels"), std::string::npos) << chat.status();
  auto completion = ParseCompletionRequest(R"({"prompt": "a", "x": )" + deep + "}");
  EXPECT_EQ(completion.status().code(), absl::StatusCode::kInvalidArgument);
  // 64 levels (the body's object and 63 lists), far more than any request needs, still parse.
  const std::string nested = std::string(63, '[') + "1" + std::string(63, ']');
  EXPECT_TRUE(ParseCompletionRequest(R"({"prompt": "a", "x": )" + nested + "}").ok());
  EXPECT_FALSE(ParseCompletionRequest(R"({"prompt": "a", "x": [)" + nested + "]}").ok());
}

TEST(OpenAiApiTest, LogprobsOfTheChosenTokensAreServedTopAlternativesAreNot) {
  auto completion = ParseCompletionRequest(R"({"prompt": "x", "logprobs": 0})");
  ASSERT_TRUE(completion.ok()) << completion.status();
  EXPECT_TRUE(completion->generate.logprobs());
  EXPECT_FALSE(ParseCompletionRequest(R"({"prompt": "x"})")->generate.logprobs());
  auto chat = ParseChatRequest(R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 0})");
  ASSERT_TRUE(chat.ok()) << chat.status();
  EXPECT_TRUE(chat->generate.logprobs());
  const TokenLogprobs lp{{"He", "llo"}, {-0.5f, -1.25f}};
  const nlohmann::json c = CompletionLogprobsJson(lp, 3);
  EXPECT_EQ(c["tokens"], (nlohmann::json{"He", "llo"}));
  EXPECT_EQ(c["token_logprobs"][1], -1.25);
  EXPECT_EQ(c["text_offset"], (nlohmann::json{3, 5}));
  EXPECT_TRUE(c["top_logprobs"].is_null());
  const nlohmann::json ch = ChatLogprobsJson(lp);
  EXPECT_EQ(ch["content"][0]["token"], "He");
  EXPECT_EQ(ch["content"][0]["bytes"], (nlohmann::json{72, 101}));
  EXPECT_EQ(ch["content"][1]["logprob"], -1.25);
  EXPECT_TRUE(ch["content"][1]["top_logprobs"].empty());
}

TEST(OpenAiApiTest, ErrorsHaveOpenAisShapeAndStatus) {
  EXPECT_EQ(HttpStatusFor(absl::InvalidArgumentError("x")), 400);
  EXPECT_EQ(HttpStatusFor(absl::NotFoundError("x")), 404);
  EXPECT_EQ(HttpStatusFor(absl::ResourceExhaustedError("x")), 429);
  EXPECT_EQ(HttpStatusFor(absl::UnavailableError("x")), 503);
  EXPECT_EQ(HttpStatusFor(absl::DeadlineExceededError("x")), 504);
  EXPECT_EQ(HttpStatusFor(absl::InternalError("x")), 500);
  const nlohmann::json e = nlohmann::json::parse(ErrorJson(absl::InvalidArgumentError("temperature: must be >= 0")));
  EXPECT_EQ(e["error"]["message"], "temperature: must be >= 0");
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_EQ(e["error"]["param"], "temperature");
  const nlohmann::json indexed = nlohmann::json::parse(ErrorJson(absl::InvalidArgumentError("prompt_token_ids[3] is bad")));
  EXPECT_EQ(indexed["error"]["param"], "prompt_token_ids[3]");
  const nlohmann::json busy = nlohmann::json::parse(ErrorJson(absl::ResourceExhaustedError("predicted TTFT 2 s > SLO")));
  EXPECT_EQ(busy["error"]["type"], "rate_limit_error");
  EXPECT_TRUE(busy["error"]["param"].is_null());
  // Not every first word is a field.
  EXPECT_TRUE(ErrorParam(absl::InvalidArgumentError("the request body is not valid JSON")).is_null());
}

TEST(OpenAiApiTest, ResponsesCarryUsageFinishReasonAndTandemsReport) {
  GenerateFinal final;
  final.finish = FinishKind::kStopString;
  final.prompt_tokens = 5;
  final.completion_tokens = 3;
  final.timing.ttft_ms = 12;
  final.request_id = "r-1";
  const ResponseIds ids{"cmpl-1", 1700000000, "tiny"};
  const nlohmann::json c = nlohmann::json::parse(CompletionJson(ids, "abc", final));
  EXPECT_EQ(c["object"], "text_completion");
  EXPECT_EQ(c["choices"][0]["text"], "abc");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(c["usage"]["total_tokens"], 8);
  EXPECT_EQ(c["tandem"]["finish_reason"], "stop_string");
  EXPECT_EQ(c["tandem"]["timing"]["ttft_ms"], 12);
  const nlohmann::json chat = nlohmann::json::parse(ChatCompletionJson(ids, "abc", final));
  EXPECT_EQ(chat["object"], "chat.completion");
  EXPECT_EQ(chat["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(chat["choices"][0]["message"]["content"], "abc");
  const nlohmann::json first = nlohmann::json::parse(ChatChunkJson(ids, "a", true));
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_FALSE(nlohmann::json::parse(ChatChunkJson(ids, "b", false))["choices"][0]["delta"].contains("role"));
  // The per-token writer gives exactly the objects above.
  for (const std::string text : {"", "a\"b\\c\n", "\xc3\xa9"}) {
    EXPECT_EQ(DeltaWriter(false, ids).Delta(text, false), CompletionChunkJson(ids, text)) << text;
    EXPECT_EQ(DeltaWriter(true, ids).Delta(text, true), ChatChunkJson(ids, text, true)) << text;
    EXPECT_EQ(DeltaWriter(true, ids).Delta(text, false), ChatChunkJson(ids, text, false)) << text;
  }
  final.finish = FinishKind::kLength;
  const nlohmann::json last = nlohmann::json::parse(FinalChunkJson(false, ids, final));
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  const nlohmann::json usage = nlohmann::json::parse(UsageChunkJson(true, ids, final));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["prompt_tokens"], 5);
  const nlohmann::json models = nlohmann::json::parse(ModelsJson("tiny", 512, 1));
  EXPECT_EQ(models["data"][0]["id"], "tiny");
  EXPECT_EQ(models["data"][0]["object"], "model");
}

}  // namespace
}  // namespace tandem::router
