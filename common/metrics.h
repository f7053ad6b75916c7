// Metrics in the Prometheus text exposition format (version 0.0.4): counters, gauges (set, or read by a
// callback at scrape time) and histograms with fixed buckets, kept in a MetricsRegistry that each daemon
// owns and passes to what it instruments (no global singleton).
//
//   MetricsRegistry registry;
//   TANDEM_ASSIGN_OR_RETURN(Counter* ok, registry.AddCounter("tandem_requests_total", "Finished requests.",
//                                                            {{"outcome", "ok"}}));
//   TANDEM_ASSIGN_OR_RETURN(Histogram* ttft, registry.AddHistogram("tandem_ttft_seconds", "Time to first token.",
//                                                                  LatencyBuckets(0.001, 300)));
//   TANDEM_RETURN_IF_ERROR(registry.AddGaugeCallback("tandem_queue_depth", "Queued requests.", {},
//                                                    [&engine] { return engine.Load().queued_requests; }));
//   ok->Increment();
//   ttft->Observe(0.120);
//   std::string page = registry.Render();   // what GET /metrics serves (common/metrics_http.h)
//
// Model: a family is a name with one type, one help text and, for histograms, one bucket layout; each
// distinct label set is one child of its family. Labels are a small list of (name, value) pairs, kept
// sorted by name. Adding a child that exists already (same name, type, help, buckets and labels) returns
// the same object, so two components may share a metric; callback children cannot be shared.
//
// Errors (InvalidArgument, naming the metric): an invalid metric or label name, a repeated label, the
// label "le" on a histogram, buckets that are empty, not finite or not strictly increasing, a name reused
// with another type, help text or bucket layout; AlreadyExists for a second callback on one child.
//
// Ownership and lifetime: the registry owns every metric; the pointers it returns stay valid for its
// lifetime. Callbacks must stay callable until the registry is destroyed, or until nothing renders it
// any more (stop the HTTP server first).
//
// Thread safety: every method of every class here is thread-safe. Counter, Gauge and Histogram updates
// are lock-free or take one short per-histogram lock and never block on Render. Render evaluates the
// callbacks without holding the registry's lock, on the rendering thread: a callback may take its
// component's own locks, but must not call back into the registry.
#ifndef TANDEM_COMMON_METRICS_H_
#define TANDEM_COMMON_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace tandem {

// (label name, label value) pairs. The registry sorts them by name.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Monotonically increasing; starts at 0.
class Counter {
 public:
  // `amount` must be >= 0; negative and NaN amounts are ignored (a counter never goes down).
  void Increment(double amount = 1);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A value that goes up and down; starts at 0.
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Cumulative counts as exposed: counts[i] observations were <= upper_bounds[i]; the implicit +Inf
// bucket holds `count`.
struct HistogramSnapshot {
  std::vector<double> upper_bounds;
  std::vector<uint64_t> cumulative_counts;  // [upper_bounds.size()]
  double sum = 0;
  uint64_t count = 0;
};

// Observations counted into fixed buckets (an observation v falls in every bucket with v <= le).
class Histogram {
 public:
  // `upper_bounds` strictly increasing and finite (the registry checks); +Inf is implicit.
  explicit Histogram(std::vector<double> upper_bounds);

  // NaN is ignored.
  void Observe(double value);
  HistogramSnapshot Snapshot() const;
  const std::vector<double>& upper_bounds() const { return upper_bounds_; }

 private:
  const std::vector<double> upper_bounds_;
  mutable absl::Mutex mu_;
  std::vector<uint64_t> counts_ ABSL_GUARDED_BY(mu_);  // [upper_bounds.size() + 1], per bucket, not cumulative
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
};

// Bucket bounds at 1, 2.5 and 5 times each power of ten, from the first one >= `min` through the first
// one >= `max`: LatencyBuckets(0.001, 1) is {0.001, 0.0025, 0.005, 0.01, ..., 0.5, 1}. Needs 0 < min <= max.
std::vector<double> LatencyBuckets(double min, double max);

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  absl::StatusOr<Counter*> AddCounter(const std::string& name, const std::string& help, MetricLabels labels = {});
  absl::StatusOr<Gauge*> AddGauge(const std::string& name, const std::string& help, MetricLabels labels = {});
  absl::StatusOr<Histogram*> AddHistogram(const std::string& name, const std::string& help,
                                          std::vector<double> upper_bounds, MetricLabels labels = {});
  // Values read by `read` at every Render: for state another component already keeps (queue depths,
  // free KV blocks, cumulative counts). A counter callback must never decrease.
  absl::Status AddGaugeCallback(const std::string& name, const std::string& help, MetricLabels labels,
                                std::function<double()> read);
  absl::Status AddCounterCallback(const std::string& name, const std::string& help, MetricLabels labels,
                                  std::function<double()> read);

  // The text exposition format 0.0.4: families sorted by name, each with its # HELP and # TYPE lines,
  // children sorted by labels; histograms as name_bucket{...,le="..."}, name_sum and name_count.
  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Child {
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> read;  // callback children
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<double> upper_bounds;  // histograms
    std::map<MetricLabels, std::unique_ptr<Child>> children;
  };

  static const char* TypeName(Type type);
  // Finds or creates the child; a callback child (`read` set) must not exist yet.
  absl::StatusOr<Child*> GetOrAdd(const std::string& name, const std::string& help, Type type,
                                  const std::vector<double>& upper_bounds, MetricLabels labels,
                                  std::function<double()> read);

  mutable absl::Mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
};

// Sample values of an exposition page keyed by the series as written, name and labels:
// "tandem_requests_total{outcome=\"ok\"}" -> 3. Comment lines and blank lines are skipped; a trailing
// timestamp is dropped. InvalidArgument (naming the line) for a line without a value. For tests and
// tools that read /metrics.
absl::StatusOr<std::map<std::string, double>> ParseMetricsText(std::string_view text);

}  // namespace tandem

#endif  // TANDEM_COMMON_METRICS_H_
