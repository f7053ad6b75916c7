// The router's CPU cost per streamed token, gRPC against HTTP (bench/frontdoor.md).
//
// The router runs as its own `tandem router` process; the bench process holds in-process fake workers
// that answer as fast as they can (a prefill with the first token, a decode that streams one token per
// message, as a real decode worker does at batch 1) and the clients. The router's user + system CPU
// time is read from /proc/PID/stat around each round and divided by the tokens streamed to clients.
// Rounds alternate between the two APIs (the machine is noisy), with the same concurrency and lengths.
//
//   build/bench/frontdoor_bench [--streams 32] [--requests 8] [--tokens 256] [--rounds 3]
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/flags.h"
#include "common/subprocess.h"
#include "grpcpp/create_channel.h"
#include "model/config.h"
#include "model/random_model.h"
#include "nlohmann/json.hpp"
#include "proto/tandem.grpc.pb.h"
#include "router/testing/fake_workers.h"
#include "router/testing/http_client.h"
#include "tokenizer/make_tokenizer.h"

namespace tandem {
namespace {

using router::testing::FakeDecodeWorker;
using router::testing::FakePrefillWorker;

std::string WriteModelDir() {
  const std::string path = absl::StrCat("/tmp/frontdoor_bench_", getpid(), "/tiny-bench");
  std::filesystem::create_directories(path);
  ModelConfig config = *PresetConfig("tiny");
  absl::StatusOr<std::string> json =
      MakeByteLevelBpeTokenizerJson(static_cast<int>(config.vocab_size), kEnglishTrainingText, {"<s>", "</s>"});
  if (!json.ok()) std::abort();
  config.max_position_embeddings = 4096;
  config.eos_token_ids = {511};
  std::ofstream(path + "/config.json") << ModelConfigToJson(config);
  std::ofstream(path + "/tokenizer.json") << *json;
  return path;
}

// User + system CPU seconds of a process.
double CpuSeconds(int pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name (which is in parentheses and may contain spaces).
  const std::vector<std::string> fields = absl::StrSplit(text.substr(text.rfind(')') + 2), ' ');
  int64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) || !absl::SimpleAtoi(fields[12], &stime)) return 0;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Round {
  int64_t tokens = 0;
  double cpu_s = 0;
  double wall_s = 0;
  int failures = 0;
};

int64_t GrpcRequest(v1::Tandem::Stub& stub, int tokens) {
  grpc::ClientContext context;
  v1::GenerateRequest request;
  request.set_prompt("Hi");
  request.set_max_tokens(tokens);
  request.set_ignore_eos(true);
  auto reader = stub.Generate(&context, request);
  v1::GenerateResponse response;
  int64_t got = 0;
  while (reader->Read(&response)) got += response.token_ids_size();
  return reader->Finish().ok() ? got : -1;
}

int64_t HttpRequest(int port, int tokens) {
  const router::testing::HttpResult r = router::testing::HttpCall(
      port, "POST", "/v1/completions",
      absl::StrCat(R"({"prompt": "Hi", "stream": true, "ignore_eos": true, "stream_options": {"include_usage": true},)",
                   R"( "max_tokens": )", tokens, "}"));
  if (r.status != 200) return -1;
  const std::vector<std::string> events = router::testing::SseEvents(r.body);
  if (events.size() < 2 || events.back() != "[DONE]") return -1;
  const nlohmann::json usage = nlohmann::json::parse(events[events.size() - 2], nullptr, false);
  if (usage.is_discarded() || !usage.contains("usage")) return -1;
  return usage["usage"]["completion_tokens"].get<int64_t>();
}

Round RunRound(bool http, int router_pid, v1::Tandem::Stub& stub, int http_port, int streams, int requests,
               int tokens) {
  Round round;
  std::atomic<int64_t> total{0};
  std::atomic<int> failures{0};
  const double cpu_before = CpuSeconds(router_pid);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < streams; ++c) {
    clients.emplace_back([&] {
      for (int r = 0; r < requests; ++r) {
        const int64_t got = http ? HttpRequest(http_port, tokens) : GrpcRequest(stub, tokens);
        if (got < 0) {
          ++failures;
        } else {
          total += got;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  round.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  round.cpu_s = CpuSeconds(router_pid) - cpu_before;
  round.tokens = total.load();
  round.failures = failures.load();
  return round;
}

int Main(int argc, char** argv) {
  int64_t streams = 32, requests = 8, tokens = 256, rounds = 3;
  FlagParser parser("frontdoor_bench [flags]");
  parser.AddInt("streams", &streams, "concurrent client streams");
  parser.AddInt("requests", &requests, "requests per stream per round");
  parser.AddInt("tokens", &tokens, "tokens per request");
  parser.AddInt("rounds", &rounds, "rounds per API (alternating)");
  const absl::Status parsed = parser.Parse(std::vector<std::string>(argv + 1, argv + argc));
  if (parser.help_requested()) {
    std::fputs(parser.Usage().c_str(), stdout);
    return 0;
  }
  if (!parsed.ok()) {
    std::fprintf(stderr, "%s\n", parsed.ToString().c_str());
    return 2;
  }
  auto prefill = FakePrefillWorker::Start();
  router::testing::FakeDecodeOptions decode_options;
  decode_options.tokens.assign(4096, 'a');  // as many as a request asks for
  auto decode = FakeDecodeWorker::Start(decode_options);
  const std::string model = WriteModelDir();
  const std::string tandem = std::string(TANDEM_BENCH_BINARY_DIR) + "/cli/tandem";
  absl::StatusOr<Subprocess> router =
      SpawnProcess("router", tandem,
                   {"router", "--model", model, "--port", "0", "--http-port", "0", "--prefill", prefill->address(),
                    "--decode", decode->address(), "--log-level", "warning", "--max-queue", "4096"});
  if (!router.ok() || !AwaitListening(*router, absl::Seconds(30)).ok()) {
    std::fprintf(stderr, "router did not start\n");
    return 1;
  }
  int http_port = 0;
  absl::SimpleAtoi(router->http_address.substr(router->http_address.rfind(':') + 1), &http_port);
  auto stub = v1::Tandem::NewStub(grpc::CreateChannel(router->address, grpc::InsecureChannelCredentials()));
  // Warm-up: connections, thread pools, allocator.
  RunRound(false, router->pid, *stub, http_port, 4, 2, 32);
  RunRound(true, router->pid, *stub, http_port, 4, 2, 32);

  std::printf("router CPU per streamed token: %lld streams x %lld requests x %lld tokens per round\n\n",
              static_cast<long long>(streams), static_cast<long long>(requests), static_cast<long long>(tokens));
  std::printf("| round | API | tokens | router CPU s | us CPU / token | tokens/s | failures |\n");
  std::printf("|---:|---|---:|---:|---:|---:|---:|\n");
  double sum[2] = {0, 0};
  int64_t count[2] = {0, 0};
  for (int r = 0; r < rounds; ++r) {
    for (bool http : {r % 2 == 1, r % 2 == 0}) {
      const Round round = RunRound(http, router->pid, *stub, http_port, static_cast<int>(streams),
                                   static_cast<int>(requests), static_cast<int>(tokens));
      const double us = round.tokens > 0 ? round.cpu_s * 1e6 / static_cast<double>(round.tokens) : 0;
      std::printf("| %d | %s | %lld | %.2f | %.1f | %.0f | %d |\n", r + 1, http ? "HTTP (SSE)" : "gRPC",
                  static_cast<long long>(round.tokens), round.cpu_s, us, round.tokens / round.wall_s,
                  round.failures);
      sum[http] += round.cpu_s;
      count[http] += round.tokens;
    }
  }
  std::printf("\nall rounds: gRPC %.1f us CPU / token, HTTP %.1f us CPU / token\n",
              count[0] ? sum[0] * 1e6 / static_cast<double>(count[0]) : 0.0,
              count[1] ? sum[1] * 1e6 / static_cast<double>(count[1]) : 0.0);
  std::vector<Subprocess> children;
  children.push_back(std::move(*router));
  StopProcesses(children, absl::Seconds(10));
  return 0;
}

}  // namespace
}  // namespace tandem

int main(int argc, char** argv) { return tandem::Main(argc, argv); }
