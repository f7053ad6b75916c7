// The router's metrics against in-process fake workers (router/testing/fake_workers.h): every way a
// Generate call ends moves exactly one outcome counter, rejections carry their reason, SLO misses their
// stage, and the per-worker gauges follow the registry.
#include "router/router_metrics.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/metrics_http.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "model/config.h"
#include "model/random_model.h"
#include "proto/tandem.grpc.pb.h"
#include "router/router_server.h"
#include "router/testing/fake_workers.h"
#include "tokenizer/make_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace tandem::router {
namespace {

using ::tandem::router::testing::FakeDecodeOptions;
using ::tandem::router::testing::FakeDecodeWorker;
using ::tandem::router::testing::FakePrefillOptions;
using ::tandem::router::testing::FakePrefillWorker;
using ::tandem::router::testing::WaitFor;

// config.json of the "tiny" preset and a byte-level tokenizer.json (the router reads no weights).
std::string MakeModelDir() {
  static const std::string dir =
      testing::WriteTinyRouterModel(absl::StrCat(::testing::TempDir(), "/router_metrics_test_", getpid(), "/tiny"));
  return dir;
}

class RouterMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prefill_ = FakePrefillWorker::Start();
    decode_ = FakeDecodeWorker::Start();
    ASSERT_NE(prefill_, nullptr);
    ASSERT_NE(decode_, nullptr);
  }
  void TearDown() override {
    if (router_) router_->Shutdown(absl::Seconds(1));
  }

  void StartRouter(int max_queue = 256, int metrics_port = -1) {
    RouterOptions options;
    options.model_dir = MakeModelDir();
    options.prefill_addresses = {prefill_->address()};
    options.decode_addresses = {decode_->address()};
    options.max_queue = max_queue;
    options.metrics_port = metrics_port;
    absl::StatusOr<std::unique_ptr<RouterServer>> router = RouterServer::Start(options);
    ASSERT_TRUE(router.ok()) << router.status();
    router_ = *std::move(router);
    stub_ = v1::Tandem::NewStub(grpc::CreateChannel(router_->address(), grpc::InsecureChannelCredentials()));
  }

  grpc::StatusCode Generate(const std::string& prompt, int max_tokens, double ttft_slo_ms = 0,
                            grpc::ClientContext* context = nullptr) {
    grpc::ClientContext local;
    if (context == nullptr) {
      local.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
      context = &local;
    }
    v1::GenerateRequest request;
    request.set_prompt(prompt);
    request.set_max_tokens(max_tokens);
    if (ttft_slo_ms > 0) request.mutable_slo()->set_ttft_ms(ttft_slo_ms);
    auto reader = stub_->Generate(context, request);
    v1::GenerateResponse response;
    while (reader->Read(&response)) {
    }
    return reader->Finish().error_code();
  }

  std::map<std::string, double> Samples() const {
    absl::StatusOr<std::map<std::string, double>> samples = ParseMetricsText(router_->metrics().Render());
    EXPECT_TRUE(samples.ok()) << samples.status();
    return samples.ok() ? *samples : std::map<std::string, double>{};
  }
  double Value(const std::string& series) const {
    const std::map<std::string, double> samples = Samples();
    auto it = samples.find(series);
    EXPECT_NE(it, samples.end()) << "no series " << series;
    return it == samples.end() ? -1 : it->second;
  }

  std::unique_ptr<FakePrefillWorker> prefill_;
  std::unique_ptr<FakeDecodeWorker> decode_;
  std::unique_ptr<RouterServer> router_;
  std::unique_ptr<v1::Tandem::Stub> stub_;
};

TEST_F(RouterMetricsTest, EachEndingMovesExactlyItsOutcome) {
  StartRouter();
  // Every known series exists from the start, at 0.
  for (const char* outcome : {"ok", "error", "cancelled", "rejected"}) {
    EXPECT_EQ(Value(absl::StrCat("tandem_requests_total{outcome=\"", outcome, "\"}")), 0) << outcome;
  }
  EXPECT_EQ(Value("tandem_ttft_seconds_count"), 0);

  ASSERT_EQ(Generate("Hello", 4), grpc::StatusCode::OK);
  EXPECT_EQ(Value("tandem_requests_total{outcome=\"ok\"}"), 1);
  EXPECT_EQ(Value("tandem_ttft_seconds_count"), 1);
  EXPECT_EQ(Value("tandem_tpot_seconds_count"), 1);
  EXPECT_EQ(Value("tandem_e2e_seconds_count"), 1);
  EXPECT_EQ(Value("tandem_slo_attained_total"), 1);

  // A single token has no TPOT.
  ASSERT_EQ(Generate("Hello", 1), grpc::StatusCode::OK);
  EXPECT_EQ(Value("tandem_e2e_seconds_count"), 2);
  EXPECT_EQ(Value("tandem_tpot_seconds_count"), 1);

  // A missed TTFT SLO is counted under the stage that cost the most (decode compute: 5 ms in the fake).
  ASSERT_EQ(Generate("Hello", 4, /*ttft_slo_ms=*/1e-6), grpc::StatusCode::OK);
  EXPECT_EQ(Value("tandem_slo_missed_total{stage=\"decode_compute\"}"), 1);
  EXPECT_EQ(Value("tandem_slo_attained_total"), 2);

  ASSERT_EQ(Generate("", 4), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Value("tandem_requests_total{outcome=\"rejected\"}"), 1);
  EXPECT_EQ(Value("tandem_rejections_total{reason=\"invalid_argument\"}"), 1);

  // Client deadline while decode hangs: cancelled.
  FakeDecodeOptions hang;
  hang.mode = FakeDecodeOptions::Mode::kHang;
  decode_->set_options(hang);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(200)));
  ASSERT_EQ(Generate("Hello", 20, 0, &context), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(WaitFor([&] { return Value("tandem_requests_total{outcome=\"cancelled\"}") == 1; }));

  // A worker error after placement: error.
  FakePrefillOptions failing;
  failing.fail = absl::InternalError("fake prefill broke");
  prefill_->set_options(failing);
  ASSERT_EQ(Generate("Hello", 4), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(Value("tandem_requests_total{outcome=\"error\"}"), 1);

  EXPECT_EQ(Value("tandem_requests_total{outcome=\"ok\"}"), 3);
  EXPECT_EQ(Value("tandem_ttft_seconds_count"), 3);
  EXPECT_TRUE(WaitFor([&] { return Value("tandem_router_inflight_requests") == 0; }));
}

TEST_F(RouterMetricsTest, NoHealthyWorkerIsARejectionAndTheWorkerGaugesFollow) {
  StartRouter();
  const std::string labels = absl::StrCat("{role=\"decode\",worker=\"", decode_->address(), "\"}");
  EXPECT_EQ(Value("tandem_worker_healthy" + labels), 1);
  EXPECT_EQ(Value("tandem_worker_healthy" + absl::StrCat("{role=\"prefill\",worker=\"", prefill_->address(), "\"}")),
            1);
  decode_->Shutdown();
  ASSERT_TRUE(WaitFor([&] { return !router_->registry().healthy(WorkerRole::kDecode, 0); }));
  EXPECT_EQ(Value("tandem_worker_healthy" + labels), 0);
  ASSERT_EQ(Generate("Hello", 4), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Value("tandem_rejections_total{reason=\"no_healthy_worker\"}"), 1);
  EXPECT_EQ(Value("tandem_requests_total{outcome=\"rejected\"}"), 1);
  EXPECT_EQ(Value("tandem_requests_total{outcome=\"error\"}"), 0);
}

TEST_F(RouterMetricsTest, QueueFullIsARejection) {
  StartRouter(/*max_queue=*/1);
  FakePrefillOptions slow;
  slow.delay = absl::Milliseconds(500);
  prefill_->set_options(slow);
  std::thread first([&] { EXPECT_EQ(Generate("Hello", 2), grpc::StatusCode::OK); });
  ASSERT_TRUE(WaitFor([&] { return prefill_->prefill_requests().size() == 1; }));
  EXPECT_EQ(Value("tandem_router_inflight_requests"), 1);
  EXPECT_EQ(Generate("Hello", 2), grpc::StatusCode::RESOURCE_EXHAUSTED);
  first.join();
  EXPECT_EQ(Value("tandem_rejections_total{reason=\"queue_full\"}"), 1);
  EXPECT_EQ(Value("tandem_requests_total{outcome=\"ok\"}"), 1);
}

TEST_F(RouterMetricsTest, ServedOverHttpWhenAPortIsGiven) {
  StartRouter(/*max_queue=*/256, /*metrics_port=*/0);
  ASSERT_FALSE(router_->metrics_address().empty());
  ASSERT_EQ(Generate("Hello", 3), grpc::StatusCode::OK);
  absl::StatusOr<std::string> page = ScrapeMetrics(router_->metrics_address());
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_NE(page->find("tandem_requests_total{outcome=\"ok\"} 1\n"), std::string::npos) << *page;
  const std::string address = router_->metrics_address();
  router_->Shutdown(absl::Seconds(1));
  EXPECT_EQ(ScrapeMetrics(address, absl::Seconds(1)).status().code(), absl::StatusCode::kUnavailable);
}

TEST(RouterMetricsOptionsTest, BadMetricsPortIsRefused) {
  RouterOptions options;
  options.model_dir = MakeModelDir();
  options.prefill_addresses = {"127.0.0.1:1"};
  options.decode_addresses = {"127.0.0.1:2"};
  options.metrics_port = -2;
  absl::StatusOr<std::unique_ptr<RouterServer>> router = RouterServer::Start(options);
  EXPECT_EQ(router.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(router.status().message().find("metrics_port"), absl::string_view::npos);
}

}  // namespace
}  // namespace tandem::router
