#include "sim/sim_command.h"

#include <sstream>

#include "gtest/gtest.h"

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
  for (const char* flag : {"--mode", "--rate", "--gpus", "--placement_policy", "--trace", "--tpot_definition",
                           "--prefill_backpressure", "--output_records"}) {
    EXPECT_NE(out.find(flag), std::string::npos) << flag;
  }
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

TEST(SimCommandTest, SmallSearch) {
  std::string out, err;
  ASSERT_EQ(RunCommand({"--mode=search", "--gpus=2", "--num_requests=200", "--seeds=1", "--tolerance=0.2",
                 "--include_colocated", "--threads=1", "--progress=false"},
                &out, &err),
            0)
      << err;
  EXPECT_NE(out.find("Best config:"), std::string::npos);
  EXPECT_NE(out.find("xColocated(tp1)"), std::string::npos);
}

}  // namespace
}  // namespace tandem::sim
