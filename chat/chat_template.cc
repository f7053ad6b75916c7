#include "chat/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace tandem {
namespace {

// Nesting accepted in messages, tools and kwargs (the JSON values handed to the template).
constexpr int kMaxJsonDepth = 64;

constexpr const char* kSpecialTokenNames[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                              "pad_token", "cls_token", "mask_token"};

// A special token's text: a string, or an AddedToken object's "content"; nullopt when unset.
std::optional<std::string> TokenText(const nlohmann::ordered_json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object()) {
    auto content = value.find("content");
    if (content != value.end() && content->is_string()) return content->get<std::string>();
  }
  return std::nullopt;
}

// transformers' special_tokens_map: only the attributes that are set (and non-empty).
jinja::DictData SpecialTokens(const nlohmann::ordered_json& config) {
  jinja::DictData tokens;
  for (const char* name : kSpecialTokenNames) {
    auto it = config.find(name);
    if (it == config.end()) continue;
    std::optional<std::string> text = TokenText(*it);
    if (text && !text->empty()) tokens.Set(jinja::Value::String(name), jinja::Value::String(*text));
  }
  auto additional = config.find("additional_special_tokens");
  if (additional != config.end() && additional->is_array() && !additional->empty()) {
    std::vector<jinja::Value> list;
    for (const auto& token : *additional) {
      std::optional<std::string> text = TokenText(token);
      list.push_back(text ? jinja::Value::String(*text) : jinja::Value::None());
    }
    tokens.Set(jinja::Value::String("additional_special_tokens"), jinja::Value::List(std::move(list)));
  }
  return tokens;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream buffer;
  buffer << file.rdbuf();
  if (file.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return buffer.str();
}

absl::StatusOr<jinja::Template> ParseNamed(const std::string& source, const std::string& name) {
  absl::StatusOr<jinja::Template> parsed = jinja::Template::Parse(source);
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(),
                        absl::StrCat("chat template '", name, "': ", parsed.status().message()));
  }
  return parsed;
}

}  // namespace

ChatTemplate::ChatTemplate(std::vector<NamedTemplate> templates, jinja::DictData special_tokens,
                           ChatTemplateOptions options)
    : templates_(std::move(templates)), special_tokens_(std::move(special_tokens)), options_(std::move(options)) {}

absl::StatusOr<ChatTemplate> ChatTemplate::FromTokenizerConfig(const nlohmann::ordered_json& config,
                                                               ChatTemplateOptions options) {
  if (!config.is_object()) return absl::InvalidArgumentError("tokenizer config is not a JSON object");
  std::vector<NamedTemplate> templates;
  if (!options.template_source.empty()) {
    TANDEM_ASSIGN_OR_RETURN(jinja::Template parsed, ParseNamed(options.template_source, "default"));
    templates.push_back({"default", std::move(parsed)});
  } else {
    auto it = config.find("chat_template");
    if (it == config.end() || it->is_null()) {
      return absl::NotFoundError("tokenizer config has no chat_template");
    }
    if (it->is_string()) {
      TANDEM_ASSIGN_OR_RETURN(jinja::Template parsed, ParseNamed(it->get<std::string>(), "default"));
      templates.push_back({"default", std::move(parsed)});
    } else if (it->is_array()) {
      for (const auto& entry : *it) {
        if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
            !entry.contains("template") || !entry["template"].is_string()) {
          return absl::InvalidArgumentError(
              "chat_template list entries must be {\"name\": string, \"template\": string}");
        }
        const std::string name = entry["name"].get<std::string>();
        TANDEM_ASSIGN_OR_RETURN(jinja::Template parsed, ParseNamed(entry["template"].get<std::string>(), name));
        templates.push_back({name, std::move(parsed)});
      }
      if (templates.empty()) return absl::InvalidArgumentError("chat_template is an empty list");
    } else if (it->is_object()) {
      // {name: template}: how transformers holds the list form in memory (tokenizer.chat_template).
      for (const auto& [name, source] : it->items()) {
        if (!source.is_string()) return absl::InvalidArgumentError("chat_template entries must be strings");
        TANDEM_ASSIGN_OR_RETURN(jinja::Template parsed, ParseNamed(source.get<std::string>(), name));
        templates.push_back({name, std::move(parsed)});
      }
      if (templates.empty()) return absl::InvalidArgumentError("chat_template is an empty object");
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("chat_template must be a string or a list of {name, template}, got ", it->type_name()));
    }
  }
  return ChatTemplate(std::move(templates), SpecialTokens(config), std::move(options));
}

absl::StatusOr<ChatTemplate> ChatTemplate::FromTokenizerConfigFile(const std::string& path,
                                                                   ChatTemplateOptions options) {
  TANDEM_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::ordered_json config = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  if (options.template_source.empty()) {
    const std::filesystem::path jinja_path = std::filesystem::path(path).parent_path() / "chat_template.jinja";
    std::error_code error;
    if (std::filesystem::exists(jinja_path, error)) {
      TANDEM_ASSIGN_OR_RETURN(options.template_source, ReadFile(jinja_path.string()));
    }
  }
  absl::StatusOr<ChatTemplate> chat = FromTokenizerConfig(config, std::move(options));
  if (!chat.ok()) return absl::Status(chat.status().code(), absl::StrCat(path, ": ", chat.status().message()));
  return chat;
}

std::vector<std::string> ChatTemplate::template_names() const {
  std::vector<std::string> names;
  for (const NamedTemplate& t : templates_) names.push_back(t.name);
  return names;
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::ordered_json& messages,
                                                 const nlohmann::ordered_json* tools, bool add_generation_prompt,
                                                 const nlohmann::ordered_json& extra_kwargs) const {
  if (tools != nullptr && tools->is_null()) tools = nullptr;
  const NamedTemplate* chosen = nullptr;
  if (templates_.size() == 1) {
    chosen = &templates_[0];
  } else {
    const NamedTemplate* fallback = nullptr;
    for (const NamedTemplate& t : templates_) {
      if (tools != nullptr && t.name == "tool_use") chosen = &t;
      if (t.name == "default") fallback = &t;
    }
    if (chosen == nullptr) chosen = fallback;
    if (chosen == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("no default chat template among [", absl::StrJoin(template_names(), ", "), "]"));
    }
  }
  if (!extra_kwargs.is_null() && !extra_kwargs.is_object()) {
    return absl::InvalidArgumentError("chat template kwargs must be a JSON object");
  }

  jinja::DictData variables;
  TANDEM_ASSIGN_OR_RETURN(jinja::Value messages_value, jinja::Value::FromJson(messages, kMaxJsonDepth));
  variables.Set(jinja::Value::String("messages"), std::move(messages_value));
  if (tools != nullptr) {
    TANDEM_ASSIGN_OR_RETURN(jinja::Value tools_value, jinja::Value::FromJson(*tools, kMaxJsonDepth));
    variables.Set(jinja::Value::String("tools"), std::move(tools_value));
  } else {
    variables.Set(jinja::Value::String("tools"), jinja::Value::None());
  }
  variables.Set(jinja::Value::String("documents"), jinja::Value::None());
  variables.Set(jinja::Value::String("add_generation_prompt"), jinja::Value::Bool(add_generation_prompt));
  for (const auto& [name, token] : special_tokens_.entries()) variables.Set(name, token);
  if (extra_kwargs.is_object()) {
    for (const auto& [name, value] : extra_kwargs.items()) {
      if (name == "messages" || name == "tools" || name == "documents" || name == "add_generation_prompt") {
        return absl::InvalidArgumentError(absl::StrCat("chat template kwarg '", name, "' is passed separately"));
      }
      TANDEM_ASSIGN_OR_RETURN(jinja::Value converted, jinja::Value::FromJson(value, kMaxJsonDepth));
      variables.Set(jinja::Value::String(name), std::move(converted));
    }
  }
  jinja::RenderOptions render_options;
  render_options.limits = options_.limits;
  render_options.clock = options_.clock;
  return chosen->parsed.Render(variables, render_options);
}

bool IsChatTemplateError(const absl::Status& status) { return jinja::IsTemplateRaisedError(status); }

}  // namespace tandem
