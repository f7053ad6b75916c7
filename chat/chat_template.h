// Hugging Face chat templates: tokenizer.apply_chat_template(messages, tools=..., tokenize=False,
// add_generation_prompt=..., **kwargs) from transformers, on the jinja/ interpreter.
//
//   absl::StatusOr<ChatTemplate> chat = ChatTemplate::FromTokenizerConfigFile(dir + "/tokenizer_config.json");
//   absl::StatusOr<std::string> prompt = chat->Render(messages, /*tools=*/nullptr,
//                                                     /*add_generation_prompt=*/true,
//                                                     nlohmann::ordered_json::object());
//
// What the template sees, as transformers passes it: `messages`, `tools` (None when not given),
// `documents` (None), `add_generation_prompt`, the special tokens that are set (bos_token,
// eos_token, unk_token, sep_token, pad_token, cls_token, mask_token, additional_special_tokens;
// AddedToken objects are flattened to their content; null or empty tokens are not passed, so the
// template sees them undefined), then `extra_kwargs` as more top-level names (overriding special
// tokens). A chat_template given as a list of {name, template} picks "tool_use" when tools are
// passed and it exists, "default" otherwise.
//
// JSON objects keep their key order (use nlohmann::ordered_json): `tojson` writes keys in
// insertion order, so the order is part of the prompt.
//
// Errors from Render: a template's raise_exception(msg) is InvalidArgument whose message is
// exactly `msg` (IsChatTemplateError() is true for it); other template errors are InvalidArgument
// "line N: ..."; a runaway template is ResourceExhausted.
//
// Thread safety: immutable after construction; Render may be called concurrently.
#ifndef TANDEM_CHAT_CHAT_TEMPLATE_H_
#define TANDEM_CHAT_CHAT_TEMPLATE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "chat/jinja_template.h"
#include "nlohmann/json.hpp"

namespace tandem {

struct ChatTemplateOptions {
  // When non-empty, used instead of the tokenizer config's chat_template (`--chat-template FILE`).
  std::string template_source;
  jinja::RenderLimits limits;
  // The clock strftime_now() reads; empty means the local time now (transformers' datetime.now()).
  jinja::Clock clock;
};

class ChatTemplate {
 public:
  // From a parsed tokenizer_config.json (chat_template and the special tokens).
  static absl::StatusOr<ChatTemplate> FromTokenizerConfig(const nlohmann::ordered_json& config,
                                                          ChatTemplateOptions options = {});
  // Reads `path` (a tokenizer_config.json). A chat_template.jinja in the same directory takes
  // precedence over the config's chat_template, as recent transformers save the template there.
  static absl::StatusOr<ChatTemplate> FromTokenizerConfigFile(const std::string& path,
                                                              ChatTemplateOptions options = {});

  // Renders a conversation. `messages` is a list of message objects; `tools` a list of tool
  // schemas or null for none; `extra_kwargs` an object (or null) of extra template variables.
  absl::StatusOr<std::string> Render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json* tools,
                                     bool add_generation_prompt, const nlohmann::ordered_json& extra_kwargs) const;

  // The template names: {"default"} for a single template.
  std::vector<std::string> template_names() const;

 private:
  struct NamedTemplate {
    std::string name;
    jinja::Template parsed;
  };
  ChatTemplate(std::vector<NamedTemplate> templates, jinja::DictData special_tokens, ChatTemplateOptions options);

  std::vector<NamedTemplate> templates_;
  jinja::DictData special_tokens_;
  ChatTemplateOptions options_;
};

// True for the error a template raised itself with raise_exception(); its message is the
// template's, meant for the user who sent the conversation.
bool IsChatTemplateError(const absl::Status& status);

}  // namespace tandem

#endif  // TANDEM_CHAT_CHAT_TEMPLATE_H_
