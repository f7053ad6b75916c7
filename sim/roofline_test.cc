#include "sim/roofline.h"

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sim/sim_command.h"

namespace tandem::sim {
namespace {

// The roofline is a first-order estimate; against measured fits it should be within this factor.
constexpr double kTolerance = 0.40;

policy::LatencyModel Roofline(const std::string& model, const std::string& gpu, int tp) {
  absl::StatusOr<policy::LatencyModelParams> params =
      RooflineProfile(*BuiltinModelShape(model), *BuiltinGpuSpec(gpu), tp);
  EXPECT_TRUE(params.ok()) << params.status();
  absl::StatusOr<policy::LatencyModel> latency_model = policy::LatencyModel::Create(*params);
  EXPECT_TRUE(latency_model.ok()) << latency_model.status();
  return *latency_model;
}

TEST(RooflineTest, KvBytesPerTokenCheckValues) {
  EXPECT_EQ(BuiltinModelShape("opt-13b")->KvBytesPerToken(), 819200);
  EXPECT_EQ(BuiltinModelShape("llama-3-8b")->KvBytesPerToken(), 131072);
  EXPECT_EQ(BuiltinModelShape("llama-3-70b")->KvBytesPerToken(), 327680);
  EXPECT_EQ(Roofline("llama-3-70b", "h100-sxm", 4).params().kv_bytes_per_token, 327680);
}

TEST(RooflineTest, WeightCountsMatchPublishedModelSizes) {
  const struct {
    const char* model;
    double params;
  } kSizes[] = {{"opt-13b", 12.85e9}, {"opt-66b", 65.7e9}, {"opt-175b", 174.6e9},
                {"llama-3-8b", 8.03e9}, {"llama-3-70b", 70.55e9}};
  for (const auto& size : kSizes) {
    absl::StatusOr<ModelWeights> weights = CountWeights(*BuiltinModelShape(size.model));
    ASSERT_TRUE(weights.ok()) << weights.status();
    EXPECT_NEAR(weights->total_params / size.params, 1.0, 0.01) << size.model << ": " << weights->total_params;
    EXPECT_EQ(weights->bytes, 2 * weights->total_params) << size.model;
  }
}

// SLO_SIM.md section 2.6: DistServe's fits for OPT-13B on A100-80G, step time without the sim's
// overheads.
TEST(RooflineTest, Opt13bOnA100AgreesWithDistServeFits) {
  const policy::LatencyModel tp1 = Roofline("opt-13b", "a100-80g", 1);
  const policy::LatencyModel tp2 = Roofline("opt-13b", "a100-80g", 2);
  const struct {
    const char* what;
    double roofline_ms;
    double distserve_ms;
  } kChecks[] = {
      {"TP1 prefill 512", tp1.PrefillMsFromSums(512, 512.0 * 512), 72.1},
      {"TP1 prefill 2048", tp1.PrefillMsFromSums(2048, 2048.0 * 2048), 256.7},
      {"TP2 prefill 512", tp2.PrefillMsFromSums(512, 512.0 * 512), 50.5},
      {"TP2 prefill 2048", tp2.PrefillMsFromSums(2048, 2048.0 * 2048), 165.5},
      {"TP1 decode B=1 ctx 512", tp1.DecodeStepMs(1, 512), 20.3},
      {"TP1 decode B=64 ctx 512", tp1.DecodeStepMs(64, 64 * 512), 43.0},
      {"TP1 decode B=128 ctx 1024", tp1.DecodeStepMs(128, 128 * 1024), 103.5},
  };
  for (const auto& check : kChecks) {
    const double ratio = check.roofline_ms / check.distserve_ms;
    std::printf("%-26s roofline %7.2f ms  DistServe %7.2f ms  ratio %.3f\n", check.what, check.roofline_ms,
                check.distserve_ms, ratio);
    EXPECT_NEAR(ratio, 1.0, kTolerance) << check.what;
  }
}

// DistServe's max_num_tokens.csv: 66,144 (TP1) and 163,008 (TP2).
TEST(RooflineTest, Opt13bKvCapacityNearDistServeTable) {
  const double tp1 = static_cast<double>(Roofline("opt-13b", "a100-80g", 1).params().kv_capacity_tokens);
  const double tp2 = static_cast<double>(Roofline("opt-13b", "a100-80g", 2).params().kv_capacity_tokens);
  std::printf("KV capacity TP1 %.0f (DistServe 66144, ratio %.3f); TP2 %.0f (163008, ratio %.3f)\n", tp1,
              tp1 / 66144, tp2, tp2 / 163008);
  EXPECT_NEAR(tp1 / 66144, 1.0, 0.25);
  EXPECT_NEAR(tp2 / 163008, 1.0, 0.25);
}

TEST(RooflineTest, RefusesModelThatDoesNotFitNamingModelGpuAndTp) {
  absl::StatusOr<policy::LatencyModelParams> params =
      RooflineProfile(*BuiltinModelShape("llama-3-70b"), *BuiltinGpuSpec("a100-80g"), 1);
  ASSERT_FALSE(params.ok());
  EXPECT_EQ(params.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(params.status().message());
  for (const char* part : {"llama-3-70b", "a100-80g", "tp=1", "does not fit"}) {
    EXPECT_NE(message.find(part), std::string::npos) << part << " in: " << message;
  }
  EXPECT_TRUE(RooflineProfile(*BuiltinModelShape("llama-3-70b"), *BuiltinGpuSpec("a100-80g"), 2).ok());
}

TEST(RooflineTest, RejectsTpThatDoesNotDivideTheHeads) {
  absl::StatusOr<policy::LatencyModelParams> params =
      RooflineProfile(*BuiltinModelShape("llama-3-8b"), *BuiltinGpuSpec("h100-sxm"), 3);
  ASSERT_FALSE(params.ok());
  EXPECT_NE(params.status().message().find("tp=3"), std::string::npos) << params.status();
  EXPECT_FALSE(BuiltinGpuSpec("tpu-v5").ok());
}

// Compute and memory terms only: the all-reduce terms grow with tp by design.
TEST(RooflineTest, MoreTpNeverSlowerInComputeAndMemoryTerms) {
  const auto prefill = [](const RooflineTerms& t, double l) {
    return t.prefill_compute.a + t.prefill_memory.a + (t.prefill_compute.b + t.prefill_memory.b) * l +
           (t.prefill_compute.c + t.prefill_memory.c) * l * l;
  };
  const auto decode = [](const RooflineTerms& t, double batch, double ctx) {
    return t.decode_compute.a + t.decode_memory.a + (t.decode_compute.b + t.decode_memory.b) * batch * ctx +
           (t.decode_compute.c + t.decode_memory.c) * batch;
  };
  for (const std::string& gpu_name : BuiltinGpuNames()) {
    const GpuSpec gpu = *BuiltinGpuSpec(gpu_name);
    for (const char* model : {"opt-13b", "opt-66b", "opt-175b", "llama-3-8b", "llama-3-70b"}) {
      const ModelShape shape = *BuiltinModelShape(model);
      absl::StatusOr<RooflineTerms> previous;
      for (int tp : {1, 2, 4, 8}) {
        absl::StatusOr<RooflineTerms> terms = ComputeRooflineTerms(shape, gpu, tp);
        ASSERT_TRUE(terms.ok()) << terms.status();
        if (previous.ok()) {
          for (double l : {1.0, 512.0, 8192.0}) {
            EXPECT_LE(prefill(*terms, l), prefill(*previous, l)) << model << " " << gpu_name << " tp=" << tp;
          }
          for (double batch : {1.0, 64.0, 256.0}) {
            EXPECT_LE(decode(*terms, batch, 1024), decode(*previous, batch, 1024))
                << model << " " << gpu_name << " tp=" << tp;
          }
          EXPECT_GE(terms->kv_capacity_tokens, previous->kv_capacity_tokens) << model << " " << gpu_name;
        }
        previous = terms;
      }
    }
  }
}

TEST(RooflineTest, ProfileSetHasEveryTpThatFits) {
  absl::StatusOr<std::vector<policy::LatencyModel>> set = RooflineProfileSet("roofline-h100-sxm", "llama-3-70b");
  ASSERT_TRUE(set.ok()) << set.status();
  std::vector<int> tps;
  for (const policy::LatencyModel& m : *set) {
    EXPECT_EQ(m.params().model, "llama-3-70b");
    EXPECT_EQ(m.params().gpu, "h100-sxm");
    EXPECT_EQ(m.params().engine, "roofline");
    EXPECT_GT(m.params().kv_capacity_tokens, 0);
    tps.push_back(m.params().tp);
  }
  EXPECT_EQ(tps, (std::vector<int>{2, 4, 8}));  // 141 GB of weights do not fit one 80 GB GPU
  set = RooflineProfileSet("roofline-h200", "llama-3-8b");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->size(), 4u);
  EXPECT_FALSE(IsRooflineProfileSet("distserve-a100"));
  set = RooflineProfileSet("roofline-b300", "llama-3-8b");
  ASSERT_FALSE(set.ok());
  EXPECT_NE(set.status().message().find("b300"), std::string::npos) << set.status();
  set = RooflineProfileSet("roofline-l40s", "opt-175b");  // 349 GB > 8 x 48 GB * 0.9
  ASSERT_FALSE(set.ok());
  EXPECT_NE(set.status().message().find("no tensor-parallel degree fits"), std::string::npos) << set.status();
}

int RunCommand(const std::vector<std::string>& args, std::string* out, std::string* err) {
  std::ostringstream o, e;
  const int code = RunSimCommand(args, o, e);
  *out = o.str();
  *err = e.str();
  return code;
}

TEST(RooflineTest, SimCommandRunsOnARooflineSet) {
  std::string out, err;
  ASSERT_EQ(RunCommand({"--profiles=roofline-h100-sxm", "--model=llama-3-8b", "--rate=5", "--num_requests=200",
                        "--seeds=1"},
                       &out, &err),
            0)
      << err;
  EXPECT_NE(out.find("Successful requests:                     200"), std::string::npos) << out;
  // --model empty: opt-13b.
  ASSERT_EQ(RunCommand({"--profiles=roofline-a100-80g", "--rate=1", "--num_requests=50", "--seeds=1"}, &out, &err), 0)
      << err;
  // The set has no tp=1 profile for a model that does not fit one GPU.
  EXPECT_NE(RunCommand({"--profiles=roofline-a100-80g", "--model=llama-3-70b", "--prefill_tp=1", "--rate=1"}, &out,
                       &err),
            0);
  EXPECT_NE(err.find("llama-3-70b"), std::string::npos) << err;
  EXPECT_EQ(RunCommand({"--profiles=roofline-a100-80g", "--model=toy", "--rate=1"}, &out, &err), 2);
  EXPECT_NE(err.find("--profiles"), std::string::npos) << err;
  EXPECT_EQ(RunCommand({"--help"}, &out, &err), 0);
  EXPECT_NE(out.find("roofline-<gpu>"), std::string::npos);
}

}  // namespace
}  // namespace tandem::sim
