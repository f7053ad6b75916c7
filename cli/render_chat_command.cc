// tandem render-chat: renders a conversation with a model's chat template, as Hugging Face's
// tokenizer.apply_chat_template(messages, tools=..., add_generation_prompt=..., tokenize=False)
// does, and prints the prompt exactly (no newline added).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "chat/chat_template.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace tandem {
namespace {

using Json = nlohmann::ordered_json;

struct RenderChatFlags {
  std::string tokenizer_config;
  std::string messages;
  std::string tools;
  std::string chat_template;
  std::string template_kwargs;
  bool add_generation_prompt = false;
};

absl::StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("--", flag, ": cannot open ", path));
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// Parses with key order kept: tojson writes keys in insertion order, so it is part of the prompt.
absl::StatusOr<Json> ReadJson(const std::string& flag, const std::string& path) {
  TANDEM_ASSIGN_OR_RETURN(std::string text, ReadFile(flag, path));
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded())
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", path, " is not valid JSON"));
  return json;
}

absl::StatusOr<std::string> Render(const RenderChatFlags& f) {
  if (f.tokenizer_config.empty()) return absl::InvalidArgumentError("--tokenizer-config is required");
  if (f.messages.empty()) return absl::InvalidArgumentError("--messages is required");

  ChatTemplateOptions options;
  if (!f.chat_template.empty()) {
    TANDEM_ASSIGN_OR_RETURN(options.template_source, ReadFile("chat-template", f.chat_template));
  }
  TANDEM_ASSIGN_OR_RETURN(ChatTemplate chat, ChatTemplate::FromTokenizerConfigFile(f.tokenizer_config, options));

  // --messages holds a list of messages, or an object with a "messages" list (as in an OpenAI
  // chat request).
  TANDEM_ASSIGN_OR_RETURN(Json messages, ReadJson("messages", f.messages));
  if (messages.is_object() && messages.contains("messages")) messages = Json(messages["messages"]);
  if (!messages.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat("--messages: ", f.messages, " must hold a JSON list of messages"));
  }
  Json tools;
  if (!f.tools.empty()) {
    TANDEM_ASSIGN_OR_RETURN(tools, ReadJson("tools", f.tools));
    if (!tools.is_array()) {
      return absl::InvalidArgumentError(absl::StrCat("--tools: ", f.tools, " must hold a JSON list of tools"));
    }
  }
  Json kwargs = Json::object();
  if (!f.template_kwargs.empty()) {
    TANDEM_ASSIGN_OR_RETURN(kwargs, ReadJson("template-kwargs", f.template_kwargs));
    if (!kwargs.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--template-kwargs: ", f.template_kwargs, " must hold a JSON object"));
    }
  }
  return chat.Render(messages, f.tools.empty() ? nullptr : &tools, f.add_generation_prompt, kwargs);
}

}  // namespace

int RenderChatCommand(const std::vector<std::string>& args) {
  RenderChatFlags f;
  FlagParser parser(
      "tandem render-chat --tokenizer-config FILE --messages FILE [--tools FILE] [--add-generation-prompt] "
      "[--chat-template FILE] [--template-kwargs FILE]");
  parser.AddString("tokenizer-config", &f.tokenizer_config,
                   "the model's tokenizer_config.json (chat_template and special tokens; a chat_template.jinja "
                   "beside it wins)");
  parser.AddString("messages", &f.messages, "JSON file: a list of messages, or an object with a \"messages\" list");
  parser.AddString("tools", &f.tools, "JSON file: a list of tool schemas passed as `tools`");
  parser.AddBool("add-generation-prompt", &f.add_generation_prompt, "end with the assistant turn's opening");
  parser.AddString("chat-template", &f.chat_template, "Jinja file used instead of the config's chat_template");
  parser.AddString("template-kwargs", &f.template_kwargs,
                   "JSON file: an object of extra template variables (e.g. {\"enable_thinking\": false})");
  absl::Status status = parser.Parse(args);
  if (parser.help_requested()) {
    std::fputs(parser.Usage().c_str(), stdout);
    return 0;
  }
  if (!parser.positional().empty()) {
    status = absl::InvalidArgumentError(absl::StrCat("unexpected argument '", parser.positional()[0], "'"));
  }
  absl::StatusOr<std::string> prompt = status.ok() ? Render(f) : absl::StatusOr<std::string>(status);
  if (!prompt.ok()) {
    // The message alone: a template's raise_exception() text is meant for the user as it is.
    std::fprintf(stderr, "tandem render-chat: %s: %s\n", absl::StatusCodeToString(prompt.status().code()).c_str(),
                 std::string(prompt.status().message()).c_str());
    return 1;
  }
  std::fwrite(prompt->data(), 1, prompt->size(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace tandem
