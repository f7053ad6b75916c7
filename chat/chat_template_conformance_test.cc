// Renders every case of shared/testdata/chat_templates/<template>/expected.jsonl (real chat
// templates; outputs produced by transformers' rendering code on Jinja2, see README.md there) and
// compares the output, or the template's raise_exception() message, exactly.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tandem {
namespace {

using Json = nlohmann::ordered_json;

std::string DataDir() { return std::string(TANDEM_SHARED_DIR) + "/testdata/chat_templates"; }

Json ReadJson(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return Json::parse(text.str());
}

std::vector<Json> ReadJsonLines(const std::string& path) {
  std::vector<Json> lines;
  std::ifstream file(path);
  std::string line;
  while (std::getline(file, line)) {
    if (!line.empty()) lines.push_back(Json::parse(line));
  }
  return lines;
}

std::vector<std::string> TemplateDirs() {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(DataDir(), error)) {
    if (std::filesystem::exists(entry.path() / "tokenizer_config.json")) names.push_back(entry.path().filename());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The frozen "now" render.py uses.
absl::CivilSecond FrozenNow() { return absl::CivilSecond(2025, 3, 7, 12, 34, 56); }

class ChatTemplateConformanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(DataDir() + "/conversations.json")) {
      GTEST_SKIP() << "chat template test data not found in " << DataDir();
    }
    const Json all = ReadJson(DataDir() + "/conversations.json");
    for (const Json& conversation : all["conversations"]) {
      conversations_[conversation["id"].get<std::string>()] = conversation;
    }
  }

  std::map<std::string, Json> conversations_;
};

TEST_F(ChatTemplateConformanceTest, EveryCaseRendersExactly) {
  int cases = 0;
  int passed = 0;
  for (const std::string& name : TemplateDirs()) {
    SCOPED_TRACE(name);
    const std::string dir = DataDir() + "/" + name;
    const Json meta = ReadJson(dir + "/meta.json");
    ChatTemplateOptions options;
    options.clock = FrozenNow;
    absl::StatusOr<ChatTemplate> chat = ChatTemplate::FromTokenizerConfigFile(dir + "/tokenizer_config.json", options);
    ASSERT_TRUE(chat.ok()) << chat.status();

    // The cases are exactly the applicable conversations, each without and with the generation prompt.
    std::set<std::pair<std::string, bool>> seen;
    for (const Json& expected : ReadJsonLines(dir + "/expected.jsonl")) {
      ++cases;
      const std::string id = expected["conversation"].get<std::string>();
      const bool add_generation_prompt = expected["add_generation_prompt"].get<bool>();
      seen.insert({id, add_generation_prompt});
      SCOPED_TRACE(id + (add_generation_prompt ? " +generation prompt" : ""));
      ASSERT_TRUE(conversations_.count(id)) << "unknown conversation " << id;
      const Json& conversation = conversations_[id];
      const Json* tools = conversation.contains("tools") ? &conversation["tools"] : nullptr;
      EXPECT_EQ(tools != nullptr, expected["tools"].get<bool>());
      const Json kwargs = conversation.contains("template_kwargs") ? conversation["template_kwargs"] : Json::object();

      absl::StatusOr<std::string> output = chat->Render(conversation["messages"], tools, add_generation_prompt, kwargs);
      if (expected.contains("error")) {
        ASSERT_FALSE(output.ok()) << "expected error: " << expected["error"] << "\ngot output:\n" << *output;
        EXPECT_TRUE(IsChatTemplateError(output.status())) << output.status();
        EXPECT_EQ(output.status().message(), expected["error"].get<std::string>());
        if (!output.ok() && output.status().message() == expected["error"].get<std::string>()) ++passed;
      } else {
        ASSERT_TRUE(output.ok()) << output.status();
        EXPECT_EQ(*output, expected["output"].get<std::string>());
        if (*output == expected["output"].get<std::string>()) ++passed;
      }
    }
    for (const auto& [id, conversation] : conversations_) {
      const bool applicable =
          !conversation.value("requires_tool_support", false) || meta.value("supports_tools", false);
      EXPECT_EQ(seen.count({id, false}) + seen.count({id, true}), applicable ? 2u : 0u) << id;
    }
  }
  EXPECT_GT(cases, 0);
  EXPECT_EQ(passed, cases);
  std::printf("chat template conformance: %d of %d cases match\n", passed, cases);
}

}  // namespace
}  // namespace tandem
