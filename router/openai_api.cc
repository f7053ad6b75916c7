#include "router/openai_api.h"

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "types/sampling.h"

namespace tandem::router {
namespace {

using Json = nlohmann::ordered_json;

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

bool IsNull(const Json& body, const char* key) {
  auto it = body.find(key);
  return it == body.end() || it->is_null();
}

absl::StatusOr<double> Number(const Json& body, const char* key) {
  const Json& v = body.at(key);
  if (!v.is_number()) return Invalid(key, "must be a number");
  const double x = v.get<double>();
  if (!std::isfinite(x)) return Invalid(key, "must be finite");
  return x;
}

absl::StatusOr<int64_t> Integer(const Json& body, const char* key) {
  const Json& v = body.at(key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double x = v.get<double>();
    if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 9e15) return static_cast<int64_t>(x);
  }
  return Invalid(key, "must be an integer");
}

// Whether `object` has "type": "text". (Json::value("type", "") throws when "type" is not a string.)
bool IsTextType(const Json& object) {
  auto it = object.find("type");
  return it != object.end() && it->is_string() && it->get_ref<const std::string&>() == "text";
}

absl::StatusOr<bool> Bool(const Json& body, const char* key) {
  const Json& v = body.at(key);
  if (!v.is_boolean()) return Invalid(key, "must be true or false");
  return v.get<bool>();
}

// Fields OpenAI defines that tandem does not serve: refused by name instead of silently ignored.
absl::Status RefuseUnserved(const Json& body, bool chat) {
  if (!IsNull(body, "n")) {
    absl::StatusOr<int64_t> n = Integer(body, "n");
    if (!n.ok()) return n.status();
    if (*n != 1) return Invalid("n", absl::StrCat("only n = 1 is supported, got ", *n, " (send one request per completion)"));
  }
  if (!IsNull(body, "best_of")) {
    absl::StatusOr<int64_t> best_of = Integer(body, "best_of");
    if (!best_of.ok()) return best_of.status();
    if (*best_of != 1) return Invalid("best_of", "only 1 is supported");
  }
  // Log probabilities of the chosen tokens are served; their top alternatives are not.
  if (chat) {
    if (!IsNull(body, "logprobs") && !body["logprobs"].is_boolean()) return Invalid("logprobs", "must be true or false");
    if (!IsNull(body, "top_logprobs")) {
      absl::StatusOr<int64_t> top = Integer(body, "top_logprobs");
      if (!top.ok()) return top.status();
      if (*top != 0) return Invalid("top_logprobs", "top alternatives are not served (only 0)");
    }
  } else if (!IsNull(body, "logprobs")) {
    absl::StatusOr<int64_t> n = Integer(body, "logprobs");
    if (!n.ok()) return n.status();
    if (*n != 0) {
      return Invalid("logprobs", "top alternatives are not served: 0 returns the chosen tokens' log probabilities");
    }
  }
  if (!chat && body.contains("echo") && body["echo"].is_boolean() && body["echo"].get<bool>()) {
    return Invalid("echo", "echoing the prompt is not supported");
  }
  if (!chat && body.contains("suffix") && body["suffix"].is_string() && !body["suffix"].get<std::string>().empty()) {
    return Invalid("suffix", "insertion (suffix) is not supported");
  }
  if (body.contains("logit_bias") && body["logit_bias"].is_object() && !body["logit_bias"].empty()) {
    return Invalid("logit_bias", "logit biases are not supported");
  }
  for (const char* penalty : {"presence_penalty", "frequency_penalty"}) {
    if (!IsNull(body, penalty)) {
      absl::StatusOr<double> value = Number(body, penalty);
      if (!value.ok()) return value.status();
      if (*value != 0.0) return Invalid(penalty, "penalties are not supported (only 0)");
    }
  }
  if (!IsNull(body, "repetition_penalty")) {
    absl::StatusOr<double> value = Number(body, "repetition_penalty");
    if (!value.ok()) return value.status();
    if (*value != 1.0) return Invalid("repetition_penalty", "penalties are not supported (only 1)");
  }
  if (chat && body.contains("tools") && body["tools"].is_array() && !body["tools"].empty()) {
    return Invalid("tools", "tool calling is not supported yet");
  }
  if (chat && !IsNull(body, "response_format")) {
    const Json& format = body["response_format"];
    if (!format.is_object() || !IsTextType(format)) {
      return Invalid("response_format", "only {\"type\": \"text\"} is supported");
    }
  }
  return absl::OkStatus();
}

// The fields both endpoints share.
absl::Status ParseCommon(const Json& body, bool chat, OpenAiRequest& out) {
  if (absl::Status s = RefuseUnserved(body, chat); !s.ok()) return s;
  v1::GenerateRequest& g = out.generate;
  if (!IsNull(body, "model")) {
    if (!body["model"].is_string()) return Invalid("model", "must be a string");
    out.model = body["model"].get<std::string>();
    g.set_model(out.model);
  }
  int64_t max_tokens = -1;
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (IsNull(body, key)) continue;
    absl::StatusOr<int64_t> value = Integer(body, key);
    if (!value.ok()) return value.status();
    if (*value < 1 || *value > std::numeric_limits<int32_t>::max()) return Invalid(key, "must be >= 1");
    if (max_tokens >= 0 && max_tokens != *value) {
      return Invalid(key, "max_tokens and max_completion_tokens disagree; give one");
    }
    max_tokens = *value;
  }
  if (max_tokens >= 1) g.set_max_tokens(static_cast<int32_t>(max_tokens));

  SamplingParams sampling;
  sampling.temperature = 1.0f;  // OpenAI's default
  if (!IsNull(body, "temperature")) {
    absl::StatusOr<double> t = Number(body, "temperature");
    if (!t.ok()) return t.status();
    sampling.temperature = static_cast<float>(*t);
  }
  if (!IsNull(body, "top_p")) {
    absl::StatusOr<double> p = Number(body, "top_p");
    if (!p.ok()) return p.status();
    sampling.top_p = static_cast<float>(*p);
  }
  if (!IsNull(body, "top_k")) {
    absl::StatusOr<int64_t> k = Integer(body, "top_k");
    if (!k.ok()) return k.status();
    if (*k < -1 || *k > std::numeric_limits<int32_t>::max()) return Invalid("top_k", "must be -1 (off), 0 (off) or more");
    sampling.top_k = *k == -1 ? 0 : static_cast<int32_t>(*k);
  }
  if (!IsNull(body, "seed")) {
    absl::StatusOr<int64_t> seed = Integer(body, "seed");
    if (!seed.ok()) return seed.status();
    sampling.seed = static_cast<uint64_t>(*seed);
  }
  if (std::isfinite(sampling.temperature) && sampling.temperature < 0) {
    return Invalid("temperature", absl::StrCat("must be >= 0, got ", sampling.temperature));
  }
  if (sampling.top_p <= 0 || sampling.top_p > 1) return Invalid("top_p", absl::StrCat("must be in (0, 1], got ", sampling.top_p));
  g.mutable_sampling()->set_temperature(sampling.temperature);
  g.mutable_sampling()->set_top_p(sampling.top_p);
  g.mutable_sampling()->set_top_k(sampling.top_k);
  g.mutable_sampling()->set_seed(sampling.seed);

  if (!IsNull(body, "stop")) {
    const Json& stop = body["stop"];
    if (stop.is_string()) {
      if (!stop.get<std::string>().empty()) g.add_stop(stop.get<std::string>());
    } else if (stop.is_array()) {
      for (size_t i = 0; i < stop.size(); ++i) {
        if (!stop[i].is_string()) return Invalid(absl::StrCat("stop[", i, "]"), "must be a string");
        if (!stop[i].get<std::string>().empty()) g.add_stop(stop[i].get<std::string>());
      }
    } else {
      return Invalid("stop", "must be a string or a list of strings");
    }
  }
  if (!IsNull(body, "stream")) {
    absl::StatusOr<bool> stream = Bool(body, "stream");
    if (!stream.ok()) return stream.status();
    out.stream = *stream;
  }
  if (!IsNull(body, "stream_options")) {
    const Json& options = body["stream_options"];
    if (!options.is_object()) return Invalid("stream_options", "must be an object");
    if (!out.stream) return Invalid("stream_options", "only allowed with stream: true");
    if (options.contains("include_usage")) {
      if (!options["include_usage"].is_boolean()) return Invalid("stream_options.include_usage", "must be true or false");
      out.include_usage = options["include_usage"].get<bool>();
    }
  }
  g.set_logprobs(chat ? (!IsNull(body, "logprobs") && body["logprobs"].get<bool>()) : !IsNull(body, "logprobs"));
  if (!IsNull(body, "ignore_eos")) {
    absl::StatusOr<bool> ignore = Bool(body, "ignore_eos");
    if (!ignore.ok()) return ignore.status();
    g.set_ignore_eos(*ignore);
  }
  for (const char* key : {"ttft_slo_ms", "tpot_slo_ms"}) {
    if (IsNull(body, key)) continue;
    absl::StatusOr<double> value = Number(body, key);
    if (!value.ok()) return value.status();
    if (*value < 0) return Invalid(key, "must be >= 0 (0: no objective)");
    if (std::string(key) == "ttft_slo_ms") {
      g.mutable_slo()->set_ttft_ms(*value);
    } else {
      g.mutable_slo()->set_tpot_ms(*value);
    }
  }
  if (!IsNull(body, "best_effort")) {
    absl::StatusOr<bool> best_effort = Bool(body, "best_effort");
    if (!best_effort.ok()) return best_effort.status();
    g.mutable_slo()->set_best_effort(*best_effort);
  }
  if (!IsNull(body, "request_id")) {
    if (!body["request_id"].is_string()) return Invalid("request_id", "must be a string");
    g.set_request_id(body["request_id"].get<std::string>());
  }
  return absl::OkStatus();
}

// Deeper bodies are refused while parsing: copying (a chat message is copied), dumping or comparing a
// JSON value recurses once per level, and an 8 MB body of '[' overflows the stack.
constexpr int kMaxBodyDepth = 64;

absl::StatusOr<Json> ParseBody(std::string_view body) {
  bool too_deep = false;
  // Returning false discards what is being parsed, so a deep body is never built.
  const auto limit_depth = [&too_deep](int depth, Json::parse_event_t, Json&) {
    if (depth > kMaxBodyDepth) too_deep = true;
    return !too_deep;
  };
  Json json = Json::parse(body, limit_depth, /*allow_exceptions=*/false);
  if (too_deep) {
    return absl::InvalidArgumentError(absl::StrCat("the request body nests deeper than ", kMaxBodyDepth, " levels"));
  }
  if (json.is_discarded()) return absl::InvalidArgumentError("the request body is not valid JSON");
  if (!json.is_object()) return absl::InvalidArgumentError("the request body must be a JSON object");
  return json;
}

absl::Status ParseTokenIds(const Json& ids, const std::string& field, v1::GenerateRequest& g) {
  auto* out = g.mutable_prompt_token_ids()->mutable_ids();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!ids[i].is_number_integer()) return Invalid(absl::StrCat(field, "[", i, "]"), "must be a token id (integer)");
    const int64_t id = ids[i].get<int64_t>();
    if (id < std::numeric_limits<int32_t>::min() || id > std::numeric_limits<int32_t>::max()) {
      return Invalid(absl::StrCat(field, "[", i, "]"), absl::StrCat("token id ", id, " is out of range"));
    }
    out->Add(static_cast<int32_t>(id));
  }
  if (ids.empty()) return Invalid(field, "is empty");
  return absl::OkStatus();
}

Json Usage(const GenerateFinal& f) {
  return Json{{"prompt_tokens", f.prompt_tokens},
              {"completion_tokens", f.completion_tokens},
              {"total_tokens", f.prompt_tokens + f.completion_tokens}};
}

Json Head(const ResponseIds& ids, const char* object) {
  return Json{{"id", ids.id}, {"object", object}, {"created", ids.created}, {"model", ids.model}};
}

std::string Dump(const Json& json) { return json.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace

absl::StatusOr<OpenAiRequest> ParseCompletionRequest(std::string_view text) {
  absl::StatusOr<Json> body = ParseBody(text);
  if (!body.ok()) return body.status();
  OpenAiRequest out;
  if (absl::Status s = ParseCommon(*body, /*chat=*/false, out); !s.ok()) return s;
  if (IsNull(*body, "prompt")) return Invalid("prompt", "is required");
  const Json& prompt = (*body)["prompt"];
  v1::GenerateRequest& g = out.generate;
  if (prompt.is_string()) {
    g.set_prompt(prompt.get<std::string>());
  } else if (prompt.is_array()) {
    if (!prompt.empty() && (prompt[0].is_string() || prompt[0].is_array())) {
      if (prompt.size() != 1) {
        return Invalid("prompt", absl::StrCat("a batch of ", prompt.size(), " prompts is not supported (send one request per prompt)"));
      }
      if (prompt[0].is_string()) {
        g.set_prompt(prompt[0].get<std::string>());
      } else if (absl::Status s = ParseTokenIds(prompt[0], "prompt[0]", g); !s.ok()) {
        return s;
      }
    } else if (absl::Status s = ParseTokenIds(prompt, "prompt", g); !s.ok()) {
      return s;
    }
  } else {
    return Invalid("prompt", "must be a string, a list of token ids, or a one-element list of either");
  }
  return out;
}

absl::StatusOr<OpenAiRequest> ParseChatRequest(std::string_view text) {
  absl::StatusOr<Json> body = ParseBody(text);
  if (!body.ok()) return body.status();
  OpenAiRequest out;
  out.chat = true;
  if (absl::Status s = ParseCommon(*body, /*chat=*/true, out); !s.ok()) return s;
  if (IsNull(*body, "messages")) return Invalid("messages", "is required");
  const Json& messages = (*body)["messages"];
  if (!messages.is_array() || messages.empty()) return Invalid("messages", "must be a non-empty list");
  out.messages = Json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string field = absl::StrCat("messages[", i, "]");
    const Json& m = messages[i];
    if (!m.is_object()) return Invalid(field, "must be an object");
    if (!m.contains("role") || !m["role"].is_string()) return Invalid(field + ".role", "is required (a string)");
    Json message = m;
    if (m.contains("content") && m["content"].is_array()) {
      // Content parts: text parts are joined; anything else is refused.
      std::string joined;
      for (size_t j = 0; j < m["content"].size(); ++j) {
        const Json& part = m["content"][j];
        if (!part.is_object() || !IsTextType(part) || !part.contains("text") || !part["text"].is_string()) {
          return Invalid(absl::StrCat(field, ".content[", j, "]"), "only {\"type\": \"text\", \"text\": ...} parts are supported");
        }
        joined += part["text"].get<std::string>();
      }
      message["content"] = joined;
    } else if (m.contains("content") && !m["content"].is_string() && !m["content"].is_null()) {
      return Invalid(field + ".content", "must be a string, a list of text parts, or null");
    }
    out.messages.push_back(std::move(message));
  }
  return out;
}

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kCancelled: return 499;
    case absl::StatusCode::kUnimplemented: return 501;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

nlohmann::json ErrorParam(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kInvalidArgument && status.code() != absl::StatusCode::kNotFound) return nullptr;
  const std::string message(status.message());
  size_t end = 0;
  while (end < message.size() && (std::isalnum(static_cast<unsigned char>(message[end])) || message[end] == '_' ||
                                  message[end] == '.' || message[end] == '[' || message[end] == ']')) {
    ++end;
  }
  if (end == 0 || end >= message.size() || (message[end] != ':' && message[end] != ' ')) return nullptr;
  const std::string word = message.substr(0, end);
  // Only names of request fields.
  static const char* kFields[] = {"model", "prompt", "messages", "max_tokens", "max_completion_tokens",
                                  "temperature", "top_p", "top_k", "seed", "stop", "n", "stream",
                                  "stream_options", "ignore_eos", "logprobs", "top_logprobs", "echo",
                                  "suffix", "logit_bias", "presence_penalty", "frequency_penalty",
                                  "repetition_penalty", "tools", "response_format", "best_of",
                                  "ttft_slo_ms", "tpot_slo_ms", "best_effort", "request_id", "sampling",
                                  "prompt_token_ids"};
  for (const char* field : kFields) {
    const std::string f(field);
    if (word == f || word.rfind(f + "[", 0) == 0 || word.rfind(f + ".", 0) == 0) return word;
  }
  return nullptr;
}

std::string ErrorJson(const absl::Status& status) {
  const int http = HttpStatusFor(status);
  if (http == 401) {  // what OpenAI answers for a missing or wrong key
    nlohmann::json error = {{"message", std::string(status.message())},
                            {"type", "invalid_request_error"},
                            {"param", nullptr},
                            {"code", "invalid_api_key"}};
    return nlohmann::json{{"error", error}}.dump();
  }
  const char* type = http == 400   ? "invalid_request_error"
                     : http == 404 ? "not_found_error"
                     : http == 429 ? "rate_limit_error"
                     : http == 503 ? "service_unavailable"
                     : http == 504 ? "timeout"
                                   : "server_error";
  nlohmann::json error = {{"message", std::string(status.message())},
                          {"type", type},
                          {"param", ErrorParam(status)},
                          {"code", absl::StatusCodeToString(status.code())}};
  return nlohmann::json{{"error", error}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json TandemReport(const GenerateFinal& f) {
  const char* finish = f.finish == FinishKind::kLength      ? "length"
                       : f.finish == FinishKind::kStopToken ? "stop_token"
                                                            : "stop_string";
  return nlohmann::json{
      {"finish_reason", finish},
      {"request_id", f.request_id},
      {"prefill_worker", f.prefill_worker},
      {"decode_worker", f.decode_worker},
      {"timing",
       {{"prefill_queue_ms", f.timing.prefill_queue_ms},
        {"prefill_compute_ms", f.timing.prefill_compute_ms},
        {"kv_transfer_ms", f.timing.kv_transfer_ms},
        {"decode_queue_ms", f.timing.decode_queue_ms},
        {"decode_compute_ms", f.timing.decode_compute_ms},
        {"ttft_ms", f.timing.ttft_ms},
        {"tpot_ms", f.timing.tpot_ms},
        {"e2e_ms", f.timing.e2e_ms}}},
      {"slo",
       {{"ttft_met", f.verdict.ttft_met},
        {"tpot_met", f.verdict.tpot_met},
        {"missed_stage", f.verdict.missed_stage == RequestStage::kNone
                             ? std::string()
                             : std::string(RequestStageName(f.verdict.missed_stage))},
        {"explanation", f.verdict.explanation}}}};
}

nlohmann::json CompletionLogprobsJson(const TokenLogprobs& lp, int64_t text_offset) {
  nlohmann::json offsets = nlohmann::json::array();
  for (const std::string& token : lp.tokens) {
    offsets.push_back(text_offset);
    text_offset += static_cast<int64_t>(token.size());
  }
  return nlohmann::json{{"tokens", lp.tokens},
                        {"token_logprobs", lp.logprobs},
                        {"top_logprobs", nullptr},
                        {"text_offset", offsets}};
}

nlohmann::json ChatLogprobsJson(const TokenLogprobs& lp) {
  nlohmann::json content = nlohmann::json::array();
  for (size_t i = 0; i < lp.tokens.size(); ++i) {
    std::vector<int> bytes(lp.tokens[i].begin(), lp.tokens[i].end());
    for (int& b : bytes) b &= 0xff;
    content.push_back(nlohmann::json{{"token", lp.tokens[i]},
                                     {"logprob", i < lp.logprobs.size() ? lp.logprobs[i] : 0.0f},
                                     {"bytes", bytes},
                                     {"top_logprobs", nlohmann::json::array()}});
  }
  return nlohmann::json{{"content", content}};
}

std::string CompletionJson(const ResponseIds& ids, const std::string& text, const GenerateFinal& final,
                           const nlohmann::json& logprobs) {
  Json json = Head(ids, "text_completion");
  json["choices"] = Json::array(
      {Json{{"index", 0}, {"text", text}, {"logprobs", logprobs}, {"finish_reason", OpenAiFinishReason(final.finish)}}});
  json["usage"] = Usage(final);
  json["tandem"] = TandemReport(final);
  return Dump(json);
}

std::string ChatCompletionJson(const ResponseIds& ids, const std::string& text, const GenerateFinal& final,
                               const nlohmann::json& logprobs) {
  Json json = Head(ids, "chat.completion");
  json["choices"] = Json::array({Json{{"index", 0},
                                      {"message", Json{{"role", "assistant"}, {"content", text}}},
                                      {"logprobs", logprobs},
                                      {"finish_reason", OpenAiFinishReason(final.finish)}}});
  json["usage"] = Usage(final);
  json["tandem"] = TandemReport(final);
  return Dump(json);
}

std::string CompletionChunkJson(const ResponseIds& ids, const std::string& text, const nlohmann::json& logprobs) {
  Json json = Head(ids, "text_completion");
  json["choices"] = Json::array({Json{{"index", 0}, {"text", text}, {"logprobs", logprobs}, {"finish_reason", nullptr}}});
  return Dump(json);
}

DeltaWriter::DeltaWriter(bool chat, const ResponseIds& ids) {
  // Render an object with a marker string where the text goes, and split it there.
  const std::string marker = "\x01tandem-text\x01";
  const std::string quoted_marker = Json(marker).dump();
  auto split = [&](const std::string& rendered, std::string& prefix, std::string& suffix) {
    const size_t at = rendered.find(quoted_marker);
    prefix = rendered.substr(0, at);
    suffix = rendered.substr(at + quoted_marker.size());
  };
  if (chat) {
    split(ChatChunkJson(ids, marker, false), prefix_, suffix_);
    std::string unused;
    split(ChatChunkJson(ids, marker, true), first_prefix_, unused);
  } else {
    split(CompletionChunkJson(ids, marker), prefix_, suffix_);
    first_prefix_ = prefix_;
  }
}

std::string DeltaWriter::Delta(const std::string& text, bool first) const {
  return absl::StrCat(first ? first_prefix_ : prefix_, Json(text).dump(-1, ' ', false, Json::error_handler_t::replace),
                      suffix_);
}

std::string ChatChunkJson(const ResponseIds& ids, const std::string& text, bool first,
                          const nlohmann::json& logprobs) {
  Json delta = Json::object();
  if (first) delta["role"] = "assistant";
  delta["content"] = text;
  Json json = Head(ids, "chat.completion.chunk");
  json["choices"] = Json::array({Json{{"index", 0}, {"delta", delta}, {"logprobs", logprobs}, {"finish_reason", nullptr}}});
  return Dump(json);
}

std::string FinalChunkJson(bool chat, const ResponseIds& ids, const GenerateFinal& final) {
  Json json = Head(ids, chat ? "chat.completion.chunk" : "text_completion");
  Json choice = {{"index", 0}};
  if (chat) {
    Json delta = Json::object();
    if (!final.text.empty()) delta["content"] = final.text;
    choice["delta"] = delta;
  } else {
    choice["text"] = final.text;
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = OpenAiFinishReason(final.finish);
  json["choices"] = Json::array({choice});
  json["tandem"] = TandemReport(final);
  return Dump(json);
}

std::string UsageChunkJson(bool chat, const ResponseIds& ids, const GenerateFinal& final) {
  Json json = Head(ids, chat ? "chat.completion.chunk" : "text_completion");
  json["choices"] = Json::array();
  json["usage"] = Usage(final);
  return Dump(json);
}

std::string ModelsJson(const std::string& name, int64_t max_context, int64_t created) {
  return Dump(Json{{"object", "list"},
                   {"data", Json::array({Json{{"id", name},
                                              {"object", "model"},
                                              {"created", created},
                                              {"owned_by", "tandem"},
                                              {"max_model_len", max_context}}})}});
}

}  // namespace tandem::router
