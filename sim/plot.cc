#include "sim/plot.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace tandem::sim {
namespace {

// Canvas and plot area, px.
constexpr double kWidth = 1000, kHeight = 500;
constexpr double kLeft = 72, kRight = 600, kTop = 52, kBottom = 430;
constexpr double kLegendX = 624, kLegendY = 70, kLegendRow = 22;
constexpr const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                   "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A round tick step giving about `ticks` intervals over [0, span]: 1, 2 or 5 times a power of ten.
double NiceStep(double span, int ticks) {
  const double raw = span / ticks;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / magnitude;
  const double nice = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
  return nice * magnitude;
}

// Enough decimals to tell ticks `step` apart (0 to 3).
int TickDecimals(double step) {
  int decimals = 0;
  while (decimals < 3 && step * std::pow(10.0, decimals) < 0.999) ++decimals;
  return decimals;
}

std::string Legend(const AttainmentCurve& curve) {
  if (curve.pruned) {
    return absl::StrFormat("%s: pruned (bound %.3f req/s/GPU)", curve.placement.Label(), curve.per_gpu_bound);
  }
  return absl::StrFormat("%s: goodput %.3f req/s/GPU", curve.placement.Label(), curve.per_gpu_goodput);
}

absl::Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot open for writing"));
  out << text;
  out.close();
  return out ? absl::OkStatus() : absl::DataLossError(absl::StrCat(path, ": write failed"));
}

}  // namespace

std::vector<GoodputResult> ChooseCurvePlacements(const std::vector<GoodputResult>& results,
                                                 const CurveOptions& options) {
  std::vector<GoodputResult> chosen;
  for (const GoodputResult& r : results) {
    if (static_cast<int>(chosen.size()) >= options.top) break;
    if (r.placement.num_colocated == 0 && !r.pruned) chosen.push_back(r);
  }
  if (options.include_colocated) {
    for (const GoodputResult& r : results) {
      if (r.placement.num_colocated > 0) {
        chosen.push_back(r);
        break;
      }
    }
  }
  return chosen;
}

absl::StatusOr<std::vector<AttainmentCurve>> AttainmentCurves(const SimSetup& setup,
                                                              const std::vector<Workload>& seeds,
                                                              const std::vector<GoodputResult>& chosen,
                                                              const CurveOptions& options) {
  if (options.num_points < 1) {
    return absl::InvalidArgumentError(absl::StrCat("plot: num_points ", options.num_points, " must be >= 1"));
  }
  if (!(options.max_rate_factor > 0) || !(options.fallback_max_rate > 0)) {
    return absl::InvalidArgumentError("plot: max_rate_factor and fallback_max_rate must be > 0");
  }
  double best = 0.0;
  for (const GoodputResult& r : chosen) {
    if (!r.pruned) best = std::max(best, r.per_gpu_goodput);
  }
  const double max_rate = best > 0 ? options.max_rate_factor * best : options.fallback_max_rate;

  std::vector<AttainmentCurve> curves(chosen.size());
  for (size_t c = 0; c < chosen.size(); ++c) {
    curves[c].placement = chosen[c].placement;
    curves[c].per_gpu_goodput = chosen[c].per_gpu_goodput;
    curves[c].pruned = chosen[c].pruned;
    curves[c].per_gpu_bound = chosen[c].bound.rate / chosen[c].placement.NumGpus();
    curves[c].points.resize(options.num_points);
  }
  // One task per (curve, point); each writes only its own slot, so the result is thread-independent.
  const size_t num_tasks = chosen.size() * static_cast<size_t>(options.num_points);
  std::vector<absl::Status> errors(num_tasks);
  std::atomic<size_t> next{0};
  auto worker = [&]() {
    for (size_t t = next++; t < num_tasks; t = next++) {
      const size_t c = t / options.num_points;
      const int k = static_cast<int>(t % options.num_points) + 1;
      const double per_gpu = max_rate * k / options.num_points;
      absl::StatusOr<Summary> summary =
          EvaluateRate(setup, chosen[c].placement, seeds, per_gpu * chosen[c].placement.NumGpus());
      if (!summary.ok()) {
        errors[t] = summary.status();
        continue;
      }
      curves[c].points[k - 1] = {.per_gpu_rate = per_gpu,
                                 .attainment = summary->attainment,
                                 .attainment_ttft = summary->attainment_ttft,
                                 .attainment_tpot = summary->attainment_tpot};
    }
  };
  const int threads = std::max(1, std::min<int>(options.num_threads, static_cast<int>(num_tasks)));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& thread : pool) thread.join();
  for (const absl::Status& error : errors) {
    if (!error.ok()) return error;
  }
  return curves;
}

std::string AttainmentPlotSvg(const AttainmentPlot& plot) {
  double max_rate = 0.0;
  for (const AttainmentCurve& curve : plot.curves) {
    for (const CurvePoint& p : curve.points) max_rate = std::max(max_rate, p.per_gpu_rate);
  }
  if (!(max_rate > 0)) max_rate = 1.0;
  auto x = [&](double rate) { return kLeft + rate / max_rate * (kRight - kLeft); };
  auto y = [&](double fraction) { return kBottom - fraction * (kBottom - kTop); };

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n",
      kWidth, kHeight, kWidth, kHeight);
  absl::StrAppendFormat(&svg, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", kWidth, kHeight);
  absl::StrAppendFormat(&svg, "<text x=\"%.2f\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">%s</text>\n",
                        kWidth / 2, Escape(plot.title));

  // Grid, ticks and tick labels: y every 10 %, x at round steps.
  svg += "<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n";
  for (int percent = 10; percent <= 100; percent += 10) {
    absl::StrAppendFormat(&svg, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", kLeft, y(percent / 100.0),
                          kRight, y(percent / 100.0));
  }
  const double step = NiceStep(max_rate, 6);
  const int decimals = TickDecimals(step);
  const int num_x_ticks = static_cast<int>(std::floor(max_rate / step + 1e-9));
  for (int i = 1; i <= num_x_ticks; ++i) {
    absl::StrAppendFormat(&svg, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x(i * step), kTop,
                          x(i * step), kBottom);
  }
  svg += "</g>\n";
  svg += "<g stroke=\"black\" stroke-width=\"1\">\n";
  absl::StrAppendFormat(&svg, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", kLeft, kBottom, kRight,
                        kBottom);
  absl::StrAppendFormat(&svg, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", kLeft, kTop, kLeft, kBottom);
  for (int percent = 0; percent <= 100; percent += 10) {
    absl::StrAppendFormat(&svg, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", kLeft - 5,
                          y(percent / 100.0), kLeft, y(percent / 100.0));
  }
  for (int i = 0; i <= num_x_ticks; ++i) {
    absl::StrAppendFormat(&svg, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x(i * step), kBottom,
                          x(i * step), kBottom + 5);
  }
  svg += "</g>\n";
  for (int percent = 0; percent <= 100; percent += 10) {
    absl::StrAppendFormat(&svg, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%d</text>\n", kLeft - 8,
                          y(percent / 100.0) + 4, percent);
  }
  for (int i = 0; i <= num_x_ticks; ++i) {
    absl::StrAppendFormat(&svg, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%.*f</text>\n", x(i * step),
                          kBottom + 20, decimals, i * step);
  }
  absl::StrAppendFormat(&svg, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">Per-GPU rate (req/s/GPU)</text>\n",
                        (kLeft + kRight) / 2, kBottom + 45);
  absl::StrAppendFormat(&svg,
                        "<text x=\"20\" y=\"%.2f\" text-anchor=\"middle\" transform=\"rotate(-90 20 %.2f)\">"
                        "SLO attainment, both TTFT and TPOT (%%)</text>\n",
                        (kTop + kBottom) / 2, (kTop + kBottom) / 2);

  // The target.
  absl::StrAppendFormat(&svg,
                        "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#555555\" stroke-width=\"1.5\" "
                        "stroke-dasharray=\"6,4\"/>\n",
                        kLeft, y(plot.target), kRight, y(plot.target));
  absl::StrAppendFormat(&svg, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" fill=\"#555555\">target %.0f%%</text>\n",
                        kRight - 4, y(plot.target) - 6, 100 * plot.target);

  // Curves and legend.
  for (size_t c = 0; c < plot.curves.size(); ++c) {
    const AttainmentCurve& curve = plot.curves[c];
    const char* color = kColors[c % (sizeof(kColors) / sizeof(kColors[0]))];
    const std::string dash = curve.placement.num_colocated > 0 ? " stroke-dasharray=\"3,3\"" : "";
    std::string points;
    for (const CurvePoint& p : curve.points) {
      absl::StrAppendFormat(&points, "%s%.2f,%.2f", points.empty() ? "" : " ", x(p.per_gpu_rate), y(p.attainment));
    }
    absl::StrAppendFormat(&svg, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"%s\"/>\n", color,
                          dash, points);
    absl::StrAppendFormat(&svg, "<g fill=\"%s\">\n", color);
    for (const CurvePoint& p : curve.points) {
      absl::StrAppendFormat(&svg,
                            "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3.5\"><title>%s: %.3f req/s/GPU, attainment "
                            "%.1f%% (TTFT %.1f%%, TPOT %.1f%%)</title></circle>\n",
                            x(p.per_gpu_rate), y(p.attainment), Escape(curve.placement.Label()), p.per_gpu_rate,
                            100 * p.attainment, 100 * p.attainment_ttft, 100 * p.attainment_tpot);
    }
    svg += "</g>\n";
    const double row = kLegendY + kLegendRow * static_cast<double>(c);
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
                          "stroke-width=\"2\"%s/>\n",
                          kLegendX, row, kLegendX + 24, row, color, dash);
    absl::StrAppendFormat(&svg, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3.5\" fill=\"%s\"/>\n", kLegendX + 12, row, color);
    absl::StrAppendFormat(&svg, "<text x=\"%.2f\" y=\"%.2f\">%s</text>\n", kLegendX + 32, row + 4,
                          Escape(Legend(curve)));
  }
  svg += "</svg>\n";
  return svg;
}

std::string AttainmentPlotJson(const AttainmentPlot& plot) {
  nlohmann::ordered_json curves = nlohmann::ordered_json::array();
  for (const AttainmentCurve& curve : plot.curves) {
    nlohmann::ordered_json points = nlohmann::ordered_json::array();
    for (const CurvePoint& p : curve.points) {
      points.push_back({{"per_gpu_rate", p.per_gpu_rate},
                        {"rate", p.per_gpu_rate * curve.placement.NumGpus()},
                        {"attainment", p.attainment},
                        {"attainment_ttft", p.attainment_ttft},
                        {"attainment_tpot", p.attainment_tpot}});
    }
    curves.push_back({{"placement", curve.placement.Label()},
                      {"gpus", curve.placement.NumGpus()},
                      {"pruned", curve.pruned},
                      {"per_gpu_goodput", curve.pruned ? nlohmann::ordered_json(nullptr)
                                                       : nlohmann::ordered_json(curve.per_gpu_goodput)},
                      {"per_gpu_bound", curve.per_gpu_bound},
                      {"points", std::move(points)}});
  }
  nlohmann::ordered_json doc = {{"title", plot.title}, {"target", plot.target}, {"curves", std::move(curves)}};
  return doc.dump(2) + "\n";
}

std::string PlotDataPath(const std::string& svg_path) {
  const std::string suffix = ".svg";
  if (svg_path.size() > suffix.size() &&
      svg_path.compare(svg_path.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return svg_path.substr(0, svg_path.size() - suffix.size()) + ".json";
  }
  return svg_path + ".json";
}

absl::Status WriteAttainmentPlot(const std::string& svg_path, const AttainmentPlot& plot) {
  if (absl::Status s = WriteText(svg_path, AttainmentPlotSvg(plot)); !s.ok()) return s;
  return WriteText(PlotDataPath(svg_path), AttainmentPlotJson(plot));
}

}  // namespace tandem::sim
