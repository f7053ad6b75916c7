#include "common/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"

namespace tandem {
namespace {

bool IsNameStart(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
}

bool IsValidName(const std::string& name, bool allow_colon) {
  if (name.empty() || !IsNameStart(name[0], allow_colon)) return false;
  for (char c : name) {
    if (!IsNameStart(c, allow_colon) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Go's strconv.FormatFloat(v, 'g', -1, 64), as Prometheus clients write values and `le` bounds: the
// shortest text that reads back as the same double.
std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  const std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::general);
  return std::string(buffer, result.ptr);
}

// HELP text escapes backslash and newline; label values also escape the double quote.
std::string Escape(const std::string& text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="1",b="2"} with `extra` (the histogram's le) last; empty without labels.
std::string FormatLabels(const MetricLabels& labels, const std::pair<std::string, std::string>* extra = nullptr) {
  if (labels.empty() && extra == nullptr) return "";
  std::string out = "{";
  bool first = true;
  auto append = [&](const std::pair<std::string, std::string>& label) {
    if (!first) out += ',';
    first = false;
    absl::StrAppend(&out, label.first, "=\"", Escape(label.second, /*quote=*/true), "\"");
  };
  for (const auto& label : labels) append(label);
  if (extra != nullptr) append(*extra);
  out += '}';
  return out;
}

}  // namespace

const char* MetricsRegistry::TypeName(Type type) {
  switch (type) {
    case Type::kCounter: return "counter";
    case Type::kGauge: return "gauge";
    case Type::kHistogram: break;
  }
  return "histogram";
}

void Counter::Increment(double amount) {
  if (!(amount >= 0)) return;
  value_.fetch_add(amount, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), counts_(upper_bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  // The first bound >= value: `le` buckets are inclusive.
  const size_t bucket = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin();
  absl::MutexLock lock(&mu_);
  ++counts_[bucket];
  sum_ += value;
}

HistogramSnapshot Histogram::Snapshot() const {
  HistogramSnapshot snapshot;
  snapshot.upper_bounds = upper_bounds_;
  snapshot.cumulative_counts.resize(upper_bounds_.size());
  absl::MutexLock lock(&mu_);
  uint64_t running = 0;
  for (size_t i = 0; i < upper_bounds_.size(); ++i) {
    running += counts_[i];
    snapshot.cumulative_counts[i] = running;
  }
  snapshot.count = running + counts_.back();
  snapshot.sum = sum_;
  return snapshot;
}

std::vector<double> LatencyBuckets(double min, double max) {
  std::vector<double> bounds;
  if (!(min > 0) || !(max >= min) || !std::isfinite(max)) return bounds;
  // Whole decades as exact powers of ten (10^-3 is not 0.001 * 10^0 after rounding).
  for (int exponent = static_cast<int>(std::floor(std::log10(min))) - 1;; ++exponent) {
    for (double step : {1.0, 2.5, 5.0}) {
      const double bound = exponent < 0 ? step / std::pow(10.0, -exponent) : step * std::pow(10.0, exponent);
      if (bound < min * (1 - 1e-12)) continue;
      bounds.push_back(bound);
      if (bound >= max * (1 - 1e-12)) return bounds;
    }
  }
}

absl::StatusOr<MetricsRegistry::Child*> MetricsRegistry::GetOrAdd(const std::string& name, const std::string& help,
                                                                  Type type, const std::vector<double>& upper_bounds,
                                                                  MetricLabels labels,
                                                                  std::function<double()> read) {
  const bool callback = static_cast<bool>(read);
  if (!IsValidName(name, /*allow_colon=*/true)) {
    return absl::InvalidArgumentError(absl::StrCat("metric name '", name, "' is not [a-zA-Z_:][a-zA-Z0-9_:]*"));
  }
  std::sort(labels.begin(), labels.end());
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string& label = labels[i].first;
    if (!IsValidName(label, /*allow_colon=*/false) || label.rfind("__", 0) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": label name '", label, "' is not [a-zA-Z_][a-zA-Z0-9_]* (or starts with __)"));
    }
    if (i > 0 && labels[i - 1].first == label) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": label '", label, "' is given twice"));
    }
    if (type == Type::kHistogram && label == "le") {
      return absl::InvalidArgumentError(absl::StrCat(name, ": a histogram cannot have the label 'le'"));
    }
  }
  if (type == Type::kHistogram) {
    if (upper_bounds.empty()) return absl::InvalidArgumentError(absl::StrCat(name, ": histogram buckets are empty"));
    for (size_t i = 0; i < upper_bounds.size(); ++i) {
      if (!std::isfinite(upper_bounds[i]) || (i > 0 && !(upper_bounds[i] > upper_bounds[i - 1]))) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": histogram bucket ", i, " (", upper_bounds[i],
                                                       ") is not finite or not above the one before"));
      }
    }
  }

  absl::MutexLock lock(&mu_);
  auto [it, inserted] = families_.try_emplace(name);
  Family& family = it->second;
  if (inserted) {
    family.type = type;
    family.help = help;
    family.upper_bounds = upper_bounds;
  } else if (family.type != type) {
    return absl::InvalidArgumentError(absl::StrCat("metric ", name, " is a ", TypeName(family.type),
                                                   ", not a ", TypeName(type)));
  } else if (family.help != help) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric ", name, " was added with the help text '", family.help, "', not '", help, "'"));
  } else if (family.upper_bounds != upper_bounds) {
    return absl::InvalidArgumentError(absl::StrCat("metric ", name, " was added with other histogram buckets"));
  }
  auto [child_it, child_inserted] = family.children.try_emplace(std::move(labels));
  std::unique_ptr<Child>& child = child_it->second;
  if (!child_inserted) {
    if (callback || child->read) {
      return absl::AlreadyExistsError(
          absl::StrCat("metric ", name, FormatLabels(child_it->first), " exists and one of the two is a callback"));
    }
    return child.get();
  }
  child = std::make_unique<Child>();
  child->read = std::move(read);
  if (!callback) {
    switch (type) {
      case Type::kCounter: child->counter = std::make_unique<Counter>(); break;
      case Type::kGauge: child->gauge = std::make_unique<Gauge>(); break;
      case Type::kHistogram: child->histogram = std::make_unique<Histogram>(upper_bounds); break;
    }
  }
  return child.get();
}

absl::StatusOr<Counter*> MetricsRegistry::AddCounter(const std::string& name, const std::string& help,
                                                     MetricLabels labels) {
  absl::StatusOr<Child*> child = GetOrAdd(name, help, Type::kCounter, {}, std::move(labels), nullptr);
  if (!child.ok()) return child.status();
  return (*child)->counter.get();
}

absl::StatusOr<Gauge*> MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                                 MetricLabels labels) {
  absl::StatusOr<Child*> child = GetOrAdd(name, help, Type::kGauge, {}, std::move(labels), nullptr);
  if (!child.ok()) return child.status();
  return (*child)->gauge.get();
}

absl::StatusOr<Histogram*> MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                                         std::vector<double> upper_bounds, MetricLabels labels) {
  absl::StatusOr<Child*> child = GetOrAdd(name, help, Type::kHistogram, upper_bounds, std::move(labels), nullptr);
  if (!child.ok()) return child.status();
  return (*child)->histogram.get();
}

absl::Status MetricsRegistry::AddGaugeCallback(const std::string& name, const std::string& help, MetricLabels labels,
                                               std::function<double()> read) {
  if (!read) return absl::InvalidArgumentError(absl::StrCat(name, ": the callback is empty"));
  return GetOrAdd(name, help, Type::kGauge, {}, std::move(labels), std::move(read)).status();
}

absl::Status MetricsRegistry::AddCounterCallback(const std::string& name, const std::string& help,
                                                 MetricLabels labels, std::function<double()> read) {
  if (!read) return absl::InvalidArgumentError(absl::StrCat(name, ": the callback is empty"));
  return GetOrAdd(name, help, Type::kCounter, {}, std::move(labels), std::move(read)).status();
}

std::string MetricsRegistry::Render() const {
  // Copy what to render under the lock; read values (callbacks included) after releasing it. Families
  // and children are never removed, so the pointers stay valid.
  struct Item {
    const MetricLabels* labels;
    const Child* child;
    std::function<double()> read;
  };
  struct Entry {
    const std::string* name;
    const Family* family;
    std::vector<Item> items;
  };
  std::vector<Entry> entries;
  {
    absl::MutexLock lock(&mu_);
    entries.reserve(families_.size());
    for (const auto& [name, family] : families_) {
      Entry entry{&name, &family, {}};
      for (const auto& [labels, child] : family.children) {
        entry.items.push_back({&labels, child.get(), child->read});
      }
      entries.push_back(std::move(entry));
    }
  }

  std::string out;
  for (const Entry& entry : entries) {
    const std::string& name = *entry.name;
    const Family& family = *entry.family;
    absl::StrAppend(&out, "# HELP ", name, " ", Escape(family.help, /*quote=*/false), "\n");
    absl::StrAppend(&out, "# TYPE ", name, " ", TypeName(family.type), "\n");
    for (const Item& item : entry.items) {
      if (family.type != Type::kHistogram) {
        double value = 0;
        if (item.read) {
          value = item.read();
        } else if (item.child->counter != nullptr) {
          value = item.child->counter->value();
        } else {
          value = item.child->gauge->value();
        }
        absl::StrAppend(&out, name, FormatLabels(*item.labels), " ", FormatValue(value), "\n");
        continue;
      }
      const HistogramSnapshot snapshot = item.child->histogram->Snapshot();
      for (size_t i = 0; i <= snapshot.upper_bounds.size(); ++i) {
        const bool inf = i == snapshot.upper_bounds.size();
        const std::pair<std::string, std::string> le{
            "le", inf ? "+Inf" : FormatValue(snapshot.upper_bounds[i])};
        absl::StrAppend(&out, name, "_bucket", FormatLabels(*item.labels, &le), " ",
                        inf ? snapshot.count : snapshot.cumulative_counts[i], "\n");
      }
      absl::StrAppend(&out, name, "_sum", FormatLabels(*item.labels), " ", FormatValue(snapshot.sum), "\n");
      absl::StrAppend(&out, name, "_count", FormatLabels(*item.labels), " ", snapshot.count, "\n");
    }
  }
  return out;
}

absl::StatusOr<std::map<std::string, double>> ParseMetricsText(std::string_view text) {
  std::map<std::string, double> samples;
  size_t line_number = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_number;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    // The series ends at the closing brace of its labels (label values may hold spaces) or at the first space.
    const size_t brace = line.find('{');
    const size_t space = line.find(' ');
    size_t series_end = space;
    if (brace != std::string_view::npos && brace < space) {
      size_t i = brace + 1;
      bool quoted = false;
      for (; i < line.size(); ++i) {
        if (line[i] == '\\' && quoted) {
          ++i;
        } else if (line[i] == '"') {
          quoted = !quoted;
        } else if (line[i] == '}' && !quoted) {
          break;
        }
      }
      series_end = i < line.size() ? i + 1 : std::string_view::npos;
    }
    if (series_end == std::string_view::npos || series_end >= line.size()) {
      return absl::InvalidArgumentError(absl::StrCat("metrics line ", line_number, " has no value: '",
                                                     std::string(line), "'"));
    }
    std::string_view rest = line.substr(series_end);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    rest = rest.substr(0, rest.find(' '));  // drops a timestamp
    double value = 0;
    if (rest == "+Inf") {
      value = HUGE_VAL;
    } else if (rest == "-Inf") {
      value = -HUGE_VAL;
    } else if (rest == "NaN") {
      value = NAN;
    } else {
      const std::from_chars_result parsed = std::from_chars(rest.data(), rest.data() + rest.size(), value);
      if (parsed.ec != std::errc() || parsed.ptr != rest.data() + rest.size()) {
        return absl::InvalidArgumentError(absl::StrCat("metrics line ", line_number, ": value '", std::string(rest),
                                                       "' is not a number"));
      }
    }
    samples[std::string(line.substr(0, series_end))] = value;
  }
  return samples;
}

}  // namespace tandem
