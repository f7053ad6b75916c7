// The HTTP API end to end against in-process fake workers: completions streaming and not, OpenAI's
// error shape and statuses, health, a client that hangs up (its decode is cancelled), and 512
// concurrent streams served without a thread per connection.
#include "router/http_front_door.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "model/config.h"
#include "model/random_model.h"
#include "nlohmann/json.hpp"
#include "router/router_server.h"
#include "router/testing/fake_workers.h"
#include "tokenizer/make_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace tandem::router {
namespace {

using ::tandem::router::testing::FakeDecodeOptions;
using ::tandem::router::testing::FakeDecodeWorker;
using ::tandem::router::testing::FakePrefillWorker;
using ::tandem::router::testing::WaitFor;
using Json = nlohmann::json;

std::string MakeModelDir() {
  static const std::string dir = [] {
    const std::string path = absl::StrCat(::testing::TempDir(), "/http_test_", getpid(), "/tiny-http");
    std::filesystem::create_directories(path);
    ModelConfig config = *PresetConfig("tiny");
    absl::StatusOr<std::string> json =
        MakeByteLevelBpeTokenizerJson(static_cast<int>(config.vocab_size), kEnglishTrainingText, {"<s>", "</s>"});
    EXPECT_TRUE(json.ok()) << json.status();
    config.eos_token_ids = {511};
    std::ofstream(path + "/config.json") << ModelConfigToJson(config);
    std::ofstream(path + "/tokenizer.json") << *json;
    return path;
  }();
  return dir;
}

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string Request(const std::string& method, const std::string& path, const std::string& body) {
  return absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n",
                      "Connection: close\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
}

void SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

std::string ReadAll(int fd, int timeout_ms = 20000) {
  std::string out;
  char buffer[8192];
  pollfd p{fd, POLLIN, 0};
  while (poll(&p, 1, timeout_ms) > 0) {
    const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

struct HttpResult {
  int status = 0;
  std::string headers;
  std::string body;  // de-chunked
};

HttpResult Parse(const std::string& raw) {
  HttpResult r;
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return r;
  r.headers = raw.substr(0, head_end);
  absl::SimpleAtoi(r.headers.substr(9, 3), &r.status);
  std::string rest = raw.substr(head_end + 4);
  if (!absl::StrContains(r.headers, "chunked")) {
    r.body = rest;
    return r;
  }
  size_t at = 0;
  while (at < rest.size()) {
    const size_t eol = rest.find("\r\n", at);
    if (eol == std::string::npos) break;
    const size_t size = std::stoul(rest.substr(at, eol - at), nullptr, 16);
    if (size == 0) break;
    r.body += rest.substr(eol + 2, size);
    at = eol + 2 + size + 2;
  }
  return r;
}

HttpResult Call(int port, const std::string& method, const std::string& path, const std::string& body = "") {
  const int fd = Connect(port);
  EXPECT_GE(fd, 0);
  SendAll(fd, Request(method, path, body));
  HttpResult result = Parse(ReadAll(fd));
  close(fd);
  return result;
}

// The JSON payloads of a server-sent-event body, "[DONE]" included as a string.
std::vector<std::string> Events(const std::string& body) {
  std::vector<std::string> events;
  for (absl::string_view block : absl::StrSplit(body, "\n\n", absl::SkipEmpty())) {
    if (absl::StartsWith(block, "data: ")) events.emplace_back(block.substr(6));
  }
  return events;
}

// Threads of this process whose name starts with `prefix` (all of them for "").
int ThreadCount(const std::string& prefix) {
  int n = 0;
  if (DIR* dir = opendir("/proc/self/task")) {
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream comm(absl::StrCat("/proc/self/task/", e->d_name, "/comm"));
      std::string name;
      std::getline(comm, name);
      n += name.rfind(prefix, 0) == 0;
    }
    closedir(dir);
  }
  return n;
}

class HttpFrontDoorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prefill_ = FakePrefillWorker::Start();
    decode_ = FakeDecodeWorker::Start();
    RouterOptions options;
    options.model_dir = MakeModelDir();
    options.prefill_addresses = {prefill_->address()};
    options.decode_addresses = {decode_->address()};
    options.http_port = 0;
    options.max_queue = 1024;
    auto router = RouterServer::Start(options);
    ASSERT_TRUE(router.ok()) << router.status();
    router_ = *std::move(router);
    const std::string address = router_->http_address();
    ASSERT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port_));
  }
  void TearDown() override {
    if (router_) router_->Shutdown(absl::Seconds(1));
  }

  std::unique_ptr<FakePrefillWorker> prefill_;
  std::unique_ptr<FakeDecodeWorker> decode_;
  std::unique_ptr<RouterServer> router_;
  int port_ = 0;
};

TEST_F(HttpFrontDoorTest, CompletionReturnsTextUsageAndTheReport) {
  HttpResult r = Call(port_, "POST", "/v1/completions", R"({"prompt": "Hi", "max_tokens": 11, "temperature": 0})");
  ASSERT_EQ(r.status, 200) << r.body;
  const Json body = Json::parse(r.body);
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["choices"][0]["text"], "Hello world");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["usage"]["prompt_tokens"], 3);  // <s> H i
  EXPECT_EQ(body["usage"]["completion_tokens"], 11);
  EXPECT_EQ(body["model"], "tiny-http");
  EXPECT_EQ(body["tandem"]["decode_worker"], decode_->address());
  EXPECT_GT(body["tandem"]["timing"]["e2e_ms"].get<double>(), 0);
  // The prompt reached the prefill worker as the tokenizer's ids, with the sampling asked for.
  ASSERT_EQ(prefill_->prefill_requests().size(), 1u);
  EXPECT_EQ(prefill_->prefill_requests()[0].sampling().temperature(), 0.0f);
}

TEST_F(HttpFrontDoorTest, StreamingSendsDeltasThenTheFinishThenUsageThenDone) {
  HttpResult r = Call(port_, "POST", "/v1/completions",
                      R"({"prompt": "Hi", "max_tokens": 11, "stream": true, "stream_options": {"include_usage": true}})");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(absl::StrContains(r.headers, "text/event-stream"));
  const std::vector<std::string> events = Events(r.body);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 3 < events.size(); ++i) {
    const Json chunk = Json::parse(events[i]);
    EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
    text += chunk["choices"][0]["text"].get<std::string>();
  }
  const Json last = Json::parse(events[events.size() - 3]);
  text += last["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(text, "Hello world");
  const Json usage = Json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 11);
}

TEST_F(HttpFrontDoorTest, StopStringsEndTheTextAsStop) {
  HttpResult r = Call(port_, "POST", "/v1/completions", R"({"prompt": "Hi", "max_tokens": 20, "stop": " wor"})");
  ASSERT_EQ(r.status, 200) << r.body;
  const Json body = Json::parse(r.body);
  EXPECT_EQ(body["choices"][0]["text"], "Hello");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(body["tandem"]["finish_reason"], "stop_string");
}

TEST_F(HttpFrontDoorTest, ErrorsUseOpenAisShapeAndStatus) {
  auto check = [&](const std::string& path, const std::string& body, int status, const std::string& param) {
    HttpResult r = Call(port_, "POST", path, body);
    EXPECT_EQ(r.status, status) << body << " -> " << r.body;
    const Json error = Json::parse(r.body, nullptr, false);
    ASSERT_FALSE(error.is_discarded()) << r.body;
    EXPECT_TRUE(error["error"]["message"].is_string()) << r.body;
    if (param.empty()) {
      EXPECT_TRUE(error["error"]["param"].is_null()) << r.body;
    } else {
      EXPECT_EQ(error["error"]["param"], param) << r.body;
    }
  };
  check("/v1/completions", R"({"prompt": "x", "temperature": -1})", 400, "temperature");
  check("/v1/completions", R"({"prompt": "x", "model": "nope"})", 404, "model");
  check("/v1/completions", R"({"prompt": "x", "max_tokens": 100000})", 400, "max_tokens");
  check("/v1/completions", R"({"prompt": [1, 99999]})", 400, "prompt_token_ids[1]");
  check("/v1/completions", "{", 400, "");
  check("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}]})", 400, "messages");
  EXPECT_EQ(Call(port_, "GET", "/v1/completions").status, 405);
  EXPECT_EQ(Call(port_, "GET", "/v2/anything").status, 404);
  // No healthy worker: 503.
  prefill_->Shutdown();
  ASSERT_TRUE(WaitFor([&] { return Call(port_, "GET", "/health").status == 503; }, absl::Seconds(10)));
  check("/v1/completions", R"({"prompt": "x"})", 503, "");
}

TEST_F(HttpFrontDoorTest, ModelsHealthAndMetrics) {
  HttpResult models = Call(port_, "GET", "/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(Json::parse(models.body)["data"][0]["id"], "tiny-http");
  HttpResult health = Call(port_, "GET", "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(Json::parse(health.body)["status"], "ok");
  HttpResult metrics = Call(port_, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_TRUE(absl::StrContains(metrics.body, "tandem_router")) << metrics.body.substr(0, 200);
}

TEST_F(HttpFrontDoorTest, AClientThatHangsUpCancelsItsDecode) {
  FakeDecodeOptions slow;
  slow.token_delay = absl::Milliseconds(50);
  decode_->set_options(slow);
  for (bool stream : {true, false}) {
    const int before = decode_->cancellations();
    const int fd = Connect(port_);
    SendAll(fd, Request("POST", "/v1/completions",
                        absl::StrCat(R"({"prompt": "Hi", "max_tokens": 400, "stream": )", stream ? "true" : "false",
                                     "}")));
    ASSERT_TRUE(WaitFor([&] { return decode_->decode_requests().size() > 0; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    close(fd);
    EXPECT_TRUE(WaitFor([&] { return decode_->cancellations() == before + 1; }, absl::Seconds(5)))
        << (stream ? "streaming" : "whole response");
  }
}

TEST_F(HttpFrontDoorTest, FiveHundredTwelveConcurrentStreamsWithoutAThreadEach) {
  FakeDecodeOptions slow;
  slow.token_delay = absl::Milliseconds(20);
  decode_->set_options(slow);
  constexpr int kStreams = 512;
  // Both ends of 512 connections live in this process: raise the soft descriptor limit if needed.
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < 4 * kStreams) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 4 * kStreams);
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur < 2 * kStreams + 64) GTEST_SKIP() << "descriptor limit " << limit.rlim_cur << " is too low";
  const int threads_before = ThreadCount("");
  const int grpc_before = ThreadCount("grpc") + ThreadCount("fake-worker");
  std::vector<int> fds;
  for (int i = 0; i < kStreams; ++i) {
    const int fd = Connect(port_);
    ASSERT_GE(fd, 0) << i;
    SendAll(fd, Request("POST", "/v1/completions", R"({"prompt": "Hi", "max_tokens": 40, "stream": true})"));
    fds.push_back(fd);
  }
  // Every stream is open and producing at the same time.
  ASSERT_TRUE(WaitFor([&] { return decode_->decode_requests().size() >= kStreams; }, absl::Seconds(30)));
  const int threads_during = ThreadCount("");
  const int grpc_during = ThreadCount("grpc") + ThreadCount("fake-worker");
  const int http_threads = ThreadCount("tandem-http");
  int complete = 0;
  for (int fd : fds) {
    const std::vector<std::string> events = Events(Parse(ReadAll(fd)).body);
    complete += !events.empty() && events.back() == "[DONE]";
    close(fd);
  }
  EXPECT_EQ(complete, kStreams);
  // The HTTP side runs on its fixed I/O threads: besides gRPC's (the in-process fake decode worker
  // serves each stream on a thread of its own), no thread appeared per connection.
  EXPECT_EQ(http_threads, 2);
  EXPECT_LT((threads_during - grpc_during) - (threads_before - grpc_before), 8)
      << "threads " << threads_before << " -> " << threads_during << ", of which gRPC and fake workers "
      << grpc_before << " -> " << grpc_during;
}

}  // namespace
}  // namespace tandem::router
