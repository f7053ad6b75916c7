#include "router/policy/latency_model.h"

#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace tandem::policy {
namespace {

// DistServe OPT-13B TP1 on A100-80G (SLO_SIM.md section 2.6).
LatencyModelParams Opt13bTp1() {
  LatencyModelParams p;
  p.model = "opt-13b";
  p.gpu = "a100-80g";
  p.engine = "distserve";
  p.prefill = {18.1025, 0.101912, 7.1223e-6};
  p.decode_small = {19.9347, 6.26936e-4, 0.038507};
  p.decode_large = {7.16619, 5.798e-4, 0.158311};
  p.bs_threshold = 95;
  return p;
}

TEST(LatencyModelTest, MatchesPublishedCheckValues) {
  LatencyModel model = *LatencyModel::Create(Opt13bTp1());
  const std::vector<int64_t> one_512 = {512};
  const std::vector<int64_t> one_2048 = {2048};
  const std::vector<int64_t> four_512 = {512, 512, 512, 512};
  EXPECT_NEAR(model.PrefillMs(one_512), 72.1, 0.05);
  EXPECT_NEAR(model.PrefillMs(one_2048), 256.7, 0.05);
  EXPECT_NEAR(model.PrefillMs(four_512), 234.3, 0.05);
  // DistServe's decode sums (ctx + 1) over the batch: the token being generated counts.
  EXPECT_NEAR(model.DecodeStepMs(1, 513), 20.3, 0.05);
  EXPECT_NEAR(model.DecodeStepMs(64, 64 * 513), 43.0, 0.05);
  EXPECT_NEAR(model.DecodeStepMs(128, 128 * 1025), 103.5, 0.05);
}

TEST(LatencyModelTest, OverheadsAndPipelineAndTransfer) {
  LatencyModelParams p = Opt13bTp1();
  p.prefill_overhead_ms = 3.0;
  p.decode_overhead_ms = 2.0;
  p.pp = 2;
  p.link_bandwidth_bytes_per_s = 100e9;
  p.link_latency_ms = 0.5;
  LatencyModel model = *LatencyModel::Create(p);
  const std::vector<int64_t> one_512 = {512};
  EXPECT_NEAR(model.PrefillMs(one_512), 72.1 / 2 + 3.0, 0.05);
  EXPECT_NEAR(model.DecodeStepMs(1, 512), 20.3 / 2 + 2.0, 0.05);
  // A request's token waits both stages' steps of its micro-batch: 8 requests, 4096 tokens of context ->
  // 2 x DecodeStepMs(4, 2048); 7 -> micro-batches of 4, 4096 * 4 / 7 = 2340 tokens; 1 request alone.
  EXPECT_NEAR(model.DecodeTokenMs(8, 4096), 2 * model.DecodeStepMs(4, 2048), 1e-9);
  EXPECT_NEAR(model.DecodeTokenMs(7, 4096), 2 * model.DecodeStepMs(4, 2340), 1e-9);
  EXPECT_NEAR(model.DecodeTokenMs(1, 512), 2 * model.DecodeStepMs(1, 512), 1e-9);
  p.pp = 1;
  const LatencyModel unsplit = *LatencyModel::Create(p);
  EXPECT_EQ(unsplit.DecodeTokenMs(8, 4096), unsplit.DecodeStepMs(8, 4096));
  // 512 tokens of OPT-13B KV (819200 B/token) over 100 GB/s.
  EXPECT_NEAR(model.KvTransferMs(512 * 819200.0), 0.5 + 4.194304, 1e-9);
}

TEST(LatencyModelTest, JsonRoundTrip) {
  LatencyModelParams p = Opt13bTp1();
  p.tp = 2;
  p.prefill_overhead_ms = 3;
  p.decode_overhead_ms = 2;
  p.overhead_per_ctx_token_ms = 1e-4;
  p.kv_capacity_tokens = 163008;
  p.kv_bytes_per_token = 819200;
  p.link_bandwidth_bytes_per_s = 300e9;
  p.link_latency_ms = 0.02;
  LatencyModel model = *LatencyModel::Create(p);
  const std::string path = ::testing::TempDir() + "/latency_model_test.json";
  ASSERT_TRUE(model.SaveToFile(path).ok());
  absl::StatusOr<LatencyModel> loaded = LatencyModel::FromFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->ToJson(), model.ToJson());
  EXPECT_EQ(loaded->params().tp, 2);
  EXPECT_EQ(loaded->params().kv_capacity_tokens, 163008);
  EXPECT_DOUBLE_EQ(loaded->params().prefill.c, 7.1223e-6);
  std::remove(path.c_str());
}

TEST(LatencyModelTest, ReadsTheSketchedProfileFormat) {
  absl::StatusOr<LatencyModel> model = LatencyModel::FromJson(R"({
    "model":"opt-13b","gpu":"a100-80g","engine":"distserve","tp":2,"pp":1,
    "prefill":{"form":"quad","a":14.743,"b":0.068577,"c":2.4496e-6},
    "decode_small":{"a":13.295,"b":3.4109e-4,"c":0.062964},
    "decode_large":{"a":10.639,"b":3.1183e-4,"c":0.085629},"bs_threshold":95,
    "step_overhead_ms":{"const":2.0,"per_ctx_token":1e-4},
    "kv_capacity_tokens":163008,
    "fit_stats":{"max_rel_err":null,"mean_rel_err":null}})");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_DOUBLE_EQ(model->params().prefill_overhead_ms, 2.0);
  EXPECT_DOUBLE_EQ(model->params().decode_overhead_ms, 2.0);
  EXPECT_DOUBLE_EQ(model->params().overhead_per_ctx_token_ms, 1e-4);
}

TEST(LatencyModelTest, ListFormat) {
  absl::StatusOr<std::vector<LatencyModel>> models = LatencyModel::ListFromJson(R"({"profiles":[
    {"tp":1,"prefill":[1,0.1,0],"decode_small":[1,0.001,0.1]},
    {"tp":2,"prefill":[1,0.05,0],"decode_small":[1,0.001,0.1]}]})");
  ASSERT_TRUE(models.ok()) << models.status();
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ((*models)[1].params().tp, 2);
  // decode_large defaults to decode_small.
  EXPECT_DOUBLE_EQ((*models)[1].params().decode_large.c, 0.1);
}

TEST(LatencyModelTest, ValidationNamesTheField) {
  LatencyModelParams p = Opt13bTp1();
  p.decode_large.c = -0.1;
  absl::StatusOr<LatencyModel> model = LatencyModel::Create(p);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("decode_large.c"), std::string::npos) << model.status();

  p = Opt13bTp1();
  p.prefill = {1.0, 0.1, -1e-4};  // slope turns negative at 500 tokens
  model = LatencyModel::Create(p);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("prefill"), std::string::npos) << model.status();

  p = Opt13bTp1();
  p.tp = 0;
  EXPECT_NE(LatencyModel::Create(p).status().message().find("tp"), std::string::npos);

  absl::StatusOr<LatencyModel> bad = LatencyModel::FromJson(R"({"prefill":{"a":1,"b":1}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("prefill.c"), std::string::npos) << bad.status();
  bad = LatencyModel::FromJson(R"({"prefill":[1,1,0]})");
  EXPECT_NE(bad.status().message().find("decode_small"), std::string::npos) << bad.status();
  bad = LatencyModel::FromJson("{not json");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(LatencyModel::FromFile("/nonexistent/profile.json").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(LatencyModelTest, MonotoneOverRange) {
  LatencyModel model = *LatencyModel::Create(Opt13bTp1());
  double previous = 0;
  for (int64_t batch = 1; batch <= 94; ++batch) {
    const double t = model.DecodeStepMs(batch, batch * 700);
    EXPECT_GT(t, previous);
    previous = t;
  }
}

}  // namespace
}  // namespace tandem::policy
