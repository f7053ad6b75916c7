#include "sim/plot.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "sim/profiles.h"
#include "sim/testing/distserve_setup.h"

namespace tandem::sim {
namespace {

using fixtures::DistServeSetup;
using fixtures::ShareGptSeeds;

size_t Count(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++count;
  return count;
}

AttainmentPlot TwoCurves() {
  AttainmentPlot plot;
  plot.title = "opt-13b <test> & co";
  plot.target = 0.9;
  AttainmentCurve disaggregated;
  disaggregated.placement = {.prefill_tp = 2, .num_prefill = 1, .num_decode = 1};
  disaggregated.per_gpu_goodput = 1.5;
  disaggregated.points = {{0.5, 1.0, 1.0, 1.0}, {1.0, 0.97, 0.97, 1.0}, {1.5, 0.91, 0.92, 0.99}, {2.0, 0.4, 0.4, 0.9}};
  AttainmentCurve colocated;
  colocated.placement = {.colocated_tp = 1, .num_colocated = 2};
  colocated.pruned = true;
  colocated.per_gpu_bound = 1.25;
  colocated.points = {{0.5, 0.9, 0.9, 1.0}, {1.0, 0.5, 0.5, 0.95}, {1.5, 0.1, 0.1, 0.9}, {2.0, 0.0, 0.0, 0.8}};
  plot.curves = {disaggregated, colocated};
  return plot;
}

TEST(PlotTest, SvgHasOnePolylinePerCurveAndALegend) {
  const AttainmentPlot plot = TwoCurves();
  const std::string svg = AttainmentPlotSvg(plot);
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  EXPECT_EQ(Count(svg, "<polyline"), 2u);
  EXPECT_EQ(Count(svg, "<circle"), 2u * 4 + 2);  // markers, and one per legend entry
  EXPECT_NE(svg.find("1P(tp2)+1D(tp1): goodput 1.500 req/s/GPU"), std::string::npos);
  EXPECT_NE(svg.find("2xColocated(tp1): pruned (bound 1.250 req/s/GPU)"), std::string::npos);
  EXPECT_NE(svg.find("opt-13b &lt;test&gt; &amp; co"), std::string::npos);  // title, escaped
  EXPECT_NE(svg.find("stroke-dasharray=\"6,4\""), std::string::npos);       // the target line
  EXPECT_NE(svg.find("target 90%"), std::string::npos);
  EXPECT_NE(svg.find("Per-GPU rate (req/s/GPU)"), std::string::npos);
  EXPECT_EQ(Count(svg, "<svg"), 1u);
  EXPECT_EQ(Count(svg, "<g "), Count(svg, "</g>"));
  EXPECT_EQ(AttainmentPlotSvg(plot), svg);  // deterministic
}

TEST(PlotTest, JsonCarriesThePoints) {
  const std::string json = AttainmentPlotJson(TwoCurves());
  EXPECT_NE(json.find("\"placement\": \"1P(tp2)+1D(tp1)\""), std::string::npos);
  EXPECT_NE(json.find("\"per_gpu_goodput\": null"), std::string::npos);  // the pruned one
  EXPECT_NE(json.find("\"rate\": 3.0"), std::string::npos);              // 1.5 req/s/GPU x 2 GPUs
  EXPECT_EQ(Count(json, "\"per_gpu_rate\""), 8u);
}

TEST(PlotTest, DataPathSitsBesideTheSvg) {
  EXPECT_EQ(PlotDataPath("/tmp/plot.svg"), "/tmp/plot.json");
  EXPECT_EQ(PlotDataPath("plot"), "plot.json");
  EXPECT_EQ(PlotDataPath(".svg"), ".svg.json");
}

TEST(PlotTest, WritesBothFilesAndNamesABadPath) {
  const std::string path = ::testing::TempDir() + "/plot_test.svg";
  ASSERT_TRUE(WriteAttainmentPlot(path, TwoCurves()).ok());
  std::ifstream svg(path), json(PlotDataPath(path));
  std::stringstream svg_text, json_text;
  svg_text << svg.rdbuf();
  json_text << json.rdbuf();
  EXPECT_EQ(svg_text.str(), AttainmentPlotSvg(TwoCurves()));
  EXPECT_EQ(json_text.str(), AttainmentPlotJson(TwoCurves()));

  const absl::Status bad = WriteAttainmentPlot("/nonexistent-dir/plot.svg", TwoCurves());
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("/nonexistent-dir/plot.svg"), std::string::npos) << bad;
}

TEST(PlotTest, ChoosesTheBestDisaggregatedAndTheBestColocated) {
  auto result = [](Placement p, double goodput, bool pruned) {
    GoodputResult r;
    r.placement = p;
    r.per_gpu_goodput = goodput;
    r.pruned = pruned;
    return r;
  };
  const std::vector<GoodputResult> results = {
      result({.prefill_tp = 2, .num_prefill = 1, .num_decode = 1}, 2.0, false),
      result({.colocated_tp = 1, .num_colocated = 1}, 1.5, false),
      result({.prefill_tp = 2, .num_prefill = 1, .num_decode = 2}, 1.0, false),
      result({.colocated_tp = 1, .num_colocated = 2}, 0.5, false),
      result({.prefill_tp = 1, .num_prefill = 1, .num_decode = 1}, 0.0, true),
  };
  std::vector<GoodputResult> chosen = ChooseCurvePlacements(results, {.top = 3, .include_colocated = true});
  ASSERT_EQ(chosen.size(), 3u);  // the pruned disaggregated one is left out
  EXPECT_EQ(chosen[0].placement.Label(), "1P(tp2)+1D(tp1)");
  EXPECT_EQ(chosen[1].placement.Label(), "1P(tp2)+2D(tp1)");
  EXPECT_EQ(chosen[2].placement.Label(), "1xColocated(tp1)");
  chosen = ChooseCurvePlacements(results, {.top = 1, .include_colocated = false});
  ASSERT_EQ(chosen.size(), 1u);
  EXPECT_EQ(chosen[0].placement.Label(), "1P(tp2)+1D(tp1)");
}

// The curve of a simple placement starts near 100% at a low rate and ends below the target at 1.5x
// its goodput, falling (nearly) all the way; the curves do not depend on the thread count.
TEST(PlotTest, CurveFallsThroughTheTarget) {
  const SimSetup setup = DistServeSetup();
  const std::vector<Workload> seeds = ShareGptSeeds(300, 1);
  const Placement p{.prefill_tp = 2, .num_prefill = 1, .num_decode = 1};
  GoodputResult found = *FindGoodput(setup, p, seeds, {.max_per_gpu_rate = 5, .tolerance = 0.02});
  ASSERT_GT(found.per_gpu_goodput, 0.5);
  CurveOptions options{.top = 1, .num_threads = 1};
  const std::vector<AttainmentCurve> curves = *AttainmentCurves(setup, seeds, {found}, options);
  ASSERT_EQ(curves.size(), 1u);
  const std::vector<CurvePoint>& points = curves[0].points;
  ASSERT_EQ(points.size(), 16u);
  EXPECT_NEAR(points.front().per_gpu_rate, 1.5 * found.per_gpu_goodput / 16, 1e-12);
  EXPECT_NEAR(points.back().per_gpu_rate, 1.5 * found.per_gpu_goodput, 1e-12);
  EXPECT_GE(points.front().attainment, 0.95);
  EXPECT_LT(points.back().attainment, setup.slo.target);
  for (size_t k = 1; k < points.size(); ++k) {
    EXPECT_LE(points[k].attainment, points[k - 1].attainment + 0.02) << "point " << k;
  }
  options.num_threads = 3;
  const std::vector<AttainmentCurve> threaded = *AttainmentCurves(setup, seeds, {found}, options);
  for (size_t k = 0; k < points.size(); ++k) EXPECT_EQ(threaded[0].points[k].attainment, points[k].attainment);

  EXPECT_FALSE(AttainmentCurves(setup, seeds, {found}, {.num_points = 0}).ok());
}

}  // namespace
}  // namespace tandem::sim
