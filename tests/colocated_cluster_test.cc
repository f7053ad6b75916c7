// Colocated workers as real processes behind a router (`tandem colocated`, `tandem router --colocated`,
// `tandem serve`): outputs equal `tandem run` token for token with prompts chunked across steps,
// cancellation frees every KV block, a killed worker's streams resume on the other one, and a router
// mixing a prefill/decode pair with a colocated worker places on both.
#include <signal.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
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

using test_support::AwaitClusterUp;
using test_support::RunTandem;
using test_support::TandemBinary;
using test_support::TandemRunIds;
using test_support::TestBackendFlags;

std::vector<int32_t> Prompt(int len, int salt) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back((i * 71 + salt * 13 + 5) % 1000);
  return p;
}

struct Result {
  grpc::Status status;
  std::vector<int32_t> tokens;
  v1::Final final;
};

class ColocatedClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new std::string(::testing::TempDir() + "/colocated_cluster_model");
    RunTandem({"mkmodel", "--preset", "small", "--out", *model_, "--seed", "7"});
  }

  std::vector<std::string> WorkerFlags() const {
    std::vector<std::string> flags = {"--model", *model_, "--threads", "1", "--kv-cache-mb", "64",
                                      "--log-level", "warning"};
    for (const std::string& flag : TestBackendFlags()) flags.push_back(flag);
    return flags;
  }

  // `colocated` colocated workers (step budget 32: prompts longer than that are chunked) and, with
  // `pair`, one prefill and one decode worker; then the router over all of them.
  void StartCluster(int colocated, bool pair, const std::string& policy = "round_robin") {
    for (int i = 0; i < colocated; ++i) {
      std::vector<std::string> args = {"colocated", "--port", "0", "--id", absl::StrCat("colocated-", i),
                                       "--step-token-budget", "32"};
      for (const std::string& f : WorkerFlags()) args.push_back(f);
      auto child = SpawnProcess(args[4], TandemBinary(), args);
      ASSERT_TRUE(child.ok()) << child.status();
      colocated_.push_back(std::move(*child));
    }
    if (pair) {
      for (const char* role : {"prefill", "decode"}) {
        std::vector<std::string> args = {role, "--port", "0", "--id", role};
        for (const std::string& f : WorkerFlags()) args.push_back(f);
        auto child = SpawnProcess(role, TandemBinary(), args);
        ASSERT_TRUE(child.ok()) << child.status();
        pair_.push_back(std::move(*child));
      }
    }
    std::vector<std::string> addresses;
    for (Subprocess& w : colocated_) {
      ASSERT_TRUE(AwaitListening(w, absl::Seconds(60)).ok()) << w.name;
      addresses.push_back(w.address);
    }
    for (Subprocess& w : pair_) ASSERT_TRUE(AwaitListening(w, absl::Seconds(60)).ok()) << w.name;
    std::vector<std::string> args = {"router", "--model", *model_, "--port", "0", "--policy", policy,
                                     "--log-level", "warning"};
    if (colocated > 0) args.insert(args.end(), {"--colocated", absl::StrJoin(addresses, ",")});
    if (pair) args.insert(args.end(), {"--prefill", pair_[0].address, "--decode", pair_[1].address});
    auto router = SpawnProcess("router", TandemBinary(), args);
    ASSERT_TRUE(router.ok());
    router_.push_back(std::move(*router));
    ASSERT_TRUE(AwaitListening(router_[0], absl::Seconds(60)).ok());
    Connect(router_[0].address);
  }

  void Connect(const std::string& address) {
    stub_ = v1::Tandem::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    StopProcesses(router_, absl::Seconds(10));
    StopProcesses(colocated_, absl::Seconds(10));
    StopProcesses(pair_, absl::Seconds(10));
  }

  Result Generate(const std::vector<int32_t>& prompt, int max_tokens, grpc::ClientContext* context = nullptr,
                  const std::function<void(int)>& on_tokens = nullptr) {
    v1::GenerateRequest request;
    request.mutable_prompt_token_ids()->mutable_ids()->Add(prompt.begin(), prompt.end());
    request.set_max_tokens(max_tokens);
    request.set_ignore_eos(true);
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

  std::vector<int32_t> Expected(const std::vector<int32_t>& prompt, int max_tokens) {
    return TandemRunIds(*model_, prompt, max_tokens);
  }

  // Every live colocated worker's KV pool back to full within `timeout`.
  void ExpectAllKvFree(absl::Duration timeout = absl::Seconds(5)) {
    const absl::Time deadline = absl::Now() + timeout;
    for (Subprocess& w : colocated_) {
      if (CheckExited(w)) continue;
      auto stub = worker::v1::ColocatedWorker::NewStub(grpc::CreateChannel(w.address, grpc::InsecureChannelCredentials()));
      worker::v1::LoadReport report;
      do {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        ASSERT_TRUE(stub->GetLoad(&context, {}, &report).ok()) << w.name;
        if (report.kv_blocks_free() == report.kv_blocks_total()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      } while (absl::Now() < deadline);
      EXPECT_EQ(report.role(), "colocated");
      EXPECT_EQ(report.kv_blocks_free(), report.kv_blocks_total()) << w.name;
    }
  }

  static std::string* model_;
  std::vector<Subprocess> colocated_, pair_, router_;
  std::unique_ptr<v1::Tandem::Stub> stub_;
};
std::string* ColocatedClusterTest::model_ = nullptr;

TEST_F(ColocatedClusterTest, ConcurrentRequestsEqualTandemRunAndFreeAllKv) {
  StartCluster(2, /*pair=*/false);
  constexpr int kRequests = 24;
  std::vector<Result> results(kRequests);
  std::vector<std::thread> clients;
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] { results[i] = Generate(Prompt(1 + (i * 37) % 180, i), 1 + (i * 7) % 40); });
  }
  for (auto& t : clients) t.join();
  std::set<std::string> used;
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(results[i].status.ok()) << i << ": " << results[i].status.error_message();
    EXPECT_EQ(results[i].tokens, Expected(Prompt(1 + (i * 37) % 180, i), 1 + (i * 7) % 40)) << "request " << i;
    EXPECT_EQ(results[i].final.prefill_worker(), results[i].final.decode_worker());
    EXPECT_EQ(results[i].final.timing().kv_transfer_ms(), 0.0);
    used.insert(results[i].final.prefill_worker());
  }
  EXPECT_EQ(used.size(), 2u);
  ExpectAllKvFree();
}

TEST_F(ColocatedClusterTest, ClientCancelMidStreamFreesEveryBlock) {
  StartCluster(1, /*pair=*/false);
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

TEST_F(ColocatedClusterTest, BadInputIsInvalidArgumentAndTooLongIsNamed) {
  StartCluster(1, /*pair=*/false);
  Result r = Generate({}, 4);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << r.status.error_message();
  r = Generate(Prompt(10, 1), 1000000);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << r.status.error_message();
  EXPECT_TRUE(absl::StrContains(r.status.error_message(), "max_tokens")) << r.status.error_message();
}

// A colocated worker SIGKILLed mid-stream: its greedy streams resume on the other colocated worker
// (prompt + streamed tokens prefilled there) and end exactly as `tandem run` does.
TEST_F(ColocatedClusterTest, KilledColocatedWorkerMidStreamLosesNoStream) {
  StartCluster(2, /*pair=*/false);
  constexpr int kStreams = 8;
  std::vector<Result> results(kStreams);
  std::atomic<int> streaming{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kStreams; ++i) {
    clients.emplace_back([&, i] {
      bool counted = false;
      results[i] = Generate(Prompt(10 + 7 * i, 400 + i), 300, nullptr, [&](int tokens) {
        if (!counted && tokens >= 2) {
          counted = true;
          ++streaming;
        }
      });
    });
  }
  while (streaming.load() < kStreams) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(kill(colocated_[0].pid, SIGKILL), 0);
  for (auto& t : clients) t.join();
  int on_survivor = 0;
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(results[i].status.ok()) << "stream " << i << ": " << results[i].status.error_message();
    EXPECT_EQ(results[i].tokens, Expected(Prompt(10 + 7 * i, 400 + i), 300)) << "stream " << i;
    on_survivor += results[i].final.decode_worker() == colocated_[1].address ? 1 : 0;
  }
  EXPECT_EQ(on_survivor, kStreams);  // every stream ended there, the killed worker's ones resumed
  ExpectAllKvFree();
}

// least_loaded over one pair and one colocated worker: a burst lands on both kinds, and both give
// `tandem run`'s tokens.
TEST_F(ColocatedClusterTest, MixedClusterPlacesOnPairsAndColocatedWorkers) {
  StartCluster(1, /*pair=*/true, "round_robin");
  constexpr int kRequests = 8;
  std::vector<Result> results(kRequests);
  std::vector<std::thread> clients;
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] { results[i] = Generate(Prompt(20 + 9 * i, 50 + i), 12); });
  }
  for (auto& t : clients) t.join();
  int colocated = 0, paired = 0;
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(results[i].status.ok()) << i << ": " << results[i].status.error_message();
    EXPECT_EQ(results[i].tokens, Expected(Prompt(20 + 9 * i, 50 + i), 12)) << "request " << i;
    if (results[i].final.prefill_worker() == colocated_[0].address) {
      ++colocated;
    } else {
      EXPECT_EQ(results[i].final.prefill_worker(), pair_[0].address);
      EXPECT_EQ(results[i].final.decode_worker(), pair_[1].address);
      ++paired;
    }
  }
  EXPECT_EQ(colocated, kRequests / 2);  // round robin alternates the pair and the colocated worker
  EXPECT_EQ(paired, kRequests / 2);
}

// `tandem serve`: the one-command server answers with `tandem run`'s tokens.
TEST_F(ColocatedClusterTest, TandemServeAnswersLikeTandemRun) {
  std::vector<std::string> args = {"serve", "--model", *model_, "--port", "0", "--http-port", "-1",
                                   "--threads", "1", "--log-level", "warning"};
  for (const std::string& flag : TestBackendFlags()) args.push_back(flag);
  auto serve = SpawnProcess("tandem-serve", TandemBinary(), args);
  ASSERT_TRUE(serve.ok()) << serve.status();
  router_.push_back(std::move(*serve));
  const test_support::ClusterUp up = AwaitClusterUp(router_[0], /*want_http=*/false);
  const std::string& router = up.router;
  EXPECT_TRUE(absl::StrContains(up.line, "0 prefill, 0 decode, 1 colocated")) << up.line;
  ASSERT_FALSE(router.empty()) << "tandem serve did not come up";
  Connect(router);
  Result r = Generate(Prompt(70, 9), 20);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.tokens, Expected(Prompt(70, 9), 20));
}

}  // namespace
}  // namespace tandem
