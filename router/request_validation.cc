#include "router/request_validation.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/unknown_field_set.h"

namespace tandem::router {
namespace {

absl::Status CheckTokenId(const char* field, int index, int32_t id, int64_t vocab_size) {
  if (id < 0 || id >= vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(field, "[", index, "]: token id ", id,
                                                   " is outside [0, ", vocab_size, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckSloField(const char* field, double value) {
  if (!std::isfinite(value) || value < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be a finite number >= 0, got ", value));
  }
  return absl::OkStatus();
}

// Why protobuf refused `bytes` as a `type` at `path` ("" for the request itself): the first string
// field, at any depth, that is not UTF-8, or a part that is not protobuf wire format; "" when neither
// is found. Reads the bytes as an UnknownFieldSet, which checks only the wire format.
std::string WhyUnparsable(const google::protobuf::Descriptor& type, std::string_view bytes, const std::string& path,
                          int depth) {
  google::protobuf::UnknownFieldSet fields;
  if (bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !fields.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::StrCat(path.empty() ? "request" : path, ": not a valid ", type.full_name(),
                        " (malformed protobuf wire format)");
  }
  constexpr int kMaxDepth = 16;  // the public messages nest 3 deep
  std::map<int, int> occurrences;  // per field number: the index of a repeated field's element
  for (int i = 0; i < fields.field_count(); ++i) {
    const google::protobuf::UnknownField& wire = fields.field(i);
    const int index = occurrences[wire.number()]++;
    const google::protobuf::FieldDescriptor* field = type.FindFieldByNumber(wire.number());
    if (field == nullptr || wire.type() != google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) continue;
    std::string name = path.empty() ? field->name() : absl::StrCat(path, ".", field->name());
    if (field->is_repeated()) absl::StrAppend(&name, "[", index, "]");
    if (field->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
      if (const int64_t bad = FindInvalidUtf8(wire.length_delimited()); bad >= 0) {
        return absl::StrCat(name, ": not valid UTF-8 (at byte ", bad, ")");
      }
    } else if (field->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE && depth < kMaxDepth) {
      std::string why = WhyUnparsable(*field->message_type(), wire.length_delimited(), name, depth + 1);
      if (!why.empty()) return why;
    }
  }
  return "";
}

}  // namespace

absl::Status ParseRequestNamingTheField(std::string_view bytes, google::protobuf::Message* request) {
  if (bytes.size() <= static_cast<size_t>(INT32_MAX) &&
      request->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::OkStatus();
  }
  std::string why = WhyUnparsable(*request->GetDescriptor(), bytes, "", 0);
  if (why.empty()) why = absl::StrCat("request: not a valid ", request->GetTypeName(), " (protobuf refused it)");
  return absl::InvalidArgumentError(why);
}

absl::Status ValidateModelName(const std::string& name, const ServedModel& model) {
  if (name.empty()) return absl::OkStatus();
  const bool traversal = absl::StrContains(name, "..") || absl::StrContains(name, "/") ||
                         absl::StrContains(name, "\\") ||
                         std::any_of(name.begin(), name.end(), [](char c) {
                           return absl::ascii_isspace(static_cast<unsigned char>(c)) ||
                                  absl::ascii_iscntrl(static_cast<unsigned char>(c));
                         });
  if (traversal) {
    return absl::InvalidArgumentError(
        "model: names must not contain '..', '/', '\\' or whitespace");
  }
  if (name != model.name) {
    // Never echo a long name in full: errors travel in metadata, which clients bound (issue 11, item 7).
    constexpr size_t kEcho = 64;
    const std::string shown = name.size() <= kEcho ? name : absl::StrCat(name.substr(0, kEcho), "... (",
                                                                         name.size(), " bytes)");
    return absl::NotFoundError(absl::StrCat("model: unknown model '", shown, "' (this router serves '",
                                            model.name, "')"));
  }
  return absl::OkStatus();
}

int64_t FindInvalidUtf8(std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = bytes[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t length;
    uint32_t min_code;
    uint32_t code;
    if ((c & 0xe0) == 0xc0) {
      length = 2, min_code = 0x80, code = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      length = 3, min_code = 0x800, code = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      length = 4, min_code = 0x10000, code = c & 0x07;
    } else {
      return static_cast<int64_t>(i);
    }
    if (n - i < length) return static_cast<int64_t>(i);
    for (size_t k = 1; k < length; ++k) {
      if ((bytes[i + k] & 0xc0) != 0x80) return static_cast<int64_t>(i);
      code = (code << 6) | (bytes[i + k] & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    if (code < min_code || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      return static_cast<int64_t>(i);
    }
    i += length;
  }
  return -1;
}

absl::StatusOr<PreparedRequest> PrepareGenerateRequest(const v1::GenerateRequest& request,
                                                       const ServedModel& model,
                                                       const Tokenizer& tokenizer) {
  if (absl::Status s = ValidateModelName(request.model(), model); !s.ok()) return s;
  // A client's id only names the request in logs: bounded, so a 5 MB id cannot make a 5 MB log line.
  if (request.request_id().size() > kMaxClientRequestIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("request_id: ", request.request_id().size(),
                                                   " bytes, at most ", kMaxClientRequestIdBytes, " are accepted"));
  }

  // Input presence and size, before any tokenizer work (V2, V3, V7).
  const bool text_input = request.input_case() == v1::GenerateRequest::kPrompt;
  if (request.input_case() == v1::GenerateRequest::INPUT_NOT_SET ||
      (text_input && request.prompt().empty())) {
    return absl::InvalidArgumentError("prompt is empty");
  }
  if (!text_input && request.prompt_token_ids().ids().empty()) {
    return absl::InvalidArgumentError("prompt is empty (prompt_token_ids has no ids)");
  }
  if (text_input) {
    const int64_t limit = model.max_context * kMaxPromptBytesPerToken;
    if (static_cast<int64_t>(request.prompt().size()) > limit) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt: ", request.prompt().size(), " bytes cannot fit the model's context of ",
                       model.max_context, " tokens (at most ", limit, " bytes are accepted)"));
    }
    if (const int64_t bad = FindInvalidUtf8(request.prompt()); bad >= 0) {
      return absl::InvalidArgumentError(absl::StrCat("prompt: not valid UTF-8 (at byte ", bad, ")"));
    }
  } else {
    const auto& ids = request.prompt_token_ids().ids();
    if (ids.size() > model.max_context) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt_token_ids: ", ids.size(), " tokens exceed the model's context of ",
                       model.max_context, " tokens"));
    }
    for (int i = 0; i < ids.size(); ++i) {
      if (absl::Status s = CheckTokenId("prompt_token_ids", i, ids[i], model.vocab_size); !s.ok()) return s;
    }
  }

  // max_tokens (V4): the part that does not need the prompt length.
  if (request.has_max_tokens() && request.max_tokens() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_tokens must be >= 1 (leave it unset for the default, ", model.default_max_tokens, "), got ",
        request.max_tokens()));
  }
  if (request.max_tokens() >= model.max_context) {
    return absl::InvalidArgumentError(absl::StrCat("max_tokens: ", request.max_tokens(),
                                                   " leaves no room for a prompt in the model's context of ",
                                                   model.max_context, " tokens"));
  }

  PreparedRequest prepared;
  // Sampling (V5). The API documents top_p 0 as "off".
  prepared.sampling.temperature = request.sampling().temperature();
  prepared.sampling.top_k = request.sampling().top_k();
  prepared.sampling.top_p = request.sampling().top_p() == 0.0f ? 1.0f : request.sampling().top_p();
  prepared.sampling.seed = request.sampling().seed();
  prepared.logprobs = request.logprobs();
  if (const std::string error = SamplingParamsError(prepared.sampling, model.vocab_size); !error.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.", error));
  }

  // Stop conditions.
  if (request.stop_size() > kMaxStopStrings) {
    return absl::InvalidArgumentError(
        absl::StrCat("stop: at most ", kMaxStopStrings, " stop strings, got ", request.stop_size()));
  }
  for (int i = 0; i < request.stop_size(); ++i) {
    const std::string& stop = request.stop(i);
    if (stop.empty()) return absl::InvalidArgumentError(absl::StrCat("stop[", i, "] is empty"));
    if (stop.size() > kMaxStopStringBytes) {
      return absl::InvalidArgumentError(absl::StrCat("stop[", i, "]: ", stop.size(),
                                                     " bytes, at most ", kMaxStopStringBytes));
    }
    if (FindInvalidUtf8(stop) >= 0) {
      return absl::InvalidArgumentError(absl::StrCat("stop[", i, "]: not valid UTF-8"));
    }
    prepared.stop.push_back(stop);
  }
  if (request.stop_token_ids_size() > kMaxStopTokenIds) {
    return absl::InvalidArgumentError(absl::StrCat("stop_token_ids: at most ", kMaxStopTokenIds,
                                                   " ids, got ", request.stop_token_ids_size()));
  }
  for (int i = 0; i < request.stop_token_ids_size(); ++i) {
    const int32_t id = request.stop_token_ids(i);
    if (absl::Status s = CheckTokenId("stop_token_ids", i, id, model.vocab_size); !s.ok()) return s;
    prepared.stop_token_ids.push_back(id);
  }
  if (!request.ignore_eos()) {
    for (int32_t id : model.eos_token_ids) {
      if (std::find(prepared.stop_token_ids.begin(), prepared.stop_token_ids.end(), id) ==
          prepared.stop_token_ids.end()) {
        prepared.stop_token_ids.push_back(id);
      }
    }
  }

  // SLO.
  if (absl::Status s = CheckSloField("slo.ttft_ms", request.slo().ttft_ms()); !s.ok()) return s;
  if (absl::Status s = CheckSloField("slo.tpot_ms", request.slo().tpot_ms()); !s.ok()) return s;
  prepared.ttft_slo_ms = request.slo().ttft_ms();
  prepared.tpot_slo_ms = request.slo().tpot_ms();
  prepared.best_effort = request.slo().best_effort();

  // Tokenize, then the context check that needs the prompt length (V1).
  if (text_input) {
    absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(request.prompt(), /*add_special_tokens=*/true);
    if (!ids.ok()) return absl::InvalidArgumentError(absl::StrCat("prompt: ", ids.status().message()));
    prepared.prompt = *std::move(ids);
    if (prepared.prompt.empty()) return absl::InvalidArgumentError("prompt is empty (no tokens)");
    for (size_t i = 0; i < prepared.prompt.size(); ++i) {
      if (prepared.prompt[i] < 0 || prepared.prompt[i] >= model.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("prompt: the tokenizer produced id ", prepared.prompt[i],
                                                       ", outside the model's vocabulary of ",
                                                       model.vocab_size));
      }
    }
  } else {
    prepared.prompt.assign(request.prompt_token_ids().ids().begin(), request.prompt_token_ids().ids().end());
  }
  const int64_t prompt_len = static_cast<int64_t>(prepared.prompt.size());
  if (!request.has_max_tokens()) {
    // The default shrinks to fit the context; an explicit value never does.
    const int64_t room = model.max_context - prompt_len;
    if (room < 1) {
      return absl::InvalidArgumentError(absl::StrCat("prompt: ", prompt_len,
                                                     " tokens leave no room for output in the model's context of ",
                                                     model.max_context, " tokens"));
    }
    prepared.max_tokens = static_cast<int32_t>(std::min<int64_t>(model.default_max_tokens, room));
  } else {
    if (prompt_len + request.max_tokens() > model.max_context) {
      return absl::InvalidArgumentError(absl::StrCat(
          "max_tokens: prompt (", prompt_len, " tokens) + max_tokens (", request.max_tokens(), ") = ",
          prompt_len + request.max_tokens(), " exceeds the model's context of ", model.max_context,
          " tokens"));
    }
    prepared.max_tokens = request.max_tokens();
  }
  return prepared;
}

}  // namespace tandem::router
