// The HTTP API end to end against in-process fake workers: completions streaming and not, OpenAI's
// error shape and statuses, health, a client that hangs up (its decode is cancelled), and 512
// concurrent streams served without a thread per connection.
#include "router/http_front_door.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <dirent.h>
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
#include "router/testing/http_client.h"
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

using ::tandem::router::testing::HttpResult;
using ::tandem::router::testing::ReadAll;
using ::tandem::router::testing::SendAll;

int Connect(int port) { return ::tandem::router::testing::ConnectLoopback(port); }
std::string Request(const std::string& method, const std::string& path, const std::string& body) {
  return ::tandem::router::testing::HttpRequestText(method, path, body);
}
HttpResult Parse(const std::string& raw) { return ::tandem::router::testing::ParseHttpResponse(raw); }
HttpResult Call(int port, const std::string& method, const std::string& path, const std::string& body = "") {
  return ::tandem::router::testing::HttpCall(port, method, path, body);
}
std::vector<std::string> Events(const std::string& body) { return ::tandem::router::testing::SseEvents(body); }

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

// A client that reads slowly gets every byte of a response larger than its socket buffer while the
// hang-up watch runs (and after it stops: the end of an exchange must not cancel a write in flight).
TEST_F(HttpFrontDoorTest, ASlowReaderGetsAWholeLargeResponse) {
  for (const bool stream : {false, true}) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    const int small = 1024;  // the kernel makes it ~2 KB
    ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    SendAll(fd, Request("POST", "/v1/completions",
                        absl::StrCat(R"({"prompt": "Hi", "max_tokens": 480, "ignore_eos": true, "logprobs": 0, "stream": )",
                                     stream ? "true" : "false", "}")));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the whole response is queued by now
    const HttpResult r = Parse(ReadAll(fd));
    close(fd);
    ASSERT_EQ(r.status, 200) << (stream ? "streaming" : "whole");
    if (stream) {
      EXPECT_GT(r.body.size(), 18000u) << "the response should outgrow the socket buffers";
      const std::vector<std::string> events = Events(r.body);
      ASSERT_FALSE(events.empty());
      EXPECT_EQ(events.back(), "[DONE]");
    } else {
      const Json body = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
      ASSERT_FALSE(body.is_discarded()) << "cut after " << r.body.size() << " bytes";
      EXPECT_GT(body["usage"]["completion_tokens"].get<int>(), 0);
    }
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
