#include "common/metrics.h"

#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(MetricsTest, RendersCounterGaugeAndHistogramExactly) {
  MetricsRegistry registry;
  Counter* ok = *registry.AddCounter("tandem_requests_total", "Finished requests.", {{"outcome", "ok"}});
  Counter* error = *registry.AddCounter("tandem_requests_total", "Finished requests.", {{"outcome", "error"}});
  Gauge* inflight = *registry.AddGauge("tandem_inflight", "Requests in flight.");
  Histogram* ttft = *registry.AddHistogram("tandem_ttft_seconds", "Time to first token.", {0.1, 0.5, 1},
                                           {{"phase", "x"}});
  ok->Increment();
  ok->Increment(2);
  error->Increment();
  inflight->Set(4);
  inflight->Add(-1.5);
  ttft->Observe(0.05);
  ttft->Observe(0.1);  // le is inclusive
  ttft->Observe(0.7);
  ttft->Observe(3);
  EXPECT_EQ(registry.Render(),
            "# HELP tandem_inflight Requests in flight.\n"
            "# TYPE tandem_inflight gauge\n"
            "tandem_inflight 2.5\n"
            "# HELP tandem_requests_total Finished requests.\n"
            "# TYPE tandem_requests_total counter\n"
            "tandem_requests_total{outcome=\"error\"} 1\n"
            "tandem_requests_total{outcome=\"ok\"} 3\n"
            "# HELP tandem_ttft_seconds Time to first token.\n"
            "# TYPE tandem_ttft_seconds histogram\n"
            "tandem_ttft_seconds_bucket{phase=\"x\",le=\"0.1\"} 2\n"
            "tandem_ttft_seconds_bucket{phase=\"x\",le=\"0.5\"} 2\n"
            "tandem_ttft_seconds_bucket{phase=\"x\",le=\"1\"} 3\n"
            "tandem_ttft_seconds_bucket{phase=\"x\",le=\"+Inf\"} 4\n"
            "tandem_ttft_seconds_sum{phase=\"x\"} 3.85\n"
            "tandem_ttft_seconds_count{phase=\"x\"} 4\n");
}

TEST(MetricsTest, CallbacksAreReadAtRenderTime) {
  MetricsRegistry registry;
  double depth = 1;
  ASSERT_TRUE(registry.AddGaugeCallback("queue_depth", "Queued.", {{"worker", "a"}}, [&] { return depth; }).ok());
  ASSERT_TRUE(registry.AddCounterCallback("bytes_total", "Bytes.", {}, [] { return 1e12; }).ok());
  EXPECT_THAT(registry.Render(), HasSubstr("queue_depth{worker=\"a\"} 1\n"));
  depth = 7;
  const std::string page = registry.Render();
  EXPECT_THAT(page, HasSubstr("queue_depth{worker=\"a\"} 7\n"));
  EXPECT_THAT(page, HasSubstr("# TYPE bytes_total counter\nbytes_total 1e+12\n"));
  // A second callback on the same child, or a plain metric on a callback child, is refused.
  EXPECT_EQ(registry.AddGaugeCallback("queue_depth", "Queued.", {{"worker", "a"}}, [] { return 0.0; }).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.AddGauge("queue_depth", "Queued.", {{"worker", "a"}}).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST(MetricsTest, LabelsAreSortedEscapedAndShared) {
  MetricsRegistry registry;
  Gauge* a = *registry.AddGauge("g", "Help with \\ and\nnewline.", {{"z", "1"}, {"a", "say \"hi\"\n\\"}});
  Gauge* b = *registry.AddGauge("g", "Help with \\ and\nnewline.", {{"a", "say \"hi\"\n\\"}, {"z", "1"}});
  EXPECT_EQ(a, b);  // same child, whatever the label order
  a->Set(-0.25);
  EXPECT_EQ(registry.Render(),
            "# HELP g Help with \\\\ and\\nnewline.\n"
            "# TYPE g gauge\n"
            "g{a=\"say \\\"hi\\\"\\n\\\\\",z=\"1\"} -0.25\n");
}

TEST(MetricsTest, RejectsMisuseNamingTheMetric) {
  MetricsRegistry registry;
  absl::StatusOr<Counter*> bad_name = registry.AddCounter("1abc", "x");
  EXPECT_EQ(bad_name.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_name.status().message(), HasSubstr("'1abc'"));
  EXPECT_FALSE(registry.AddCounter("c", "x", {{"bad-label", "v"}}).ok());
  EXPECT_FALSE(registry.AddCounter("c", "x", {{"__reserved", "v"}}).ok());
  EXPECT_FALSE(registry.AddCounter("c", "x", {{"a", "1"}, {"a", "2"}}).ok());
  EXPECT_FALSE(registry.AddHistogram("h", "x", {1, 1}).ok());
  EXPECT_FALSE(registry.AddHistogram("h", "x", {}).ok());
  EXPECT_FALSE(registry.AddHistogram("h", "x", {1}, {{"le", "1"}}).ok());
  ASSERT_TRUE(registry.AddCounter("c", "x").ok());
  absl::StatusOr<Gauge*> other_type = registry.AddGauge("c", "x");
  EXPECT_EQ(other_type.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(other_type.status().message(), HasSubstr("metric c is a counter, not a gauge"));
  EXPECT_FALSE(registry.AddCounter("c", "other help").ok());
  ASSERT_TRUE(registry.AddHistogram("h", "x", {1, 2}).ok());
  EXPECT_FALSE(registry.AddHistogram("h", "x", {1, 3}).ok());
  EXPECT_FALSE(registry.AddGaugeCallback("g", "x", {}, nullptr).ok());
}

TEST(MetricsTest, CountersNeverGoDown) {
  MetricsRegistry registry;
  Counter* c = *registry.AddCounter("c_total", "x");
  c->Increment(2);
  c->Increment(-1);
  EXPECT_EQ(c->value(), 2);
}

TEST(MetricsTest, LatencyBucketsStepOneTwoAndAHalfFive) {
  EXPECT_THAT(LatencyBuckets(0.001, 0.1), ElementsAre(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1));
  EXPECT_THAT(LatencyBuckets(0.002, 30), ElementsAre(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                                     10, 25, 50));
  EXPECT_TRUE(LatencyBuckets(0, 1).empty());
}

TEST(MetricsTest, ConcurrentUpdatesAreAllCounted) {
  MetricsRegistry registry;
  Counter* c = *registry.AddCounter("c_total", "x");
  Histogram* h = *registry.AddHistogram("h_seconds", "x", {0.5});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c->Increment();
        h->Observe(i % 2);
        if (i % 1000 == 0) registry.Render();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c->value(), 40000);
  const HistogramSnapshot s = h->Snapshot();
  EXPECT_EQ(s.count, 40000u);
  EXPECT_THAT(s.cumulative_counts, ElementsAre(20000u));
  EXPECT_EQ(s.sum, 20000);
}

TEST(MetricsTest, ParseMetricsTextReadsWhatRenderWrites) {
  MetricsRegistry registry;
  (*registry.AddCounter("a_total", "x", {{"k", "v w}"}}))->Increment(3);
  (*registry.AddHistogram("h", "x", {1}))->Observe(0.5);
  absl::StatusOr<std::map<std::string, double>> samples = ParseMetricsText(registry.Render() + "t 5 123456\n");
  ASSERT_TRUE(samples.ok()) << samples.status();
  EXPECT_EQ(samples->at("a_total{k=\"v w}\"}"), 3);
  EXPECT_EQ(samples->at("h_bucket{le=\"1\"}"), 1);
  EXPECT_EQ(samples->at("h_bucket{le=\"+Inf\"}"), 1);
  EXPECT_EQ(samples->at("h_sum"), 0.5);
  EXPECT_EQ(samples->at("t"), 5);
  EXPECT_EQ(ParseMetricsText("no_value\n").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseMetricsText("x abc\n").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tandem
