// A real trained model through `tandem convert --from llama2c`: the converted stories260K
// (shared/testdata/models/stories260K, see its README.md) must reproduce llama2.c's own greedy outputs
// id for id and character for character through the built `tandem` binary, and its tokenizer.json
// must encode like run.c. Skips with a message where the test data is absent.
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/subprocess.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "model/llama2c.h"
#include "nlohmann/json.hpp"
#include "proto/tandem.grpc.pb.h"
#include "tests/testing/tandem_cli.h"
#include "tokenizer/tokenizer.h"

namespace tandem {
namespace {

using test_support::TandemBinary;
using test_support::TestBackendFlags;

const std::string kData = std::string(TANDEM_SHARED_DIR) + "/testdata/models/stories260K";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

struct Output {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

Output RunTandem(const std::vector<std::string>& args) {
  const std::string err_path = ::testing::TempDir() + "/stories260k_test_stderr";
  std::string command = TandemBinary();
  for (const std::string& arg : args) absl::StrAppend(&command, " '", arg, "'");
  absl::StrAppend(&command, " 2>'", err_path, "'");
  Output result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "popen failed: " << command;
    return result;
  }
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.out.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.err = ReadAll(err_path);
  return result;
}

std::vector<int32_t> ParseIds(std::string_view text) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(absl::string_view(text.data(), text.size()),
                                               absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    int32_t id;
    EXPECT_TRUE(absl::SimpleAtoi(part, &id)) << "'" << part << "' is not an id";
    ids.push_back(id);
  }
  return ids;
}

// One expected_greedy_*.txt: run.c's `-t 0 -n 256` output.
struct Expected {
  std::vector<int32_t> prompt_ids;  // BOS first
  // What run.c printed: the prompt after BOS, then the generated ids; 256 in all (one per step).
  std::vector<int32_t> ids;
  std::string text;  // everything after the "TEXT:" line, run.c's final newline included
};

Expected ReadExpected(const std::string& name) {
  const std::string contents = ReadAll(kData + "/" + name);
  Expected expected;
  const size_t text_at = contents.find("TEXT:\n");
  EXPECT_NE(text_at, std::string::npos) << name;
  if (text_at == std::string::npos) return expected;
  expected.text = contents.substr(text_at + 6);
  for (absl::string_view line : absl::StrSplit(contents.substr(0, text_at), '\n')) {
    if (absl::ConsumePrefix(&line, "PROMPT_IDS:")) expected.prompt_ids = ParseIds(std::string(line));
    if (absl::ConsumePrefix(&line, "IDS:")) expected.ids = ParseIds(std::string(line));
  }
  EXPECT_FALSE(expected.prompt_ids.empty()) << name;
  EXPECT_EQ(expected.ids.size(), 256u) << name;
  return expected;
}

class Stories260kTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(kData + "/stories260K.bin")) return;
    model_ = new std::string(::testing::TempDir() + "/stories260k_converted");
    std::filesystem::remove_all(*model_);
    convert_ =
        new Output(RunTandem({"convert", "--from", "llama2c", "--checkpoint", kData + "/stories260K.bin",
                              "--tokenizer", kData + "/tok512.bin", "--out", *model_}));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete convert_;
    model_ = nullptr;
    convert_ = nullptr;
  }

  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << kData << " is absent (shared/testdata not checked out)";
    ASSERT_EQ(convert_->exit_code, 0) << convert_->err;
  }

  // `tandem run --model <converted> ARGS`.
  static Output Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"run", "--model", *model_});
    for (const std::string& flag : TestBackendFlags()) args.push_back(flag);
    return RunTandem(args);
  }

  static std::string* model_;
  static Output* convert_;
};
std::string* Stories260kTest::model_ = nullptr;
Output* Stories260kTest::convert_ = nullptr;

// run.c prints prompt_ids[1:] and then generates until 256 steps are done: the generated part is what
// `tandem run` must produce after the whole prompt.
std::vector<int32_t> Generated(const Expected& expected) {
  return std::vector<int32_t>(
      expected.ids.begin() + static_cast<std::ptrdiff_t>(expected.prompt_ids.size() - 1), expected.ids.end());
}

TEST_F(Stories260kTest, ConvertWritesAHuggingFaceDirectory) {
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
    EXPECT_TRUE(std::filesystem::exists(*model_ + "/" + file)) << file;
  }
  EXPECT_NE(convert_->err.find("dim 64, hidden_dim 172, n_layers 5, n_heads 8, n_kv_heads 4, vocab_size 512, "
                               "seq_len 512"),
            std::string::npos)
      << convert_->err;
}

TEST_F(Stories260kTest, GreedyIdsMatchLlama2cFromBos) {
  const Expected expected = ReadExpected("expected_greedy_empty_prompt.txt");
  ASSERT_EQ(expected.prompt_ids, std::vector<int32_t>{1});
  const std::vector<int32_t> want = Generated(expected);
  const Output run = Run({"--tokens", "1", "--max-tokens", absl::StrCat(want.size()), "--print-ids"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(ParseIds(run.out), want) << run.err;
}

TEST_F(Stories260kTest, GreedyIdsMatchLlama2cAfterOnceUponATime) {
  const Expected expected = ReadExpected("expected_greedy_once_upon_a_time.txt");
  ASSERT_EQ(expected.prompt_ids, (std::vector<int32_t>{1, 403, 407, 261, 378}));
  const std::vector<int32_t> want = Generated(expected);
  ASSERT_EQ(want.size(), 252u);
  const Output run = Run({"--tokens", absl::StrJoin(expected.prompt_ids, ","), "--max-tokens",
                          absl::StrCat(want.size()), "--print-ids"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(ParseIds(run.out), want) << run.err;
}

TEST_F(Stories260kTest, GreedyTextMatchesLlama2c) {
  // run.c prints the prompt's pieces too; `tandem run` prints what it generates.
  const Expected once = ReadExpected("expected_greedy_once_upon_a_time.txt");
  const Output prompted =
      Run({"--prompt", "Once upon a time", "--max-tokens", absl::StrCat(Generated(once).size())});
  ASSERT_EQ(prompted.exit_code, 0) << prompted.err;
  EXPECT_EQ("Once upon a time" + prompted.out, once.text);

  const Expected empty = ReadExpected("expected_greedy_empty_prompt.txt");
  const Output from_bos = Run({"--tokens", "1", "--max-tokens", absl::StrCat(Generated(empty).size())});
  ASSERT_EQ(from_bos.exit_code, 0) << from_bos.err;
  EXPECT_EQ(from_bos.out, empty.text);
}

TEST_F(Stories260kTest, GreedyGenerationEndsAtBosLikeRunC) {
  const Output run = Run({"--tokens", "1", "--max-tokens", "511", "--print-ids"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<int32_t> ids = ParseIds(run.out);
  ASSERT_FALSE(ids.empty());
  EXPECT_LT(ids.size(), 511u) << "the story should end before the context does";
  EXPECT_EQ(ids.back(), 1) << "run.c stops at BOS; eos_token_id lists it";
  EXPECT_NE(run.err.find("finish=stop"), std::string::npos) << run.err;
}

TEST_F(Stories260kTest, TokenizerEncodesLikeRunC) {
  auto tokenizer = Tokenizer::FromFile(*model_ + "/tokenizer.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  // The README's prompts.
  auto once = (*tokenizer)->Encode("Once upon a time", /*add_special_tokens=*/true);
  ASSERT_TRUE(once.ok());
  EXPECT_EQ(*once, (std::vector<int32_t>{1, 403, 407, 261, 378}));
  auto empty = (*tokenizer)->Encode("", /*add_special_tokens=*/true);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, std::vector<int32_t>{1});

  // Decoding run.c's ids gives run.c's text (without the newline run.c prints at the end).
  const Expected expected = ReadExpected("expected_greedy_empty_prompt.txt");
  std::vector<int32_t> ids = expected.prompt_ids;
  ids.insert(ids.end(), expected.ids.begin(), expected.ids.end());
  auto text = (*tokenizer)->Decode(ids, /*skip_special_tokens=*/true);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text + "\n", expected.text);
  // And encoding that text gives the ids back (run.c's own encode() agrees: checked below).
  auto encoded = (*tokenizer)->Encode(*text, /*add_special_tokens=*/true);
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ(*encoded, ids);

  // Against run.c's encode() on every line, word run and character window of the text, plus text with
  // characters outside the vocabulary (byte fallback) and a few oddities.
  auto vocab = ParseLlama2cTokenizer(ReadAll(kData + "/tok512.bin"), "tok512.bin");
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  std::vector<std::string> texts = {
      " ", "  ", "\n", "a  b", " leading", "trailing ", "Zoë’s café: 3€ — “ok”?", "日本語", "tab\there"};
  const std::vector<std::string> lines = absl::StrSplit(*text, '\n');
  texts.insert(texts.end(), lines.begin(), lines.end());
  const std::vector<std::string> words = absl::StrSplit(*text, ' ');
  for (size_t begin = 0; begin < words.size(); begin += 3) {
    for (size_t count = 1; count <= 4 && begin + count <= words.size(); ++count) {
      texts.push_back(absl::StrJoin(words.begin() + begin, words.begin() + begin + count, " "));
    }
  }
  for (size_t begin = 0; begin + 12 <= text->size(); begin += 5) texts.push_back(text->substr(begin, 12));
  int mismatches = 0;
  for (const std::string& sample : texts) {
    auto got = (*tokenizer)->Encode(sample, /*add_special_tokens=*/true);
    if (!got.ok()) continue;  // invalid UTF-8 from a byte window cut inside a character
    if (*got != Llama2cEncode(*vocab, sample, /*bos=*/true) && ++mismatches <= 5) {
      ADD_FAILURE() << "encoding '" << sample << "'";
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << texts.size() << " texts";
}

// `tandem up` on the converted model: the cluster (a prefill and a decode worker, KV handed over gRPC)
// must give run.c's ids over gRPC and run.c's text over the OpenAI HTTP API (curl, a real client).
class Stories260kClusterTest : public Stories260kTest {
 protected:
  void SetUp() override {
    Stories260kTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    std::vector<std::string> args = {"up", "--model", *model_, "--port", "0", "--http-port", "0",
                                     "--log-level", "warning"};
    // stories260K has no chat template of its own: `up --chat-template` gives the router one that
    // writes BOS and the messages' text, so a chat request is the same token sequence as a completion.
    chat_template_ = ::testing::TempDir() + "/stories260k_chat.jinja";
    std::ofstream(chat_template_) << "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}";
    args.insert(args.end(), {"--chat-template", chat_template_});
    for (const std::string& flag : TestBackendFlags()) args.push_back(flag);
    absl::StatusOr<Subprocess> up = SpawnProcess("tandem-up", TandemBinary(), args);
    ASSERT_TRUE(up.ok()) << up.status();
    children_.push_back(std::move(*up));
    const test_support::ClusterUp ready = test_support::AwaitClusterUp(children_[0], /*want_http=*/true);
    router_ = ready.router;
    http_ = ready.http;
    ASSERT_FALSE(router_.empty()) << "tandem up did not come up";
    ASSERT_FALSE(http_.empty()) << "tandem up printed no OpenAI API address";
  }
  void TearDown() override { StopProcesses(children_, absl::Seconds(10)); }

  // Greedy over gRPC from token ids.
  std::vector<int32_t> GenerateIds(const std::vector<int32_t>& prompt, int max_tokens) {
    auto stub = v1::Tandem::NewStub(grpc::CreateChannel(router_, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::GenerateRequest request;
    for (int32_t id : prompt) request.mutable_prompt_token_ids()->add_ids(id);
    request.set_max_tokens(max_tokens);
    request.mutable_sampling()->set_temperature(0);
    std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader = stub->Generate(&context, request);
    std::vector<int32_t> ids;
    v1::GenerateResponse response;
    while (reader->Read(&response)) ids.insert(ids.end(), response.token_ids().begin(), response.token_ids().end());
    const grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return ids;
  }

  // POST `body` to http://<router>/<path> with curl (the client the README shows).
  Output Curl(const std::string& path, const nlohmann::json& body) {
    const std::string command = absl::StrCat("curl -sS --max-time 60 -H 'Content-Type: application/json' -d '",
                                             body.dump(), "' http://", http_, path);
    Output result;
    FILE* pipe = popen(command.c_str(), "r");
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.out.append(buffer, n);
    const int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
  }

  std::vector<Subprocess> children_;
  std::string router_, http_, chat_template_;
};

TEST_F(Stories260kClusterTest, GrpcIdsMatchLlama2c) {
  for (const char* name : {"expected_greedy_empty_prompt.txt", "expected_greedy_once_upon_a_time.txt"}) {
    const Expected expected = ReadExpected(name);
    const std::vector<int32_t> want = Generated(expected);
    EXPECT_EQ(GenerateIds(expected.prompt_ids, static_cast<int>(want.size())), want) << name;
  }
}

TEST_F(Stories260kClusterTest, HttpCompletionTextMatchesLlama2c) {
  const Expected once = ReadExpected("expected_greedy_once_upon_a_time.txt");
  const Output curl = Curl("/v1/completions", {{"model", ""},
                                                {"prompt", "Once upon a time"},
                                                {"temperature", 0},
                                                {"max_tokens", Generated(once).size()}});
  if (curl.exit_code == 127) GTEST_SKIP() << "curl is not installed";
  ASSERT_EQ(curl.exit_code, 0) << curl.out;
  const nlohmann::json response = nlohmann::json::parse(curl.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(response.contains("choices")) << curl.out;
  EXPECT_EQ(response["choices"][0]["finish_reason"], "length") << curl.out;
  // run.c prints the prompt, the story, then a newline.
  EXPECT_EQ("Once upon a time" + response["choices"][0]["text"].get<std::string>() + "\n", once.text);
}

TEST_F(Stories260kClusterTest, ChatWithTheUpChatTemplateMatchesLlama2c) {
  const Expected once = ReadExpected("expected_greedy_once_upon_a_time.txt");
  const Output curl = Curl("/v1/chat/completions",
                           {{"model", ""},
                            {"messages", {{{"role", "user"}, {"content", "Once upon a time"}}}},
                            {"temperature", 0},
                            {"max_tokens", Generated(once).size()}});
  if (curl.exit_code == 127) GTEST_SKIP() << "curl is not installed";
  ASSERT_EQ(curl.exit_code, 0) << curl.out;
  const nlohmann::json response = nlohmann::json::parse(curl.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(response.contains("choices")) << curl.out;
  EXPECT_EQ(response["choices"][0]["finish_reason"], "length") << curl.out;
  EXPECT_EQ(response["usage"]["prompt_tokens"], once.prompt_ids.size()) << curl.out;
  EXPECT_EQ("Once upon a time" + response["choices"][0]["message"]["content"].get<std::string>() + "\n",
            once.text);
}

}  // namespace
}  // namespace tandem
