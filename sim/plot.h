// Attainment-against-rate curves of a few placements from a search, and their rendering as an SVG
// (hand-written text, no library) and as JSON data the plot can be redrawn from.
//
// The curves use EvaluateRate on the search's own workloads, so every point of every curve sees the
// same requests (common random numbers). Output is deterministic: fixed number formatting, and the
// curves do not depend on the number of threads.
//
// Thread safety: the free functions are reentrant; AttainmentCurves runs simulations on its own threads.
#ifndef TANDEM_SIM_PLOT_H_
#define TANDEM_SIM_PLOT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sim/search.h"
#include "sim/workload.h"

namespace tandem::sim {

struct CurvePoint {
  double per_gpu_rate = 0.0;     // req/s/GPU
  double attainment = 0.0;       // joint (Summary::attainment), a fraction
  double attainment_ttft = 0.0;  // fraction meeting the TTFT SLO
  double attainment_tpot = 0.0;  // fraction meeting the TPOT SLO
};

struct AttainmentCurve {
  Placement placement;
  double per_gpu_goodput = 0.0;  // from the search; meaningless when pruned
  bool pruned = false;           // the search did not simulate it (per_gpu_bound is all it knows)
  double per_gpu_bound = 0.0;    // its rate bound per GPU
  std::vector<CurvePoint> points;  // rising rate
};

struct AttainmentPlot {
  std::string title;
  double target = 0.9;  // attainment target, a fraction: drawn as a dashed line
  std::vector<AttainmentCurve> curves;
};

struct CurveOptions {
  int top = 3;                     // best disaggregated placements (pruned ones skipped)
  bool include_colocated = false;  // also the best colocated placement, pruned or not (the baseline)
  int num_points = 16;             // rates k * max_rate / num_points, k = 1 .. num_points
  // max_rate = max_rate_factor * the highest per-GPU goodput among the chosen placements, or
  // fallback_max_rate (req/s/GPU) when none has a positive goodput.
  double max_rate_factor = 1.5;
  double fallback_max_rate = 5.0;
  int num_threads = 1;
};

// The placements to draw, from `results` as SearchPlacements orders them (best first): the first
// `options.top` disaggregated ones that were simulated, then the first colocated one.
std::vector<GoodputResult> ChooseCurvePlacements(const std::vector<GoodputResult>& results,
                                                 const CurveOptions& options);

// Simulates each chosen placement at every rate of the grid. InvalidArgument for a bad option.
absl::StatusOr<std::vector<AttainmentCurve>> AttainmentCurves(const SimSetup& setup,
                                                              const std::vector<Workload>& seeds,
                                                              const std::vector<GoodputResult>& chosen,
                                                              const CurveOptions& options);

// The plot as an SVG document: x = per-GPU rate, y = attainment (%), a polyline with point markers
// per curve (each marker's <title> holds its numbers), a legend with each placement and its goodput,
// a dashed line at the target, axis ticks and labels, and the title.
std::string AttainmentPlotSvg(const AttainmentPlot& plot);

// The plot's data as JSON: title, target and, per curve, placement, GPUs, goodput and the points.
std::string AttainmentPlotJson(const AttainmentPlot& plot);

// Where WriteAttainmentPlot puts the data of an SVG at `svg_path`: ".svg" replaced by ".json", or
// ".json" appended.
std::string PlotDataPath(const std::string& svg_path);

// Writes the SVG to `svg_path` and its data to PlotDataPath(svg_path). An error names the file.
absl::Status WriteAttainmentPlot(const std::string& svg_path, const AttainmentPlot& plot);

}  // namespace tandem::sim

#endif  // TANDEM_SIM_PLOT_H_
