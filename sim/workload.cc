#include "sim/workload.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numbers>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/match.h"
#include "nlohmann/json.hpp"
#include "sim/rng.h"

namespace tandem::sim {
namespace {

const std::vector<double> kPercentiles = {0, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99, 1.0};

QuantileTable Table(std::vector<double> values) { return QuantileTable{kPercentiles, std::move(values)}; }

int64_t RoundLength(double value) { return std::max<int64_t>(1, std::llround(value)); }

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// "2023-11-16 18:17:03.979" (also with 'T', trailing zone ignored) -> seconds since the epoch.
bool ParseDateTime(std::string_view text, double* seconds) {
  int64_t year, month, day, hour, minute;
  double second;
  std::string s(text);
  std::replace(s.begin(), s.end(), 'T', ' ');
  char tail[16] = {0};
  if (std::sscanf(s.c_str(), "%ld-%ld-%ld %ld:%ld:%lf%15s", &year, &month, &day, &hour, &minute, &second,
                  tail) < 6) {
    return false;
  }
  *seconds = static_cast<double>(DaysFromCivil(year, month, day)) * 86400.0 +
             static_cast<double>(hour * 3600 + minute * 60) + second;
  return true;
}

void FitTotal(const TraceOptions& options, SimRequest* r) {
  const double total = static_cast<double>(r->prompt_len + r->output_len);
  if (options.max_total_tokens <= 0 || total <= options.max_total_tokens) return;
  const double factor = options.max_total_tokens / total;
  r->prompt_len = std::max<int64_t>(1, static_cast<int64_t>(std::floor(r->prompt_len * factor)));
  r->output_len = std::max<int64_t>(1, static_cast<int64_t>(std::floor(r->output_len * factor)));
}

// Sorts by arrival, shifts the first to 0, records the trace's rate and rescales to unit rate.
absl::StatusOr<Workload> Finish(std::vector<SimRequest> requests, std::string_view name,
                                const TraceOptions& options) {
  if (requests.empty()) return absl::InvalidArgumentError(absl::StrCat(std::string(name), ": no requests"));
  std::stable_sort(requests.begin(), requests.end(),
                   [](const SimRequest& a, const SimRequest& b) { return a.arrival_s < b.arrival_s; });
  if (options.max_requests > 0 && static_cast<int64_t>(requests.size()) > options.max_requests) {
    requests.resize(options.max_requests);
  }
  const double start = requests.front().arrival_s;
  const double span = requests.back().arrival_s - start;
  Workload workload;
  workload.source_rate = span > 0 ? static_cast<double>(requests.size() - 1) / span : 1.0;
  workload.native_rate = 1.0;
  for (size_t i = 0; i < requests.size(); ++i) {
    requests[i].id = static_cast<int64_t>(i);
    requests[i].arrival_s = (requests[i].arrival_s - start) * workload.source_rate;
    FitTotal(options, &requests[i]);
  }
  workload.requests = std::move(requests);
  return workload;
}

}  // namespace

double QuantileTable::Quantile(double u) const {
  u = std::clamp(u, 0.0, 1.0);
  size_t i = std::upper_bound(probabilities.begin(), probabilities.end(), u) - probabilities.begin();
  if (i == 0) return values.front();
  if (i >= probabilities.size()) return values.back();
  const double p0 = probabilities[i - 1], p1 = probabilities[i];
  const double t = (u - p0) / (p1 - p0);
  const double l0 = std::log(values[i - 1]), l1 = std::log(values[i]);
  return std::exp(l0 + t * (l1 - l0));
}

std::vector<std::string> LengthSpecNames() {
  return {"sharegpt", "humaneval", "longbench", "azure_conv", "azure_code"};
}

absl::StatusOr<LengthSpec> BuiltinLengthSpec(std::string_view name) {
  LengthSpec spec;
  spec.name = std::string(name);
  if (name == "sharegpt") {
    // DistServe's ShareGPT preparation, OPT tokenizer; p + o < 2048.
    spec.prompt = Table({2, 25, 89, 316, 685, 1149, 1546, 1723, 1922, 2031});
    spec.output = Table({1, 6, 9, 18, 78, 304, 512, 648, 969, 1809});
    spec.spearman = -0.12;
    spec.max_total_tokens = 2048;
  } else if (name == "humaneval") {
    spec.prompt = Table({55, 72, 91, 115, 146, 200, 278, 330, 489, 629});
    spec.output = Table({9, 14, 19, 38, 79, 138, 194, 231, 413, 514});
    spec.spearman = 0.41;
    spec.max_total_tokens = 2048;
  } else if (name == "longbench") {
    // Output: log-normal with sigma 1.2 and mean 90 (exp(mu + sigma^2 / 2) = 90), as a 10-knot table
    // of its quantiles; the prompt follows DistServe's truncation rule.
    const double sigma = 1.2, mu = std::log(90.0) - sigma * sigma / 2;
    const double z[] = {-3.2, -1.6449, -1.2816, -0.6745, 0, 0.6745, 1.2816, 1.6449, 2.3263, 3.2};
    std::vector<double> values;
    for (double zi : z) values.push_back(std::max(1.0, std::exp(mu + sigma * zi)));
    spec.output = Table(values);
    spec.prompt = Table({1900, 1914, 1928, 1937, 1974, 2011, 2033, 2040, 2046, 2048});
    spec.longbench_rule = true;
    spec.max_total_tokens = 2041;
  } else if (name == "azure_conv") {
    spec.prompt = Table({2, 181, 207, 396, 1020, 1189, 2734, 4083, 4142, 14050});
    spec.output = Table({7, 41, 54, 85, 129, 395, 424, 451, 601, 1000});
    spec.spearman = 0.07;
  } else if (name == "azure_code") {
    spec.prompt = Table({3, 75, 147, 578, 1469, 2744, 5188, 7303, 7436, 7437});
    spec.output = Table({6, 6, 7, 9, 13, 24, 55, 90, 251, 1899});
    spec.spearman = -0.02;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--lengths: unknown length distribution \"",
                                                   std::string(name), "\" (known: ",
                                                   absl::StrJoin(LengthSpecNames(), ", "), ")"));
  }
  return spec;
}

absl::StatusOr<Workload> MakeSyntheticWorkload(const LengthSpec& lengths, const ArrivalSpec& arrival,
                                               int64_t num_requests, uint64_t seed) {
  if (num_requests < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--num_requests: ", num_requests, " must be >= 1"));
  }
  double cv = arrival.cv;
  if (arrival.type == "poisson") {
    cv = 1.0;
  } else if (arrival.type == "fixed") {
    cv = 0.0;
  } else if (arrival.type != "gamma") {
    return absl::InvalidArgumentError(absl::StrCat("--arrival: unknown arrival process \"", arrival.type,
                                                   "\" (known: poisson, gamma, fixed)"));
  } else if (!(cv > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("--cv: ", cv, " must be > 0 for gamma arrivals"));
  }
  // Pearson correlation of the Gaussian copula that gives the requested Spearman correlation.
  const double rho = 2.0 * std::sin(std::numbers::pi * lengths.spearman / 6.0);
  const double rho_complement = std::sqrt(1.0 - rho * rho);
  Rng length_rng(seed, /*stream=*/1);
  Rng arrival_rng(seed, /*stream=*/2);

  Workload workload;
  workload.native_rate = 1.0;
  workload.requests.reserve(num_requests);
  double t = 0.0;
  for (int64_t i = 0; i < num_requests; ++i) {
    SimRequest r;
    r.id = i;
    if (i > 0) t += cv == 0.0 ? 1.0 : arrival_rng.Gamma(1.0 / (cv * cv)) * cv * cv;
    r.arrival_s = t;
    // Pairs over the length limit keep their prompt and have the output clipped, which leaves the
    // prompt marginal exact (resampling them would shift both marginals, which were measured after
    // DistServe's filter).
    const double z1 = length_rng.Normal();
    const double z2 = rho * z1 + rho_complement * length_rng.Normal();
    r.output_len = RoundLength(lengths.output.Quantile(NormalCdf(z2)));
    if (lengths.longbench_rule) {
      r.output_len = std::min<int64_t>(r.output_len, 1024);
      const int64_t drawn = 1900 + static_cast<int64_t>(length_rng.Uniform() * 149);  // U[1900, 2048]
      r.prompt_len = std::min<int64_t>(2040 - r.output_len, drawn);
    } else {
      r.prompt_len = RoundLength(lengths.prompt.Quantile(NormalCdf(z1)));
    }
    if (lengths.max_total_tokens > 0 && r.prompt_len + r.output_len >= lengths.max_total_tokens) {
      r.prompt_len = std::min(r.prompt_len, lengths.max_total_tokens - 2);
      r.output_len = std::max<int64_t>(1, lengths.max_total_tokens - 1 - r.prompt_len);
    }
    workload.requests.push_back(r);
  }
  return workload;
}

absl::StatusOr<WorkloadClass> ParseWorkloadClass(std::string_view text) {
  const std::string where = absl::StrCat("--classes item \"", absl::string_view(text.data(), text.size()), "\"");
  const std::vector<std::string> parts = absl::StrSplit(absl::string_view(text.data(), text.size()), ':');
  if (parts.size() != 5) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": expected NAME:LENGTHS:WEIGHT:TTFT_MS:TPOT_MS, e.g. chat:sharegpt:0.8:200:50"));
  }
  WorkloadClass c;
  c.name = parts[0];
  if (c.name.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": empty class name"));
  absl::StatusOr<LengthSpec> lengths = BuiltinLengthSpec(parts[1]);
  if (!lengths.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": unknown length distribution \"", parts[1],
                                                   "\" (known: ", absl::StrJoin(LengthSpecNames(), ", "), ")"));
  }
  c.lengths = *std::move(lengths);
  const std::pair<const char*, double*> numbers[] = {
      {"weight", &c.weight}, {"TTFT SLO", &c.ttft_slo_ms}, {"TPOT SLO", &c.tpot_slo_ms}};
  for (int i = 0; i < 3; ++i) {
    if (!absl::SimpleAtod(parts[2 + i], numbers[i].second) || !(*numbers[i].second > 0) ||
        !std::isfinite(*numbers[i].second)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", numbers[i].first, " \"", parts[2 + i], "\" must be a number > 0"));
    }
  }
  return c;
}

absl::StatusOr<Workload> MakeMixedWorkload(const std::vector<WorkloadClass>& classes, const ArrivalSpec& arrival,
                                           int64_t num_requests, uint64_t seed) {
  if (classes.empty()) return absl::InvalidArgumentError("mixed workload: no classes");
  double total_weight = 0;
  for (const WorkloadClass& c : classes) {
    if (!(c.weight > 0)) return absl::InvalidArgumentError(absl::StrCat("class ", c.name, ": weight must be > 0"));
    total_weight += c.weight;
  }
  // Each class's lengths as that class alone would draw them (its own length stream), the arrivals of
  // the first (the same for every class: stream 2 of `seed`).
  std::vector<Workload> drawn;
  for (size_t k = 0; k < classes.size(); ++k) {
    absl::StatusOr<Workload> w = MakeSyntheticWorkload(classes[k].lengths, arrival, num_requests, seed + 7919 * k);
    if (!w.ok()) return w.status();
    drawn.push_back(*std::move(w));
  }
  absl::StatusOr<Workload> arrivals = MakeSyntheticWorkload(classes[0].lengths, arrival, num_requests, seed);
  if (!arrivals.ok()) return arrivals.status();
  Workload workload = *std::move(arrivals);
  Rng class_rng(seed, /*stream=*/3);
  for (int64_t i = 0; i < num_requests; ++i) {
    double u = class_rng.Uniform() * total_weight;
    size_t k = 0;
    while (k + 1 < classes.size() && u >= classes[k].weight) u -= classes[k++].weight;
    SimRequest& r = workload.requests[i];
    r.prompt_len = drawn[k].requests[i].prompt_len;
    r.output_len = drawn[k].requests[i].output_len;
    r.ttft_slo_ms = classes[k].ttft_slo_ms;
    r.tpot_slo_ms = classes[k].tpot_slo_ms;
    r.slo_class = static_cast<int32_t>(k);
  }
  for (const WorkloadClass& c : classes) workload.class_names.push_back(c.name);
  return workload;
}

Workload ScaleToRate(const Workload& workload, double rate) {
  Workload scaled = workload;
  const double factor = workload.native_rate / rate;
  for (SimRequest& r : scaled.requests) r.arrival_s *= factor;
  scaled.native_rate = rate;
  return scaled;
}

absl::StatusOr<Workload> ParseTrace(std::string_view text, std::string_view name,
                                    const TraceOptions& options) {
  const std::string source(name);
  std::vector<absl::string_view> lines = absl::StrSplit(absl::string_view(text.data(), text.size()), '\n', absl::SkipWhitespace());
  if (lines.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": empty trace"));
  std::vector<SimRequest> requests;
  const absl::string_view first = absl::StripAsciiWhitespace(lines[0]);

  if (!first.empty() && first.front() == '{') {
    for (size_t i = 0; i < lines.size(); ++i) {
      nlohmann::json row = nlohmann::json::parse(std::string(lines[i]), nullptr, /*allow_exceptions=*/false);
      const std::string where = absl::StrCat(source, ":", i + 1);
      if (row.is_discarded() || !row.is_object()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": not a JSON object"));
      }
      for (const char* key : {"timestamp", "input_length", "output_length"}) {
        if (!row.contains(key) || !row.at(key).is_number()) {
          return absl::InvalidArgumentError(absl::StrCat(where, ": field \"", key, "\" missing or not a number"));
        }
      }
      SimRequest r;
      r.arrival_s = row.at("timestamp").get<double>() / 1000.0;  // ms
      r.prompt_len = std::max<int64_t>(1, row.at("input_length").get<int64_t>());
      r.output_len = std::max<int64_t>(1, row.at("output_length").get<int64_t>());
      requests.push_back(r);
    }
    return Finish(std::move(requests), name, options);
  }

  std::vector<std::string> header;
  for (absl::string_view column : absl::StrSplit(first, ',')) {
    header.push_back(std::string(absl::StripAsciiWhitespace(column)));
  }
  auto column_of = [&](absl::string_view wanted) -> int {
    for (size_t i = 0; i < header.size(); ++i) {
      if (absl::EqualsIgnoreCase(header[i], wanted)) return static_cast<int>(i);
    }
    return -1;
  };
  int time_col = column_of("arrival_s"), prompt_col = column_of("prompt_len"),
      output_col = column_of("output_len");
  bool azure = false;
  if (time_col < 0) {
    time_col = column_of("TIMESTAMP");
    prompt_col = column_of("ContextTokens");
    output_col = column_of("GeneratedTokens");
    azure = true;
  }
  if (time_col < 0 || prompt_col < 0 || output_col < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": unknown trace format; want JSONL {timestamp,input_length,output_length}, CSV "
                "arrival_s,prompt_len,output_len, or Azure CSV TIMESTAMP,ContextTokens,GeneratedTokens"));
  }
  const int needed = std::max({time_col, prompt_col, output_col});
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<absl::string_view> fields = absl::StrSplit(lines[i], ',');
    const std::string where = absl::StrCat(source, ":", i + 1);
    if (static_cast<int>(fields.size()) <= needed) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", fields.size(), " columns, want ", needed + 1));
    }
    SimRequest r;
    const absl::string_view time_field = absl::StripAsciiWhitespace(fields[time_col]);
    bool ok = azure ? ParseDateTime(std::string(time_field), &r.arrival_s) : absl::SimpleAtod(time_field, &r.arrival_s);
    if (!ok) return absl::InvalidArgumentError(absl::StrCat(where, ": bad time \"", std::string(time_field), "\""));
    double prompt = 0, output = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(fields[prompt_col]), &prompt) ||
        !absl::SimpleAtod(absl::StripAsciiWhitespace(fields[output_col]), &output)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": bad token count"));
    }
    r.prompt_len = RoundLength(prompt);
    r.output_len = RoundLength(output);
    requests.push_back(r);
  }
  return Finish(std::move(requests), name, options);
}

absl::StatusOr<Workload> LoadTrace(const std::string& path, const TraceOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open trace"));
  std::ostringstream text;
  text << in.rdbuf();
  return ParseTrace(text.str(), path, options);
}

}  // namespace tandem::sim
