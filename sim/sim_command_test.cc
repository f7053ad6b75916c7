#include "sim/sim_command.h"

#include <unistd.h>

#include <fstream>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "sim/profiles.h"

namespace tandem::sim {
namespace {

int RunCommand(std::vector<std::string> args, std::string* out, std::string* err) {
  std::ostringstream o, e;
  const int code = RunSimCommand(args, o, e);
  *out = o.str();
  *err = e.str();
  return code;
}

TEST(SimCommandTest, HelpDocumentsEveryFlag) {
  std::string out, err;
  EXPECT_EQ(RunCommand({"--help"}, &out, &err), 0);
  for (const char* flag : {"--mode", "--rate", "--gpus", "--placement-policy", "--trace", "--tpot-definition",
                           "--prefill-backpressure", "--output-records", "--prune", "--prune-slack", "--plot-svg",
                           "--plot-top"}) {
    EXPECT_NE(out.find(flag), std::string::npos) << flag;
  }
  // One flag style: the help spells every flag with dashes.
  EXPECT_EQ(out.find("--prune_slack"), std::string::npos);
}

TEST(SimCommandTest, DashesAndTheOldUnderscoresAreTheSameFlag) {
  std::string out, err;
  EXPECT_EQ(RunCommand({"--mode=search", "--prune-slack=-1"}, &out, &err), 2);
  EXPECT_NE(err.find("--prune-slack"), std::string::npos) << err;
  EXPECT_EQ(RunCommand({"--mode=search", "--prune_slack=-1"}, &out, &err), 2);
  EXPECT_NE(err.find("--prune-slack"), std::string::npos) << err;
}

TEST(SimCommandTest, BadFlagsExitTwoNamingTheFlag) {
  std::string out, err;
  EXPECT_EQ(RunCommand({"--bogus=1"}, &out, &err), 2);
  EXPECT_NE(err.find("--bogus"), std::string::npos);
  EXPECT_EQ(RunCommand({"--rate=abc"}, &out, &err), 2);
  EXPECT_NE(err.find("--rate"), std::string::npos);
  EXPECT_EQ(RunCommand({"--rate=1", "--placement_policy=fastest"}, &out, &err), 2);
  EXPECT_NE(err.find("fastest"), std::string::npos);
}

TEST(SimCommandTest, SimulatePrintsSummaryAndWritesRecords) {
  std::string out, err;
  const std::string records = ::testing::TempDir() + "/sim_command_test.jsonl";
  ASSERT_EQ(RunCommand({"--rate=2", "--num_requests=200", "--seeds=1", "--prefill_tp=2",
                 "--output_records=" + records},
                &out, &err),
            0)
      << err;
  EXPECT_NE(out.find("Serving Benchmark Result"), std::string::npos);
  EXPECT_NE(out.find("Attainment both (%):"), std::string::npos);
  EXPECT_NE(out.find("1P(tp2)+1D(tp1)"), std::string::npos);
}

TEST(SimCommandTest, PipelinedDecodeInstance) {
  std::string out, err;
  ASSERT_EQ(RunCommand({"--rate=2", "--num-requests=100", "--seeds=1", "--prefill-tp=2", "--decode-pp=2"}, &out, &err), 0)
      << err;
  EXPECT_NE(out.find("1P(tp2)+1D(tp1,pp2)"), std::string::npos) << out;
  EXPECT_EQ(RunCommand({"--rate=2", "--decode-pp=2", "--decode-micro-batches=3"}, &out, &err), 2);
  EXPECT_NE(err.find("--decode-micro-batches"), std::string::npos) << err;
  EXPECT_EQ(RunCommand({"--rate=2", "--decode-pp=0"}, &out, &err), 2);
  EXPECT_NE(err.find("--decode-pp"), std::string::npos) << err;
}

// `flag` (dashes) on top of `base` runs for each of `good` and exits 2 naming the flag for each of `bad`.
void ExpectFlagValues(const std::vector<std::string>& base, const std::string& flag,
                      std::vector<std::string> good, std::vector<std::string> bad) {
  std::string out, err;
  const auto with = [&](const std::string& value, bool short_run) {
    std::vector<std::string> args = base;
    if (short_run) args.insert(args.end(), {"--num-requests=50", "--seeds=1"});
    args.push_back("--" + flag + "=" + value);
    return RunCommand(args, &out, &err);
  };
  for (const std::string& value : good) EXPECT_EQ(with(value, true), 0) << flag << "=" << value << ": " << err;
  for (const std::string& value : bad) {
    EXPECT_EQ(with(value, false), 2) << flag << "=" << value;
    EXPECT_NE(err.find("--" + flag), std::string::npos) << err;
  }
}

TEST(SimCommandTest, ColocatedMaxPaddingsIsAutoMinusOneOrACount) {
  ExpectFlagValues({"--rate=1", "--num-colocated=1"}, "colocated-max-paddings", {"auto", "-1", "0", "256"},
                   {"-3", "lots"});
}

TEST(SimCommandTest, DecodeWaitingBlockFractionIsAutoOrAFraction) {
  ExpectFlagValues({"--rate=2", "--prefill-tp=2"}, "decode-waiting-block-fraction", {"auto", "0", "0.05", "1"},
                   {"-0.1", "1.5", "half"});
}

TEST(SimCommandTest, DistServeStepLoopNeedsDistServesScheduler) {
  ExpectFlagValues({"--rate=2", "--prefill-tp=2", "--decode-pp=2"}, "distserve-step-loop", {"true", "false"},
                   {"maybe"});
  std::string out, err;
  EXPECT_NE(RunCommand({"--rate=2", "--num-requests=50", "--distserve-step-loop", "--decode-waiting-block-fraction=0"},
                       &out, &err),
            0);
  EXPECT_NE(err.find("--distserve-step-loop: the decode instances do not run DistServe's scheduler"), std::string::npos)
      << err;
}

TEST(SimCommandTest, SmallSearch) {
  std::string out, err;
  ASSERT_EQ(RunCommand({"--mode=search", "--gpus=2", "--num_requests=200", "--seeds=1", "--tolerance=0.2",
                 "--include_colocated", "--threads=1", "--progress=false"},
                &out, &err),
            0)
      << err;
  // Two GPUs of OPT-13B cannot meet 200 ms TTFT / 100 ms TPOT for 90%: the search says so instead of
  // naming a "best" placement at 0 req/s.
  EXPECT_EQ(out.find("Best config:"), std::string::npos) << out;
  EXPECT_NE(out.find("No placement meets the SLOs"), std::string::npos) << out;
  EXPECT_NE(out.find("xColocated(tp1)"), std::string::npos);
  EXPECT_NE(out.find("Assumed: model opt-13b, profiles distserve-a100, SLOs TTFT <= 200 ms and TPOT <= 100 ms"),
            std::string::npos)
      << out;
}

TEST(SimCommandTest, SmallSearchWithReachableSlos) {
  std::string out, err;
  ASSERT_EQ(RunCommand({"--mode=search", "--gpus=2", "--num_requests=200", "--seeds=1", "--tolerance=0.2",
                        "--threads=1", "--progress=true", "--ttft_slo_ms=5000", "--tpot_slo_ms=1000"},
                       &out, &err),
            0)
      << err;
  EXPECT_NE(out.find("Best config:"), std::string::npos) << out;
  EXPECT_EQ(out.find("No placement meets"), std::string::npos) << out;
  // --progress, but stderr is not a terminal (ctest, CI): no bar in the log.
  if (!isatty(STDERR_FILENO)) EXPECT_EQ(err.find("placements"), std::string::npos) << err;
}

TEST(SimCommandTest, RateSweepMatchesSingleRunsAndWritesEachSummary) {
  std::string out, err;
  const std::string summary = ::testing::TempDir() + "/sim_command_sweep.json";
  ASSERT_EQ(RunCommand({"--rates=1,40", "--num_requests=300", "--seeds=1", "--prefill_tp=2",
                        "--output_summary=" + summary},
                       &out, &err),
            0)
      << err;
  EXPECT_NE(out.find("Rate Sweep"), std::string::npos) << out;
  EXPECT_NE(out.find("Goodput (req/s, attainment >= 90%):      1.00"), std::string::npos) << out;
  EXPECT_NE(out.find("(below target)"), std::string::npos) << out;
  std::ifstream in(summary);
  std::stringstream json;
  json << in.rdbuf();
  EXPECT_NE(json.str().find("\"request_rate\": 40"), std::string::npos) << json.str();

  // The sweep's row at 1 req/s is the single run at 1 req/s.
  std::string single;
  ASSERT_EQ(RunCommand({"--rate=1", "--num_requests=300", "--seeds=1", "--prefill_tp=2"}, &single, &err), 0) << err;
  const size_t at = single.find("Attainment both (%):");
  ASSERT_NE(at, std::string::npos);
  const std::string both = single.substr(at + 40, single.find('\n', at) - at - 40);
  const size_t row = out.find("\n1.00 ");
  ASSERT_NE(row, std::string::npos) << out;
  EXPECT_NE(out.substr(row, 40).find(both.substr(0, both.find(' '))), std::string::npos)
      << "sweep row: " << out.substr(row, 40) << " single: " << both;

  EXPECT_EQ(RunCommand({"--rates=1,x"}, &out, &err), 2);
  EXPECT_NE(err.find("--rates"), std::string::npos);
}

TEST(SimCommandTest, GoodputPolicyRejectsWithTheReasonUnlessBestEffort) {
  std::string out, err;
  ASSERT_EQ(RunCommand({"--rate=1", "--num_requests=100", "--seeds=1", "--placement_policy=goodput",
                        "--ttft_slo_ms=1"},
                       &out, &err),
            0)
      << err;
  EXPECT_NE(err.find("the policy rejected 100 of 100 requests, e.g.:\n  predicted TTFT"), std::string::npos) << err;
  ASSERT_EQ(RunCommand({"--rate=1", "--num_requests=100", "--seeds=1", "--placement_policy=goodput",
                        "--ttft_slo_ms=1", "--best_effort"},
                       &out, &err),
            0)
      << err;
  EXPECT_EQ(err.find("rejected"), std::string::npos) << err;
}

TEST(SimCommandTest, ProfileFileOfAnotherModel) {
  const std::string path = ::testing::TempDir() + "/sim_command_profile.json";
  const auto write = [&path](const std::string& kv) {
    std::ofstream(path) << "{\"model\": \"toy\", \"gpu\": \"cpu\", \"engine\": \"tandem\", \"tp\": 1, "
                           "\"prefill\": {\"a\": 2, \"b\": 0.05, \"c\": 0}, "
                           "\"decode_small\": {\"a\": 1, \"b\": 0.001, \"c\": 0.1}, "
                           "\"decode_large\": {\"a\": 1, \"b\": 0.001, \"c\": 0.1}, \"bs_threshold\": 8"
                        << kv << "}";
  };
  std::string out, err;
  write(", \"kv_transfer\": {\"kv_bytes_per_token\": 4096, \"bandwidth_bytes_per_s\": 1e9, \"latency_ms\": 0.5}");
  // --model left empty: the profile's only model.
  ASSERT_EQ(RunCommand({"--rate=5", "--num_requests=100", "--seeds=1", "--profiles=" + path}, &out, &err), 0) << err;
  EXPECT_NE(out.find("Successful requests:                     100"), std::string::npos) << out;
  EXPECT_EQ(RunCommand({"--rate=5", "--profiles=" + path, "--model=other"}, &out, &err), 2);
  EXPECT_NE(err.find("other"), std::string::npos) << err;
  write("");  // no KV bytes per token anywhere
  EXPECT_EQ(RunCommand({"--rate=5", "--profiles=" + path}, &out, &err), 2);
  EXPECT_NE(err.find("--kv-bytes-per-token"), std::string::npos) << err;
  EXPECT_EQ(RunCommand({"--rate=5", "--num_requests=50", "--seeds=1", "--profiles=" + path, "--kv_bytes_per_token=4096"},
                       &out, &err),
            0)
      << err;
}

TEST(SimCommandTest, SearchPrunesAndPlots) {
  std::string out, err;
  const std::string svg = ::testing::TempDir() + "/sim_command_test_plot.svg";
  const std::string summary = ::testing::TempDir() + "/sim_command_test_search.json";
  ASSERT_EQ(RunCommand({"--mode=search", "--gpus=3", "--num_requests=200", "--seeds=1", "--tolerance=0.1",
                        "--include_colocated", "--threads=2", "--progress=false", "--plot_svg=" + svg,
                        "--plot_top=2", "--output_summary=" + summary},
                       &out, &err),
            0)
      << err;
  EXPECT_NE(out.find("Pruned "), std::string::npos) << out;
  EXPECT_NE(out.find("bound/GPU"), std::string::npos) << out;
  EXPECT_NE(out.find("Plot: " + svg), std::string::npos) << out;
  std::ifstream in(svg);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str().rfind("<svg", 0), 0u);
  EXPECT_NE(text.str().find("Colocated"), std::string::npos);
  std::ifstream data(::testing::TempDir() + "/sim_command_test_plot.json");
  EXPECT_TRUE(data.good());
  std::ifstream table(summary);
  std::stringstream table_text;
  table_text << table.rdbuf();
  EXPECT_NE(table_text.str().find("\"per_gpu_bound\""), std::string::npos);

  // Without pruning: the same best config.
  std::string plain;
  ASSERT_EQ(RunCommand({"--mode=search", "--gpus=3", "--num_requests=200", "--seeds=1", "--tolerance=0.1",
                        "--include_colocated", "--threads=2", "--progress=false", "--prune=false"},
                       &plain, &err),
            0)
      << err;
  const auto best_line = [](const std::string& text) {
    const size_t at = text.find("Best config:");
    return at == std::string::npos ? std::string() : text.substr(at, text.find('\n', at) - at);
  };
  EXPECT_FALSE(best_line(out).empty());
  EXPECT_EQ(best_line(plain), best_line(out));
}

TEST(SimCommandTest, BadPlotPathFailsBeforeSearching) {
  std::string out, err;
  EXPECT_EQ(RunCommand({"--mode=search", "--gpus=2", "--num_requests=100", "--seeds=1", "--progress=false",
                        "--plot_svg=/nonexistent-dir/plot.svg"},
                       &out, &err),
            1);
  EXPECT_NE(err.find("--plot-svg: /nonexistent-dir/plot.svg: cannot open for writing"), std::string::npos) << err;
  EXPECT_EQ(out.find("Best config"), std::string::npos);
  EXPECT_EQ(RunCommand({"--mode=search", "--prune_slack=-1"}, &out, &err), 2);
  EXPECT_NE(err.find("--prune-slack"), std::string::npos) << err;
}

TEST(SimCommandTest, CorrectionFactorsScaleStepTimes) {
  absl::StatusOr<std::vector<policy::LatencyModel>> profiles = BuiltinProfiles("distserve-a100");
  ASSERT_TRUE(profiles.ok()) << profiles.status();
  const policy::LatencyModel& m = profiles->front();
  absl::StatusOr<policy::LatencyModel> c = WithCorrection(m, 1.5, 2.0);
  ASSERT_TRUE(c.ok()) << c.status();
  const std::vector<int64_t> prompt = {512};
  // Everything but the per-context-token overhead (DistServe's ray overhead, shared by both phases).
  const double per_token = m.params().overhead_per_ctx_token_ms;
  ASSERT_GT(per_token, 0);
  const auto scaled = [per_token](double ms, double tokens, double factor) {
    return factor * (ms - per_token * tokens) + per_token * tokens;
  };
  EXPECT_NEAR(c->PrefillMs(prompt), scaled(m.PrefillMs(prompt), 512, 1.5), 1e-9);
  EXPECT_NEAR(c->DecodeStepMs(8, 4096), scaled(m.DecodeStepMs(8, 4096), 4096, 2.0), 1e-9);
  EXPECT_NEAR(c->DecodeStepMs(128, 65536), scaled(m.DecodeStepMs(128, 65536), 65536, 2.0), 1e-9);
  EXPECT_EQ(c->KvTransferMs(1e6), m.KvTransferMs(1e6));

  // Through the command: slower decode steps, higher TPOT; a bad factor names both flags.
  std::string plain, slow, err;
  ASSERT_EQ(RunCommand({"--rate=1", "--num_requests=200", "--seeds=1", "--prefill_tp=2"}, &plain, &err), 0) << err;
  ASSERT_EQ(RunCommand({"--rate=1", "--num_requests=200", "--seeds=1", "--prefill_tp=2", "--decode_correction=2"},
                       &slow, &err),
            0)
      << err;
  const auto mean_tpot = [](const std::string& text) {
    const size_t at = text.find("Mean TPOT (ms):");
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + 40, 12));
  };
  EXPECT_GT(mean_tpot(slow), 1.8 * mean_tpot(plain)) << plain << slow;
  EXPECT_EQ(RunCommand({"--rate=1", "--prefill_correction=0"}, &plain, &err), 2);
  EXPECT_NE(err.find("--prefill-correction"), std::string::npos) << err;
}

}  // namespace
// A trace is replayed whole: --num-requests' synthetic default (2000) no longer truncates a longer one
// silently (issue 13); set explicitly, it still takes the first N.
TEST(SimCommandTest, TraceIsReplayedWholeUnlessNumRequestsIsGiven) {
  const std::string trace = ::testing::TempDir() + "/sim_command_long_trace.csv";
  {
    std::ofstream f(trace);
    f << "arrival_s,prompt_len,output_len\n";
    for (int i = 0; i < 2500; ++i) f << 0.01 * i << "," << 50 + i % 100 << "," << 5 + i % 20 << "\n";
  }
  const auto records_of = [&](std::vector<std::string> args) {
    const std::string records = ::testing::TempDir() + "/sim_command_long_trace.jsonl";
    args.insert(args.end(), {"--trace=" + trace, "--prefill_tp=2", "--output_records=" + records});
    std::string out, err;
    EXPECT_EQ(RunCommand(args, &out, &err), 0) << err;
    std::ifstream in(records);
    int lines = 0;
    for (std::string line; std::getline(in, line);) lines += line.empty() ? 0 : 1;
    return lines;
  };
  EXPECT_EQ(records_of({}), 2500);
  EXPECT_EQ(records_of({"--num_requests=100"}), 100);
}

}  // namespace tandem::sim
