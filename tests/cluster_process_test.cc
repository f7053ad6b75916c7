// The cluster as real processes on loopback: a router, 2 prefill and 2 decode workers, each its own
// `tandem` process. Proves the KV hand-off is right (outputs equal `tandem run` token for token), that
// cancellation returns every KV block, and that a killed decode worker costs only its own requests.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/subprocess.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "proto/tandem.grpc.pb.h"
#include "proto/worker.grpc.pb.h"
#include "tests/testing/tandem_cli.h"

namespace tandem {
namespace {

using test_support::RunTandem;
using test_support::TandemBinary;
using test_support::TandemRunIds;
using test_support::TestBackendFlags;

struct Result {
  grpc::Status status;
  std::vector<int32_t> tokens;
  v1::Final final;
};

class ClusterProcessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new std::string(::testing::TempDir() + "/cluster_process_model");
    RunTandem({"mkmodel", "--preset", "small", "--out", *model_, "--seed", "7"});
  }

  void SetUp() override {
    std::vector<std::string> worker_flags = {"--model", *model_, "--threads", "1", "--kv-cache-mb", "64",
                                             "--log-level", "warning"};
    for (const std::string& flag : TestBackendFlags()) worker_flags.push_back(flag);
    worker_flags.insert(worker_flags.end(), all_worker_flags_.begin(), all_worker_flags_.end());
    for (int i = 0; i < 4; ++i) {
      const bool prefill = i < 2;
      std::vector<std::string> args = {prefill ? "prefill" : "decode", "--port", "0", "--id",
                                       absl::StrCat(prefill ? "prefill-" : "decode-", i % 2)};
      args.insert(args.end(), worker_flags.begin(), worker_flags.end());
      if (i == 2) args.insert(args.end(), decode0_flags_.begin(), decode0_flags_.end());
      auto child = SpawnProcess(args[4], TandemBinary(), args);
      ASSERT_TRUE(child.ok()) << child.status();
      workers_.push_back(std::move(*child));
    }
    for (Subprocess& w : workers_) ASSERT_TRUE(AwaitListening(w, absl::Seconds(60)).ok()) << w.name;
    auto router = SpawnProcess(
        "router", TandemBinary(),
        {"router", "--model", *model_, "--port", "0", "--prefill",
         absl::StrCat(workers_[0].address, ",", workers_[1].address), "--decode",
         absl::StrCat(workers_[2].address, ",", workers_[3].address), "--policy", "round_robin", "--log-level",
         "warning"});
    ASSERT_TRUE(router.ok());
    router_.push_back(std::move(*router));
    ASSERT_TRUE(AwaitListening(router_[0], absl::Seconds(60)).ok());
    stub_ = v1::Tandem::NewStub(grpc::CreateChannel(router_[0].address, grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    StopProcesses(router_, absl::Seconds(10));
    StopProcesses(workers_, absl::Seconds(10));
  }

  Result Generate(const std::vector<int32_t>& prompt, int max_tokens, grpc::ClientContext* context = nullptr,
                  const std::function<void(int)>& on_tokens = nullptr, float temperature = 0, uint64_t seed = 0) {
    v1::GenerateRequest request;
    request.mutable_prompt_token_ids()->mutable_ids()->Add(prompt.begin(), prompt.end());
    request.set_max_tokens(max_tokens);
    request.set_ignore_eos(true);
    request.mutable_sampling()->set_temperature(temperature);
    request.mutable_sampling()->set_seed(seed);
    grpc::ClientContext own;
    if (context == nullptr) context = &own;
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    auto reader = stub_->Generate(context, request);
    Result result;
    v1::GenerateResponse response;
    while (reader->Read(&response)) {
      result.tokens.insert(result.tokens.end(), response.token_ids().begin(), response.token_ids().end());
      if (response.has_final()) result.final = response.final();
      if (on_tokens) on_tokens(static_cast<int>(result.tokens.size()));
    }
    result.status = reader->Finish();
    return result;
  }

  worker::v1::LoadReport Load(const std::string& address, bool prefill) {
    auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    worker::v1::LoadReport report;
    grpc::Status status =
        prefill ? worker::v1::PrefillWorker::NewStub(channel)->GetLoad(&context, {}, &report)
                : worker::v1::DecodeWorker::NewStub(channel)->GetLoad(&context, {}, &report);
    EXPECT_TRUE(status.ok()) << address << ": " << status.error_message();
    return report;
  }

  // Every live worker's KV pool back to full and no lease held, within `timeout`.
  // `skip`: a worker left out (one whose engine is hung on purpose).
  void ExpectAllKvFree(absl::Duration timeout = absl::Seconds(5), int skip = -1) {
    const absl::Time deadline = absl::Now() + timeout;
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (CheckExited(workers_[i]) || static_cast<int>(i) == skip) continue;
      worker::v1::LoadReport report;
      do {
        report = Load(workers_[i].address, i < 2);
        if (report.kv_blocks_free() == report.kv_blocks_total() && report.leases_held() == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      } while (absl::Now() < deadline);
      EXPECT_EQ(report.kv_blocks_free(), report.kv_blocks_total()) << workers_[i].name;
      EXPECT_EQ(report.leases_held(), 0) << workers_[i].name;
    }
  }

  // Starts `n` greedy streams of `max_tokens` (prompt i: Prompt(prompt_len + i, salt + i)) on their own
  // threads, writing results[i], and returns once every stream has received 2 tokens.
  std::vector<std::thread> StartStreams(int n, int prompt_len, int salt, int max_tokens, std::vector<Result>& results) {
    results.assign(n, {});
    auto streaming = std::make_shared<std::atomic<int>>(0);
    std::vector<std::thread> clients;
    for (int i = 0; i < n; ++i) {
      clients.emplace_back([this, &results, streaming, i, prompt_len, salt, max_tokens] {
        bool counted = false;
        results[i] = Generate(Prompt(prompt_len + i, salt + i), max_tokens, nullptr, [&](int tokens) {
          if (!counted && tokens >= 2) {
            counted = true;
            ++*streaming;
          }
        });
      });
    }
    while (streaming->load() < n) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return clients;
  }

  static std::vector<int32_t> Prompt(int len, int salt) {
    std::vector<int32_t> p;
    for (int i = 0; i < len; ++i) p.push_back((i * 71 + salt * 13 + 5) % 1000);
    return p;
  }

  // SIGKILLs decode-0 under 16 concurrent streams (half greedy, half seeded sampling, staggered so the kill
  // finds each at another point) and checks that every stream completes with `tandem run`'s ids (run with
  // `run_flags` too): greedy ones to the end, sampled ones up to the kill or, with `sampled_exact`, to the
  // end as well. Then new requests all go to decode-1, and every KV block and lease is free.
  void KillDecodeWorkerMidStream(bool sampled_exact, const std::vector<std::string>& run_flags) {
    constexpr int kStreams = 16;
    std::vector<Result> results(kStreams);
    std::vector<std::vector<int32_t>> prompts;
    std::vector<int> max_tokens;
    std::vector<float> temperature;
    for (int i = 0; i < kStreams; ++i) {
      prompts.push_back(Prompt(5 + (i * 29) % 120, 200 + i));
      max_tokens.push_back(120 + (i * 53) % 200);
      temperature.push_back(i % 2 == 0 ? 0.0f : 0.8f);
    }
    std::atomic<int> streaming{0};
    std::atomic<bool> killed{false};
    std::vector<int> before_kill(kStreams, 0);  // tokens each stream had received when the kill was sent
    std::vector<std::thread> clients;
    for (int i = 0; i < kStreams; ++i) {
      clients.emplace_back([&, i] {
        std::this_thread::sleep_for(std::chrono::milliseconds(15 * i));
        bool counted = false;
        results[i] = Generate(prompts[i], max_tokens[i], nullptr, [&](int tokens) {
          if (!killed.load()) before_kill[i] = tokens;
          if (!counted && tokens >= 2) {
            counted = true;
            ++streaming;
          }
        }, temperature[i], 1000 + i);
      });
    }
    while (streaming.load() < kStreams) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // some streams well past their start
    Subprocess& victim = workers_[2];  // decode-0
    killed = true;
    ASSERT_EQ(kill(victim.pid, SIGKILL), 0);
    for (auto& t : clients) t.join();
    int resumed = 0;
    for (int i = 0; i < kStreams; ++i) {
      ASSERT_TRUE(results[i].status.ok()) << "stream " << i << ": " << results[i].status.error_message();
      std::vector<std::string> flags = {"--temperature", absl::StrCat(temperature[i]), "--seed", absl::StrCat(1000 + i)};
      flags.insert(flags.end(), run_flags.begin(), run_flags.end());
      const std::vector<int32_t> expected = TandemRunIds(*model_, prompts[i], max_tokens[i], flags);
      ASSERT_EQ(results[i].tokens.size(), expected.size()) << "stream " << i;
      if (temperature[i] == 0.0f || sampled_exact) {
        EXPECT_EQ(results[i].tokens, expected) << "stream " << i << " (temperature " << temperature[i] << ")";
      } else {
        const auto streamed = static_cast<std::ptrdiff_t>(before_kill[i]);
        EXPECT_EQ(std::vector<int32_t>(results[i].tokens.begin(), results[i].tokens.begin() + streamed),
                  std::vector<int32_t>(expected.begin(), expected.begin() + streamed))
            << "sampled stream " << i << ", the " << streamed << " tokens streamed before the kill";
      }
      EXPECT_EQ(results[i].final.completion_tokens(), max_tokens[i]) << "stream " << i;
      if (results[i].final.decode_worker() == workers_[3].address) ++resumed;
    }
    // Round robin put half the streams on each decode worker: more than half ending on the survivor
    // means streams of the killed worker were resumed there (a few may have finished before the kill).
    EXPECT_GT(resumed, kStreams / 2);

    // Within a few seconds every new request lands on the surviving decode worker and succeeds.
    const absl::Time start = absl::Now();
    for (int i = 0; i < 8; ++i) {
      Result r = Generate(Prompt(10, 100 + i), 8);
      ASSERT_TRUE(r.status.ok()) << r.status.error_message();
      EXPECT_EQ(r.final.decode_worker(), workers_[3].address);
    }
    EXPECT_LT(absl::Now() - start, absl::Seconds(5));
    ExpectAllKvFree();
  }

  static std::string* model_;
  std::vector<std::string> all_worker_flags_;  // extra flags for every worker (set in a derived fixture)
  std::vector<std::string> decode0_flags_;  // extra flags for decode-0 (set in a derived fixture)
  std::vector<Subprocess> workers_, router_;
  std::unique_ptr<v1::Tandem::Stub> stub_;
};
std::string* ClusterProcessTest::model_ = nullptr;

TEST_F(ClusterProcessTest, ThirtyTwoConcurrentRequestsEqualTandemRunAndFreeAllKv) {
  constexpr int kRequests = 32;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<int> max_tokens;
  for (int i = 0; i < kRequests; ++i) {
    prompts.push_back(Prompt(1 + (i * 37) % 180, i));
    max_tokens.push_back(1 + (i * 7) % 40);
  }
  std::vector<Result> results(kRequests);
  std::vector<std::thread> clients;
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] { results[i] = Generate(prompts[i], max_tokens[i]); });
  }
  for (auto& t : clients) t.join();

  std::set<std::string> prefill_used, decode_used;
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(results[i].status.ok()) << i << ": " << results[i].status.error_message();
    const std::vector<int32_t> expected = TandemRunIds(*model_, prompts[i], max_tokens[i]);
    EXPECT_EQ(results[i].tokens, expected) << "request " << i << " (prompt " << prompts[i].size() << " tokens)";
    EXPECT_EQ(results[i].final.completion_tokens(), max_tokens[i]);
    prefill_used.insert(results[i].final.prefill_worker());
    if (max_tokens[i] > 1) decode_used.insert(results[i].final.decode_worker());
  }
  EXPECT_EQ(prefill_used.size(), 2u);
  EXPECT_EQ(decode_used.size(), 2u);
  ExpectAllKvFree();
}

TEST_F(ClusterProcessTest, ClientCancelMidStreamReturnsKvBlocksOnBothWorkers) {
  std::vector<std::thread> clients;
  std::vector<grpc::StatusCode> codes(4);
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&, i] {
      grpc::ClientContext context;
      Result r = Generate(Prompt(100, i), 1500, &context, [&](int tokens) {
        if (tokens >= 5) context.TryCancel();
      });
      codes[i] = r.status.error_code();
    });
  }
  for (auto& t : clients) t.join();
  for (auto code : codes) EXPECT_EQ(code, grpc::StatusCode::CANCELLED);
  ExpectAllKvFree(absl::Seconds(3));
}

// RELIABILITY F3 / issue 11 item 10: the decode worker of 16 concurrent streams (half greedy, half
// seeded sampling) is SIGKILLed mid-stream; the router resumes each of its streams on the other pair
// (a prefill of prompt + streamed tokens, a decode continuing the request's random stream). Every
// stream completes, with no token lost or repeated: what was streamed before the kill is exactly
// `tandem run`'s, and greedy streams are exactly `tandem run`'s to the end. A resumed *sampled* stream
// is only required to continue with the right length here: the re-prefill computes the streamed tokens'
// KV with the prompt GEMM instead of the decode's row kernel, so its logits differ in the last bits, and
// a draw that falls that close to a probability boundary picks the neighbouring token (seen once in CI
// out of ~16 resumed sampled streams). With --batch-invariant it must be exact (the next test).
TEST_F(ClusterProcessTest, KilledDecodeWorkerMidStreamLosesNoStream) {
  KillDecodeWorkerMidStream(/*sampled_exact=*/false, {});
}

// The same with every worker (and `tandem run`) on --batch-invariant: prompts are summed row by row as
// decode steps sum them, so the re-prefill of a resumed stream reproduces its KV and logits bit for bit,
// and sampled streams too continue exactly as an undisturbed run.
class BatchInvariantClusterTest : public ClusterProcessTest {
 protected:
  BatchInvariantClusterTest() { all_worker_flags_ = {"--batch-invariant"}; }
  void SetUp() override {
    for (const std::string& flag : TestBackendFlags()) {
      if (flag == "cuda") GTEST_SKIP() << "--batch-invariant is CPU-only";
    }
    ClusterProcessTest::SetUp();
  }
};

TEST_F(BatchInvariantClusterTest, KilledDecodeWorkerMidStreamResumesSampledStreamsExactly) {
  KillDecodeWorkerMidStream(/*sampled_exact=*/true, {"--batch-invariant"});
}

// RELIABILITY F4: prefill-0 is SIGKILLed while 16 requests with long prompts arrive (staggered, so the
// kill finds some queued or prefilling there, some with their KV being pulled, some already decoding).
// Every request completes with `tandem run`'s ids (re-dispatched to prefill-1, or resumed on a new pair
// when its first token had already streamed), new requests all go to prefill-1, and the decode workers'
// KV blocks all come back within 10 s.
TEST_F(ClusterProcessTest, KilledPrefillWorkerMidPrefillLosesNoRequest) {
  constexpr int kRequests = 16;
  std::vector<Result> results(kRequests);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < kRequests; ++i) prompts.push_back(Prompt(300 + 13 * i, 700 + i));
  std::atomic<int> started{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] {
      std::this_thread::sleep_for(std::chrono::milliseconds(10 * i));
      ++started;
      results[i] = Generate(prompts[i], 48);
    });
  }
  while (started.load() < kRequests / 2) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_EQ(kill(workers_[0].pid, SIGKILL), 0);  // prefill-0
  for (auto& t : clients) t.join();
  int on_survivor = 0;
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(results[i].status.ok()) << "request " << i << ": " << results[i].status.error_message();
    EXPECT_EQ(results[i].tokens, TandemRunIds(*model_, prompts[i], 48)) << "request " << i;
    if (results[i].final.prefill_worker() == workers_[1].address) ++on_survivor;
  }
  // Round robin sends every other request to prefill-0: more than half ending with prefill-1 means
  // some were re-dispatched there.
  EXPECT_GT(on_survivor, kRequests / 2);
  for (int i = 0; i < 4; ++i) {
    Result r = Generate(Prompt(12, 900 + i), 4);
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(r.final.prefill_worker(), workers_[1].address);
  }
  ExpectAllKvFree(absl::Seconds(10));
}

// RELIABILITY F8 / issue 11 item 6: a decode worker frozen with SIGSTOP (alive, silent) mid-stream. Its
// health checks time out, the router takes it out of the pool and abandons its calls, and every stream
// it held is resumed on the other pair: all complete with tandem run's ids instead of hanging.
TEST_F(ClusterProcessTest, FrozenDecodeWorkerMidStreamLosesNoStream) {
  constexpr int kStreams = 8;
  std::vector<Result> results;
  std::vector<std::thread> clients = StartStreams(kStreams, 10, 300, 400, results);
  Subprocess& victim = workers_[2];  // decode-0
  ASSERT_EQ(kill(victim.pid, SIGSTOP), 0);
  const absl::Time stopped = absl::Now();
  for (auto& t : clients) t.join();
  const absl::Duration took = absl::Now() - stopped;
  kill(victim.pid, SIGCONT);
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(results[i].status.ok()) << "stream " << i << ": " << results[i].status.error_message();
    const std::vector<int32_t> expected = TandemRunIds(*model_, Prompt(10 + i, 300 + i), 400);
    EXPECT_EQ(results[i].tokens, expected) << "stream " << i;
    EXPECT_EQ(results[i].final.decode_worker(), workers_[3].address) << "stream " << i;
  }
  // Three missed checks (1 s apart, 0.8 s timeout each), then a resume: well under the 120 s deadline.
  EXPECT_LT(took, absl::Seconds(30));
  ExpectAllKvFree(absl::Seconds(10));
}

// RELIABILITY.md F10: the router is SIGKILLed with 8 streams in flight. The clients see those streams fail
// (UNAVAILABLE), the workers notice their calls are gone and free every KV block and lease, and a new
// router on the same port, knowing nothing but the worker addresses, serves exact outputs again within
// 20 s of its start (it rebuilds the pool from health checks and load reports).
TEST_F(ClusterProcessTest, RouterKilledAndRestartedRecoversWithinTwentySeconds) {
  constexpr int kStreams = 8;
  std::vector<Result> results;
  std::vector<std::thread> clients = StartStreams(kStreams, 12, 700, 400, results);
  const std::string address = router_[0].address;
  ASSERT_EQ(kill(router_[0].pid, SIGKILL), 0);
  for (auto& t : clients) t.join();
  for (int i = 0; i < kStreams; ++i) {
    EXPECT_EQ(results[i].status.error_code(), grpc::StatusCode::UNAVAILABLE) << "stream " << i;
    EXPECT_LT(results[i].tokens.size(), 400u) << "stream " << i;
  }
  StopProcesses(router_, absl::Seconds(5));  // reaps the killed one
  router_.clear();
  // Nothing of the dead router's calls stays on the workers.
  ExpectAllKvFree(absl::Seconds(10));

  const absl::Time restart = absl::Now();
  auto router = SpawnProcess(
      "router", TandemBinary(),
      {"router", "--model", *model_, "--port", address.substr(address.rfind(':') + 1), "--prefill",
       absl::StrCat(workers_[0].address, ",", workers_[1].address), "--decode",
       absl::StrCat(workers_[2].address, ",", workers_[3].address), "--policy", "round_robin", "--log-level",
       "warning"});
  ASSERT_TRUE(router.ok()) << router.status();
  router_.push_back(std::move(*router));
  ASSERT_TRUE(AwaitListening(router_[0], absl::Seconds(20)).ok());
  ASSERT_EQ(router_[0].address, address);
  stub_ = v1::Tandem::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  Result first;
  while (absl::Now() - restart < absl::Seconds(20)) {
    first = Generate(Prompt(9, 1), 16);
    if (first.status.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const absl::Duration recovered = absl::Now() - restart;
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  EXPECT_LT(recovered, absl::Seconds(20));
  std::printf("router restart to first good answer: %s\n", absl::FormatDuration(recovered).c_str());
  EXPECT_EQ(first.tokens, TandemRunIds(*model_, Prompt(9, 1), 16));
  // Both pairs back in the pool.
  for (int i = 0; i < 4; ++i) {
    Result r = Generate(Prompt(20 + i, 40 + i), 8);
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(r.tokens, TandemRunIds(*model_, Prompt(20 + i, 40 + i), 8));
  }
  ExpectAllKvFree();
}

// RELIABILITY.md F8: decode-0's engine thread hangs after 30 steps (--fault-hang-after-steps, as a hung
// kernel would) while its process and health service keep answering. Its progress watchdog
// (--stall-timeout-ms 1500) turns it NOT_SERVING and its load reports say "engine stalled"; the router
// abandons its calls and resumes their streams on decode-1: every stream ends with `tandem run`'s ids.
class HungEngineTest : public ClusterProcessTest {
 protected:
  HungEngineTest() { decode0_flags_ = {"--fault-hang-after-steps", "30", "--stall-timeout-ms", "1500"}; }
};

TEST_F(HungEngineTest, HungDecodeEngineMidStreamLosesNoStream) {
  constexpr int kStreams = 8;
  std::vector<Result> results(kStreams);
  std::vector<std::thread> clients;
  const absl::Time start = absl::Now();
  for (int i = 0; i < kStreams; ++i) {
    clients.emplace_back([&, i] { results[i] = Generate(Prompt(10 + i, 500 + i), 200); });
  }
  for (auto& t : clients) t.join();
  const absl::Duration took = absl::Now() - start;
  // Round robin placed half of them on decode-0 as they arrived together; every one ends on decode-1.
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(results[i].status.ok()) << "stream " << i << ": " << results[i].status.error_message();
    EXPECT_EQ(results[i].tokens, TandemRunIds(*model_, Prompt(10 + i, 500 + i), 200)) << "stream " << i;
    EXPECT_EQ(results[i].final.decode_worker(), workers_[3].address) << "stream " << i;
  }
  EXPECT_LT(took, absl::Seconds(60));
  EXPECT_FALSE(CheckExited(workers_[2]));  // still alive: hung, not dead
  ExpectAllKvFree(absl::Seconds(10), /*skip=*/2);
}

// The deployment shape (deploy/compose.yaml, deploy/k8s): workers listening on 0.0.0.0, the router
// finding them through dns:NAME:PORT entries, the decode worker allowing KV sources through one, and
// `tandem health` as the container health check. A prefill worker on 0.0.0.0 names itself
// "0.0.0.0:P" in its KV handles; the router hands decode the address it reached the worker at, which
// the decode worker's dns: allow-list admits.
int ExitCode(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string PortOf(const std::string& address) { return address.substr(address.rfind(':') + 1); }

TEST(DeployShapeTest, WildcardWorkersFoundThroughDnsEntriesAndHealthChecks) {
  const std::string model = ::testing::TempDir() + "/deploy_shape_model";
  RunTandem({"mkmodel", "--preset", "tiny", "--out", model, "--seed", "3"});
  // The cluster secret, as a Kubernetes Secret or Compose secret would mount it.
  const std::string secret_file = ::testing::TempDir() + "/deploy_shape_secret";
  std::ofstream(secret_file) << "correct-horse-battery-staple-42\n";
  std::vector<std::string> common = {"--model", model, "--host", "0.0.0.0", "--port", "0", "--threads", "1",
                                     "--kv-cache-mb", "16", "--log-level", "warning",
                                     "--cluster-secret-file", secret_file};
  for (const std::string& flag : TestBackendFlags()) common.push_back(flag);
  std::vector<Subprocess> workers, router;
  std::vector<std::string> prefill_args = {"prefill", "--id", "prefill-0"};
  prefill_args.insert(prefill_args.end(), common.begin(), common.end());
  auto prefill = SpawnProcess("prefill-0", TandemBinary(), prefill_args);
  ASSERT_TRUE(prefill.ok()) << prefill.status();
  workers.push_back(std::move(*prefill));
  ASSERT_TRUE(AwaitListening(workers[0], absl::Seconds(60)).ok());
  const std::string prefill_port = PortOf(workers[0].address);
  std::vector<std::string> decode_args = {"decode", "--id", "decode-0", "--kv-sources",
                                          absl::StrCat("dns:127.0.0.1:", prefill_port)};
  decode_args.insert(decode_args.end(), common.begin(), common.end());
  auto decode = SpawnProcess("decode-0", TandemBinary(), decode_args);
  ASSERT_TRUE(decode.ok()) << decode.status();
  workers.push_back(std::move(*decode));
  ASSERT_TRUE(AwaitListening(workers[1], absl::Seconds(60)).ok());
  auto started = SpawnProcess("router", TandemBinary(),
                              {"router", "--model", model, "--port", "0", "--prefill",
                               absl::StrCat("dns:127.0.0.1:", prefill_port), "--decode",
                               absl::StrCat("dns:localhost:", PortOf(workers[1].address)),
                               "--resolve-interval-ms", "500", "--log-level", "warning",
                               "--cluster-secret-file", secret_file});
  ASSERT_TRUE(started.ok()) << started.status();
  router.push_back(std::move(*started));
  ASSERT_TRUE(AwaitListening(router[0], absl::Seconds(60)).ok());

  const std::string health = absl::StrCat(TandemBinary(), " health --quiet --timeout-ms 2000 --addr ");
  // Workers are SERVING at once; the router once its pool has a healthy prefill and decode worker.
  EXPECT_EQ(ExitCode(absl::StrCat(health, "127.0.0.1:", prefill_port)), 0);
  bool router_serving = false;
  for (int i = 0; i < 50 && !router_serving; ++i) {
    router_serving = ExitCode(absl::StrCat(health, router[0].address)) == 0;
    if (!router_serving) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(router_serving);

  auto stub = v1::Tandem::NewStub(grpc::CreateChannel(router[0].address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::GenerateRequest request;
  for (int32_t id : {1, 2, 3, 4, 5}) request.mutable_prompt_token_ids()->add_ids(id);
  request.set_max_tokens(6);
  request.set_ignore_eos(true);
  auto reader = stub->Generate(&context, request);
  v1::GenerateResponse response;
  int tokens = 0;
  std::string prefill_worker;
  while (reader->Read(&response)) {
    tokens += response.token_ids_size();
    if (response.has_final()) prefill_worker = response.final().prefill_worker();
  }
  const grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(tokens, 6);
  EXPECT_EQ(prefill_worker, absl::StrCat("127.0.0.1:", prefill_port));

  // The workers' API refuses anyone without the secret (health checks stay open, as checked above).
  const auto load_with = [&](const std::string& secret) {
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", prefill_port), grpc::InsecureChannelCredentials());
    grpc::ClientContext context;
    if (!secret.empty()) context.AddMetadata("x-tandem-cluster-secret", secret);
    worker::v1::LoadReport report;
    return worker::v1::PrefillWorker::NewStub(channel)->GetLoad(&context, {}, &report).error_code();
  };
  EXPECT_EQ(load_with(""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(load_with("correct-horse-battery-staple-43"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(load_with("correct-horse-battery-staple-42"), grpc::StatusCode::OK);
  {
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", prefill_port), grpc::InsecureChannelCredentials());
    grpc::ClientContext context;
    worker::v1::PullKvRequest pull;
    pull.set_lease_id("lease-00000000000000000000000000000000");
    auto stream = worker::v1::PrefillWorker::NewStub(channel)->PullKv(&context, pull);
    worker::v1::KvChunk chunk;
    while (stream->Read(&chunk)) {
    }
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }

  // Nothing listens: 1. Bad flags: 2.
  StopProcesses(workers, absl::Seconds(10));
  EXPECT_EQ(ExitCode(absl::StrCat(health, "127.0.0.1:", prefill_port, " 2>/dev/null")), 1);
  EXPECT_EQ(ExitCode(absl::StrCat(TandemBinary(), " health 2>/dev/null")), 2);
  StopProcesses(router, absl::Seconds(10));
}

// RELIABILITY.md H3: SIGTERM on a decode worker with 8 streams in flight. It answers health checks
// NOT_SERVING at once, the router places new requests on the other decode worker from its next check,
// the worker's own streams finish on it (drained in place, not migrated) with `tandem run`'s ids, and
// the process exits 0 well within --shutdown-delay-ms + --shutdown-grace-s (1.5 + 10 s).
TEST_F(ClusterProcessTest, SigtermDrainsADecodeWorkerWithoutLosingAStream) {
  constexpr int kStreams = 8;
  std::vector<Result> results;
  std::vector<std::thread> clients = StartStreams(kStreams, 14, 900, 400, results);
  Subprocess& victim = workers_[2];  // decode-0
  const std::string health = TandemBinary() + " health --quiet --timeout-ms 500 --addr " + victim.address;
  ASSERT_EQ(ExitCode(health), 0);
  ASSERT_EQ(kill(victim.pid, SIGTERM), 0);
  const absl::Time term = absl::Now();
  bool not_serving = false;
  while (!not_serving && absl::Now() - term < absl::Seconds(1)) {
    not_serving = ExitCode(health) != 0;
    if (!not_serving) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(not_serving) << "still SERVING 1 s after SIGTERM";

  // From the router's next health check (1 s apart) new requests avoid it.
  absl::SleepFor(term + absl::Milliseconds(1200) - absl::Now());
  for (int i = 0; i < 4; ++i) {
    Result r = Generate(Prompt(30 + i, 60 + i), 8);
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(r.final.decode_worker(), workers_[3].address) << "new request " << i;
    EXPECT_EQ(r.tokens, TandemRunIds(*model_, Prompt(30 + i, 60 + i), 8));
  }
  for (auto& t : clients) t.join();
  int drained_in_place = 0;
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(results[i].status.ok()) << "stream " << i << ": " << results[i].status.error_message();
    EXPECT_EQ(results[i].tokens, TandemRunIds(*model_, Prompt(14 + i, 900 + i), 400)) << "stream " << i;
    drained_in_place += results[i].final.decode_worker() == victim.address ? 1 : 0;
  }
  EXPECT_GT(drained_in_place, 0);  // round robin gave it half; they ended there
  const absl::Time deadline = term + absl::Seconds(12);
  while (!CheckExited(victim) && absl::Now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(victim.exited) << "decode-0 still running 12 s after SIGTERM";
  EXPECT_TRUE(WIFEXITED(victim.wait_status) && WEXITSTATUS(victim.wait_status) == 0) << victim.wait_status;
  std::printf("SIGTERM to exit: %s; %d of %d streams drained in place\n",
              absl::FormatDuration(absl::Now() - term).c_str(), drained_in_place, kStreams);
  ExpectAllKvFree();
}

}  // namespace
}  // namespace tandem
