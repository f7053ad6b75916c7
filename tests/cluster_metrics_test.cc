// GET /metrics on a real in-process cluster: a prefill worker, a decode worker and a router on loopback
// (port 0 everywhere) serving the tiny random model. Requests go through the router; every process is
// then scraped over HTTP, and the counters and histogram counts must have moved by exactly what the
// requests did, the KV gauges must be back at idle.

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "common/metrics_http.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "proto/tandem.grpc.pb.h"
#include "router/router_server.h"
#include "tests/testing/local_cluster.h"

namespace tandem {
namespace {

using Samples = std::map<std::string, double>;

Samples Scrape(const std::string& address) {
  absl::StatusOr<std::string> page = ScrapeMetrics(address);
  EXPECT_TRUE(page.ok()) << page.status();
  if (!page.ok()) return {};
  absl::StatusOr<Samples> samples = ParseMetricsText(*page);
  EXPECT_TRUE(samples.ok()) << samples.status();
  return samples.ok() ? *samples : Samples{};
}

// The sample's value; a missing series fails the test and reads as -1.
double Get(const Samples& samples, const std::string& series) {
  auto it = samples.find(series);
  EXPECT_NE(it, samples.end()) << "no series " << series;
  return it == samples.end() ? -1 : it->second;
}

double Delta(const Samples& before, const Samples& after, const std::string& series) {
  return Get(after, series) - Get(before, series);
}

class ClusterMetricsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<test_support::LocalCluster>> cluster =
        test_support::LocalCluster::Start({.name = "cluster_metrics", .metrics = true});
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = cluster->release();
  }

  static void TearDownTestSuite() { delete cluster_; }

  // One Generate call to completion; its final message.
  static v1::Final Generate(const std::string& prompt, int max_tokens) {
    auto stub =
        v1::Tandem::NewStub(grpc::CreateChannel(cluster_->router().address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::GenerateRequest request;
    request.set_prompt(prompt);
    request.set_max_tokens(max_tokens);
    request.set_ignore_eos(true);
    auto reader = stub->Generate(&context, request);
    v1::GenerateResponse response;
    v1::Final final;
    while (reader->Read(&response)) {
      if (response.has_final()) final = response.final();
    }
    const grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return final;
  }

  static test_support::LocalCluster* cluster_;
};

test_support::LocalCluster* ClusterMetricsTest::cluster_ = nullptr;

TEST_F(ClusterMetricsTest, CountersAndHistogramsMoveByWhatTheRequestsDid) {
  ASSERT_FALSE(cluster_->router().metrics_address().empty());
  ASSERT_FALSE(cluster_->prefill().metrics_address().empty());
  ASSERT_FALSE(cluster_->decode().metrics_address().empty());
  const Samples router_before = Scrape(cluster_->router().metrics_address());
  const Samples prefill_before = Scrape(cluster_->prefill().metrics_address());
  const Samples decode_before = Scrape(cluster_->decode().metrics_address());

  constexpr int kRequests = 3;
  constexpr int kMaxTokens = 5;
  int64_t prompt_tokens = 0;
  for (int i = 0; i < kRequests; ++i) {
    const v1::Final final = Generate(absl::StrCat("The quick brown fox number ", i), kMaxTokens);
    ASSERT_EQ(final.completion_tokens(), kMaxTokens);
    prompt_tokens += final.prompt_tokens();
  }
  // Refused before placement: an empty prompt.
  {
    auto stub =
        v1::Tandem::NewStub(grpc::CreateChannel(cluster_->router().address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    v1::GenerateRequest request;
    request.set_prompt("");
    auto reader = stub->Generate(&context, request);
    v1::GenerateResponse response;
    while (reader->Read(&response)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }

  // Router.
  const Samples router_after = Scrape(cluster_->router().metrics_address());
  EXPECT_EQ(Delta(router_before, router_after, "tandem_requests_total{outcome=\"ok\"}"), kRequests);
  EXPECT_EQ(Delta(router_before, router_after, "tandem_requests_total{outcome=\"error\"}"), 0);
  EXPECT_EQ(Delta(router_before, router_after, "tandem_requests_total{outcome=\"rejected\"}"), 1);
  EXPECT_EQ(Delta(router_before, router_after, "tandem_rejections_total{reason=\"invalid_argument\"}"), 1);
  EXPECT_EQ(Delta(router_before, router_after, "tandem_rejections_total{reason=\"no_healthy_worker\"}"), 0);
  for (const char* histogram : {"tandem_ttft_seconds", "tandem_tpot_seconds", "tandem_e2e_seconds"}) {
    EXPECT_EQ(Delta(router_before, router_after, absl::StrCat(histogram, "_count")), kRequests) << histogram;
    EXPECT_EQ(Delta(router_before, router_after, absl::StrCat(histogram, "_bucket{le=\"+Inf\"}")), kRequests)
        << histogram;
    EXPECT_GT(Delta(router_before, router_after, absl::StrCat(histogram, "_sum")), 0) << histogram;
  }
  // No SLOs were set: every completed request attained them.
  EXPECT_EQ(Delta(router_before, router_after, "tandem_slo_attained_total"), kRequests);
  EXPECT_EQ(Get(router_after, "tandem_router_inflight_requests"), 0);
  const std::string prefill_labels =
      absl::StrCat("{role=\"prefill\",worker=\"", cluster_->prefill().address(), "\"}");
  const std::string decode_labels =
      absl::StrCat("{role=\"decode\",worker=\"", cluster_->decode().address(), "\"}");
  EXPECT_EQ(Get(router_after, "tandem_worker_healthy" + prefill_labels), 1);
  EXPECT_EQ(Get(router_after, "tandem_worker_healthy" + decode_labels), 1);
  EXPECT_GT(Get(router_after, "tandem_worker_kv_blocks_free" + decode_labels), 0);

  // Prefill: every prompt token went through one forward pass, one step per batch.
  const Samples prefill_after = Scrape(cluster_->prefill().metrics_address());
  EXPECT_EQ(Delta(prefill_before, prefill_after, "tandem_prefill_tokens_total"), prompt_tokens);
  const double batches = Delta(prefill_before, prefill_after, "tandem_prefill_batches_total");
  EXPECT_GE(batches, 1);
  EXPECT_LE(batches, kRequests);
  EXPECT_EQ(Delta(prefill_before, prefill_after, "tandem_engine_step_seconds_count{phase=\"prefill\"}"), batches);
  EXPECT_EQ(Get(prefill_after, "tandem_engine_queued_requests{phase=\"prefill\"}"), 0);
  EXPECT_EQ(Get(prefill_after, "tandem_engine_running_requests{phase=\"prefill\"}"), 0);

  // Decode: one KV pull per request of exactly its prompt's KV; kMaxTokens - 1 tokens each (the first
  // comes from prefill).
  const Samples decode_after = Scrape(cluster_->decode().metrics_address());
  EXPECT_EQ(Delta(decode_before, decode_after, "tandem_kv_transfers_total{outcome=\"ok\"}"), kRequests);
  EXPECT_EQ(Delta(decode_before, decode_after, "tandem_kv_transfers_total{outcome=\"error\"}"), 0);
  EXPECT_EQ(Delta(decode_before, decode_after, "tandem_kv_transfer_seconds_count"), kRequests);
  EXPECT_EQ(Delta(decode_before, decode_after, "tandem_kv_transfer_bytes_total"),
            static_cast<double>(prompt_tokens * cluster_->prefill().engine().layout().bytes_per_token()));
  EXPECT_EQ(Delta(decode_before, decode_after, "tandem_decode_tokens_total"), kRequests * (kMaxTokens - 1));
  EXPECT_GE(Delta(decode_before, decode_after, "tandem_engine_step_seconds_count{phase=\"decode\"}"),
            kMaxTokens - 1);
  EXPECT_EQ(Get(decode_after, "tandem_engine_kv_blocks_used{phase=\"decode\"}"), 0);
  EXPECT_GT(Get(decode_after, "tandem_engine_kv_blocks_free{phase=\"decode\"}"), 0);
  EXPECT_EQ(Get(decode_after, "tandem_engine_running_requests{phase=\"decode\"}"), 0);
  EXPECT_EQ(Get(decode_after, "tandem_engine_queued_requests{phase=\"decode\"}"), 0);

  // The prefill worker frees each lease when the decode worker's ReleaseKv arrives (asynchronously).
  Samples prefill_idle;
  for (int i = 0; i < 100; ++i) {
    prefill_idle = Scrape(cluster_->prefill().metrics_address());
    if (Get(prefill_idle, "tandem_prefill_leases_held") == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(Get(prefill_idle, "tandem_prefill_leases_held"), 0);
  EXPECT_EQ(Get(prefill_idle, "tandem_engine_kv_blocks_used{phase=\"prefill\"}"), 0);
}

}  // namespace
}  // namespace tandem
