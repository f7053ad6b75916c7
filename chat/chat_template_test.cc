#include "chat/chat_template.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem {
namespace {

using Json = nlohmann::ordered_json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Prints what the template sees of each name: its repr, or "undefined".
constexpr char kProbe[] =
    "{% for name in ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'additional_special_tokens', "
    "'tools', 'documents', 'add_generation_prompt'] %}"
    "{{ name }}={% if name == 'bos_token' %}{{ bos_token if bos_token is defined else 'undefined' }}"
    "{% elif name == 'eos_token' %}{{ eos_token if eos_token is defined else 'undefined' }}"
    "{% elif name == 'unk_token' %}{{ unk_token if unk_token is defined else 'undefined' }}"
    "{% elif name == 'pad_token' %}{{ pad_token if pad_token is defined else 'undefined' }}"
    "{% elif name == 'sep_token' %}{{ sep_token if sep_token is defined else 'undefined' }}"
    "{% elif name == 'additional_special_tokens' %}"
    "{{ additional_special_tokens if additional_special_tokens is defined else 'undefined' }}"
    "{% elif name == 'tools' %}{{ tools }}{% elif name == 'documents' %}{{ documents }}"
    "{% else %}{{ add_generation_prompt }}{% endif %};{% endfor %}";

absl::StatusOr<std::string> RenderConfig(const Json& config, const Json& messages = Json::array(),
                                         const Json* tools = nullptr, const Json& kwargs = Json::object(),
                                         bool add_generation_prompt = false) {
  absl::StatusOr<ChatTemplate> chat = ChatTemplate::FromTokenizerConfig(config);
  if (!chat.ok()) return chat.status();
  return chat->Render(messages, tools, add_generation_prompt, kwargs);
}

TEST(ChatTemplateTest, PassesSetSpecialTokensOnly) {
  const Json config = {{"chat_template", kProbe},
                       {"bos_token", "<s>"},
                       {"eos_token", {{"__type", "AddedToken"}, {"content", "</s>"}, {"lstrip", false}}},
                       {"unk_token", nullptr},
                       {"pad_token", ""},
                       {"additional_special_tokens", {"<a>", {{"content", "<b>"}}}}};
  EXPECT_EQ(*RenderConfig(config),
            "bos_token=<s>;eos_token=</s>;unk_token=undefined;pad_token=undefined;sep_token=undefined;"
            "additional_special_tokens=['<a>', '<b>'];tools=None;documents=None;add_generation_prompt=False;");
}

TEST(ChatTemplateTest, ToolsAndKwargs) {
  const Json config = {{"chat_template", kProbe}, {"bos_token", "<s>"}};
  const Json tools = Json::parse(R"([{"type": "function", "function": {"name": "f"}}])");
  const Json kwargs = {{"bos_token", "<override>"}, {"unk_token", 5}};
  EXPECT_EQ(*RenderConfig(config, Json::array(), &tools, kwargs, true),
            "bos_token=<override>;eos_token=undefined;unk_token=5;pad_token=undefined;sep_token=undefined;"
            "additional_special_tokens=undefined;tools=[{'type': 'function', 'function': {'name': 'f'}}];"
            "documents=None;add_generation_prompt=True;");
  EXPECT_THAT(RenderConfig(config, Json::array(), nullptr, {{"messages", 1}}).status().message(),
              HasSubstr("'messages' is passed separately"));
}

TEST(ChatTemplateTest, NoneToolsMeansNone) {
  const Json config = {{"chat_template", "{{ tools is defined }} {{ tools is none }}"}};
  const Json null_tools = nullptr;
  EXPECT_EQ(*RenderConfig(config), "True True");
  EXPECT_EQ(*RenderConfig(config, Json::array(), &null_tools), "True True");
}

TEST(ChatTemplateTest, MessagesKeepKeyOrder) {
  const Json config = {{"chat_template", "{{ messages[0]|tojson }}"}};
  const Json messages = Json::parse(R"([{"role": "user", "z": 1, "content": "é", "a": [1.0, null]}])");
  EXPECT_EQ(*RenderConfig(config, messages), R"({"role": "user", "z": 1, "content": "é", "a": [1.0, null]})");
}

TEST(ChatTemplateTest, NamedTemplates) {
  const Json list = {{"chat_template",
                      {{{"name", "default"}, {"template", "default"}}, {{"name", "tool_use"}, {"template", "tools"}}}}};
  const Json tools = Json::array();
  EXPECT_EQ(*RenderConfig(list), "default");
  EXPECT_EQ(*RenderConfig(list, Json::array(), &tools), "tools");
  const Json dict = {{"chat_template", {{"default", "D"}, {"rag", "R"}}}};  // transformers' in-memory form
  EXPECT_EQ(*RenderConfig(dict, Json::array(), &tools), "D");
  const Json no_default = {
      {"chat_template", {{{"name", "rag"}, {"template", "R"}}, {{"name", "x"}, {"template", "X"}}}}};
  EXPECT_EQ(RenderConfig(no_default).status().message(), "no default chat template among [rag, x]");
  absl::StatusOr<ChatTemplate> chat = ChatTemplate::FromTokenizerConfig(list);
  EXPECT_THAT(chat->template_names(), ElementsAre("default", "tool_use"));
}

TEST(ChatTemplateTest, ConfigErrors) {
  EXPECT_EQ(ChatTemplate::FromTokenizerConfig(Json::object()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ChatTemplate::FromTokenizerConfig({{"chat_template", 5}}).status().message(),
            "chat_template must be a string or a list of {name, template}, got number");
  EXPECT_EQ(ChatTemplate::FromTokenizerConfig({{"chat_template", "a\n{% if %}"}}).status().message(),
            "chat template 'default': line 2: Expected an expression, got 'end of statement block'");
}

TEST(ChatTemplateTest, RaiseExceptionMessageIsExact) {
  const Json config = {{"chat_template",
                        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
                        "{% endif %}ok"}};
  absl::StatusOr<std::string> out = RenderConfig(config, Json::parse(R"([{"role": "system", "content": "x"}])"));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(), "System role not supported");
  EXPECT_TRUE(IsChatTemplateError(out.status()));
  absl::StatusOr<std::string> other = RenderConfig(config, Json::array());  // messages[0] is undefined
  ASSERT_FALSE(other.ok());
  EXPECT_FALSE(IsChatTemplateError(other.status()));
}

TEST(ChatTemplateTest, InjectedClock) {
  ChatTemplateOptions options;
  options.clock = [] { return absl::CivilSecond(2025, 3, 7, 12, 34, 56); };
  absl::StatusOr<ChatTemplate> chat =
      ChatTemplate::FromTokenizerConfig({{"chat_template", "{{ strftime_now('%d %b %Y') }}"}}, options);
  EXPECT_EQ(*chat->Render(Json::array(), nullptr, false, Json::object()), "07 Mar 2025");
  // The default clock is the local time now.
  absl::StatusOr<std::string> now = RenderConfig({{"chat_template", "{{ strftime_now('%Y')|int >= 2024 }}"}});
  EXPECT_EQ(*now, "True");
}

TEST(ChatTemplateTest, TemplateSourceOverridesConfig) {
  ChatTemplateOptions options;
  options.template_source = "override {{ bos_token }}";
  absl::StatusOr<ChatTemplate> chat =
      ChatTemplate::FromTokenizerConfig({{"chat_template", "config"}, {"bos_token", "<s>"}}, options);
  EXPECT_EQ(*chat->Render(Json::array(), nullptr, false, Json::object()), "override <s>");
}

TEST(ChatTemplateTest, ReadsConfigFileAndChatTemplateJinjaBesideIt) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "chat_template_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": "from config", "eos_token": "</s>"})";
  absl::StatusOr<ChatTemplate> chat = ChatTemplate::FromTokenizerConfigFile((dir / "tokenizer_config.json").string());
  ASSERT_TRUE(chat.ok()) << chat.status();
  EXPECT_EQ(*chat->Render(Json::array(), nullptr, false, Json::object()), "from config");
  std::ofstream(dir / "chat_template.jinja") << "from jinja file {{ eos_token }}\n";
  chat = ChatTemplate::FromTokenizerConfigFile((dir / "tokenizer_config.json").string());
  ASSERT_TRUE(chat.ok()) << chat.status();
  EXPECT_EQ(*chat->Render(Json::array(), nullptr, false, Json::object()), "from jinja file </s>");
  EXPECT_EQ(ChatTemplate::FromTokenizerConfigFile((dir / "missing.json").string()).status().code(),
            absl::StatusCode::kNotFound);
  std::ofstream(dir / "bad.json") << "{not json";
  EXPECT_THAT(ChatTemplate::FromTokenizerConfigFile((dir / "bad.json").string()).status().message(),
              HasSubstr("not valid JSON"));
  std::filesystem::remove_all(dir);
}

TEST(ChatTemplateTest, DeeplyNestedMessagesAreRejected) {
  Json deep = "x";
  for (int i = 0; i < 100; ++i) deep = Json::array({deep});
  const Json messages = Json::array({{{"role", "user"}, {"content", deep}}});
  EXPECT_THAT(RenderConfig({{"chat_template", "x"}}, messages).status().message(), HasSubstr("nested too deeply"));
}

}  // namespace
}  // namespace tandem
