#include "batching/colocated_batching.h"

#include <vector>

#include "gtest/gtest.h"

namespace tandem::batching {
namespace {

ColocatedBatchOptions Options(int64_t budget, int64_t max_batch = 256, int64_t block_size = 16) {
  return {.step_token_budget = budget, .max_batch = max_batch, .block_size = block_size};
}

TEST(ColocatedBatchingTest, ValidateNamesTheField) {
  EXPECT_NE(Options(0).Validate().message().find("step_token_budget"), std::string::npos);
  EXPECT_NE(Options(8, 0).Validate().message().find("max_batch"), std::string::npos);
  EXPECT_NE(Options(8, 1, 0).Validate().message().find("block_size"), std::string::npos);
  EXPECT_TRUE(Options(8).Validate().ok());
}

TEST(ColocatedBatchingTest, DecodesFirstThenTheRestOfTheBudgetGoesToPromptChunks) {
  ColocatedBatchState state;
  state.decoding = 3;
  state.waiting = {{.prompt_len = 100, .max_tokens = 10}};
  state.free_blocks = 1000;
  const ColocatedStepPlan plan = PlanColocatedStep(state, Options(32));
  EXPECT_EQ(plan.decode, 3);
  EXPECT_EQ(plan.admit, 1);
  EXPECT_EQ(plan.chunks, (std::vector<int64_t>{29}));
  EXPECT_EQ(plan.tokens(), 32);
  EXPECT_EQ(plan.blocks_reserved, BlocksFor(110, 16));
}

// A long prompt is split across steps; every step still carries every running decode.
TEST(ColocatedBatchingTest, ALongPromptIsChunkedAcrossStepsWithoutStallingDecodes) {
  ColocatedBatchState state;
  state.decoding = 2;
  state.prefilling = {{.prompt_len = 100, .prefilled = 0}};
  int64_t prefilled = 0;
  int steps = 0;
  while (prefilled < 100) {
    state.prefilling[0].prefilled = prefilled;
    const ColocatedStepPlan plan = PlanColocatedStep(state, Options(30));
    EXPECT_EQ(plan.decode, 2) << plan.DebugString();
    ASSERT_EQ(plan.chunks.size(), 1u);
    EXPECT_LE(plan.tokens(), 30);
    EXPECT_GT(plan.chunks[0], 0);
    prefilled += plan.chunks[0];
    ++steps;
  }
  EXPECT_EQ(prefilled, 100);
  EXPECT_EQ(steps, 4);  // 28 + 28 + 28 + 16
}

TEST(ColocatedBatchingTest, OlderPromptsGetTheBudgetFirst) {
  ColocatedBatchState state;
  state.prefilling = {{.prompt_len = 10, .prefilled = 4}, {.prompt_len = 50, .prefilled = 0}};
  state.waiting = {{.prompt_len = 5, .max_tokens = 1}};
  state.free_blocks = 100;
  const ColocatedStepPlan plan = PlanColocatedStep(state, Options(20));
  EXPECT_EQ(plan.chunks, (std::vector<int64_t>{6, 14}));
  EXPECT_EQ(plan.admit, 0);  // no budget left for the waiting prompt
}

TEST(ColocatedBatchingTest, AdmissionReservesTheWorstCaseAndTheHeadBlocksTheQueue) {
  ColocatedBatchState state;
  state.waiting = {{.prompt_len = 10, .max_tokens = 6},     // 1 block of 16
                   {.prompt_len = 40, .max_tokens = 100},   // 9 blocks: does not fit
                   {.prompt_len = 2, .max_tokens = 2}};     // would fit, but may not overtake
  state.free_blocks = 5;
  const ColocatedStepPlan plan = PlanColocatedStep(state, Options(512));
  EXPECT_EQ(plan.admit, 1);
  EXPECT_EQ(plan.blocks_reserved, 1);
  EXPECT_EQ(plan.chunks, (std::vector<int64_t>{10}));
}

TEST(ColocatedBatchingTest, TheBatchCapBoundsAdmission) {
  ColocatedBatchState state;
  state.decoding = 3;
  state.waiting = {{.prompt_len = 1, .max_tokens = 1}, {.prompt_len = 1, .max_tokens = 1}};
  state.free_blocks = 100;
  const ColocatedStepPlan plan = PlanColocatedStep(state, Options(512, 4));
  EXPECT_EQ(plan.decode, 3);
  EXPECT_EQ(plan.admit, 1);
}

TEST(ColocatedBatchingTest, NothingToDoIsAnEmptyPlan) {
  ColocatedBatchState state;
  state.free_blocks = 10;
  EXPECT_TRUE(PlanColocatedStep(state, Options(64)).empty());
  // A request that can never fit the free blocks is not admitted (the engine refuses one that cannot
  // fit the whole cache at submit).
  state.waiting = {{.prompt_len = 1000, .max_tokens = 1000}};
  EXPECT_TRUE(PlanColocatedStep(state, Options(64)).empty());
}

}  // namespace
}  // namespace tandem::batching
