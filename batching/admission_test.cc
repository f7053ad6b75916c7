#include "batching/admission.h"

#include <vector>

#include "gtest/gtest.h"

namespace tandem::batching {
namespace {

TEST(AdmissionTest, AdmitsFromTheHeadUntilTheFirstThatDoesNotFit) {
  const std::vector<Candidate> queue = {{10, 1}, {20, 2}, {5, 1}, {1, 1}};
  // Tokens: 10 + 20 = 30 fits 32, + 5 does not; the 1-token one behind it is not taken (no overtaking).
  Admission a = AdmitFcfs(queue, {.max_tokens = 32});
  EXPECT_EQ(a.count, 2);
  EXPECT_EQ(a.tokens, 30);
  EXPECT_EQ(a.blocks, 3);
  // Blocks: 1 + 2 fit 3, the third does not.
  a = AdmitFcfs(queue, {.free_blocks = 3});
  EXPECT_EQ(a.count, 2);
  // Requests.
  EXPECT_EQ(AdmitFcfs(queue, {.max_requests = 3}).count, 3);
  EXPECT_EQ(AdmitFcfs(queue, {.max_requests = 0}).count, 0);
  EXPECT_EQ(AdmitFcfs(queue, {}).count, 4);
  EXPECT_EQ(AdmitFcfs({}, {}).count, 0);
}

TEST(AdmissionTest, TheFirstRequestIsExemptFromTheTokenBudgetButNotFromBlocks) {
  const std::vector<Candidate> queue = {{100, 7}, {1, 1}};
  Admission a = AdmitFcfs(queue, {.max_tokens = 32});
  EXPECT_EQ(a.count, 1);  // a prompt longer than the budget runs alone
  EXPECT_EQ(a.tokens, 100);
  EXPECT_EQ(AdmitFcfs(queue, {.max_tokens = 32, .free_blocks = 6}).count, 0);  // waits for memory
}

TEST(AdmissionTest, PrefillBatchCountsPromptBlocks) {
  const std::vector<int64_t> lens = {17, 16, 40, 3};
  // Blocks of 16: 2, 1, 3, 1.
  Admission a = PlanPrefillBatch(lens, {.max_batch = 8, .max_batch_tokens = 1000}, {.block_size = 16, .free_blocks = 6});
  EXPECT_EQ(a.count, 3);
  EXPECT_EQ(a.blocks, 6);
  EXPECT_EQ(a.tokens, 73);
  EXPECT_EQ(PlanPrefillBatch(lens, {.max_batch = 2}, {}).count, 2);
  EXPECT_EQ(PlanPrefillBatch(lens, {.max_batch_tokens = 33}, {}).count, 2);
  EXPECT_EQ(PlanPrefillBatch(lens, {.max_batch_tokens = 32}, {}).count, 1);
}

TEST(AdmissionTest, DecodeAdmissionReservesPromptPlusMaxTokens) {
  const std::vector<SequenceSize> waiting = {{.prompt_len = 10, .max_tokens = 6},   // 16 tokens: 1 block
                                             {.prompt_len = 10, .max_tokens = 7},   // 17: 2 blocks
                                             {.prompt_len = 1, .max_tokens = 1}};   // 1 block
  EXPECT_EQ(PlanDecodeAdmission(waiting, {.block_size = 16, .free_blocks = 2}).count, 1);
  EXPECT_EQ(PlanDecodeAdmission(waiting, {.block_size = 16, .free_blocks = 3}).count, 2);
  Admission a = PlanDecodeAdmission(waiting, {.block_size = 16, .free_blocks = 4});
  EXPECT_EQ(a.count, 3);
  EXPECT_EQ(a.blocks, 4);
  EXPECT_EQ(a.tokens, 0);  // no token budget on decode admission
}

TEST(AdmissionTest, DecodeJoinsFillTheBatchUpToItsCap) {
  EXPECT_EQ(DecodeJoins(5, 2, 4), 2);
  EXPECT_EQ(DecodeJoins(1, 2, 4), 1);
  EXPECT_EQ(DecodeJoins(3, 4, 4), 0);
  EXPECT_EQ(DecodeJoins(3, 6, 4), 0);  // a batch over its cap admits nobody, never a negative count
  EXPECT_EQ(DecodeJoins(3, 0, kNoLimit), 3);
}

TEST(AdmissionTest, PromptAdmissionCountsRunningSequencesAgainstTheBatch) {
  const std::vector<SequenceSize> waiting = {{.prompt_len = 8, .max_tokens = 8},
                                             {.prompt_len = 8, .max_tokens = 8},
                                             {.prompt_len = 8, .max_tokens = 8}};
  const PromptAdmissionOptions options{.max_batch = 4, .max_prefill_tokens = 100};
  EXPECT_EQ(PlanPromptAdmission(waiting, 2, options, {}).count, 2);
  EXPECT_EQ(PlanPromptAdmission(waiting, 4, options, {}).count, 0);
  EXPECT_EQ(PlanPromptAdmission(waiting, 0, options, {.block_size = 16, .free_blocks = 2}).count, 2);  // 1 each
  EXPECT_EQ(PlanPromptAdmission(waiting, 0, options, {.block_size = 4, .free_blocks = 7}).count, 1);  // 4 each
  EXPECT_EQ(PlanPromptAdmission(waiting, 0, {.max_prefill_tokens = 15}, {}).count, 1);
}

// vLLM 0.2.x pads a prompt batch to its longest prompt; its scheduler closes the batch at the first
// prompt that would take the padded tokens past max_num_batched_tokens or the padding past max_paddings.
TEST(AdmissionTest, PaddedPromptBatchesStopAtThePaddingLimitAndCountPaddedTokens) {
  const auto prompts = [](std::vector<int64_t> lens) {
    std::vector<SequenceSize> out;
    for (int64_t l : lens) out.push_back({.prompt_len = l, .max_tokens = 1});
    return out;
  };
  const PromptAdmissionOptions vllm{.max_prefill_tokens = 16384, .padded = true, .max_paddings = 256};
  // 1000 alone; + 900: 2 x 1000 = 2000 tokens, padding 100; + 1100: 3 x 1100 = 3300, padding 300 > 256.
  Admission a = PlanPromptAdmission(prompts({1000, 900, 1100, 1000}), 0, vllm, {});
  EXPECT_EQ(a.count, 2);
  EXPECT_EQ(a.tokens, 2000);
  // Padding exactly at the limit joins: 2 x 1256 - 2256 = 256.
  EXPECT_EQ(PlanPromptAdmission(prompts({1000, 1256, 5}), 0, vllm, {}).count, 2);
  // The padded budget: 3 x 500 > 1200 closes the batch at two; one prompt over the budget still runs.
  PromptAdmissionOptions small = vllm;
  small.max_prefill_tokens = 1200;
  a = PlanPromptAdmission(prompts({500, 500, 500}), 0, small, {});
  EXPECT_EQ(a.count, 2);
  EXPECT_EQ(a.tokens, 1000);
  EXPECT_EQ(PlanPromptAdmission(prompts({2000, 10}), 0, small, {}).count, 1);
  // KV blocks and batch slots still bind.
  EXPECT_EQ(PlanPromptAdmission(prompts({16, 16, 16}), 0, vllm, {.block_size = 16, .free_blocks = 4}).count, 2);
  PromptAdmissionOptions two = vllm;
  two.max_batch = 3;
  EXPECT_EQ(PlanPromptAdmission(prompts({16, 16, 16}), 2, two, {}).count, 1);
  // Unpadded, the same queue is one batch of unpadded tokens.
  a = PlanPromptAdmission(prompts({1000, 900, 1100, 1000}), 0, {.max_prefill_tokens = 16384}, {});
  EXPECT_EQ(a.count, 4);
  EXPECT_EQ(a.tokens, 4000);
}

// A request larger than the whole pool counts as the whole pool: it waits until everything else has left,
// then runs alone (engines refuse such requests up front; the simulator cannot).
TEST(AdmissionTest, ARequestLargerThanThePoolRunsAloneWhenThePoolIsEmpty) {
  const KvPool busy{.block_size = 16, .total_blocks = 10, .free_blocks = 9};
  const KvPool empty{.block_size = 16, .total_blocks = 10, .free_blocks = 10};
  EXPECT_EQ(busy.BlocksFor(1000), 10);
  EXPECT_EQ(empty.BlocksFor(33), 3);
  const std::vector<SequenceSize> huge = {{.prompt_len = 900, .max_tokens = 100}, {.prompt_len = 1, .max_tokens = 1}};
  EXPECT_EQ(PlanDecodeAdmission(huge, busy).count, 0);
  const Admission a = PlanDecodeAdmission(huge, empty);
  EXPECT_EQ(a.count, 1);
  EXPECT_EQ(a.blocks, 10);
  const std::vector<int64_t> long_prompt = {5000, 10};
  EXPECT_EQ(PlanPrefillBatch(long_prompt, {}, busy).count, 0);
  EXPECT_EQ(PlanPrefillBatch(long_prompt, {}, empty).count, 1);
}

TEST(AdmissionTest, GrowthPreemptsFromTheTailUntilTheRestFits) {
  // Three sequences each crossing into a new block, one block free: the newest two leave; the second's
  // two held blocks plus the free one leave room for the oldest's growth.
  const std::vector<int64_t> held = {3, 2, 4};
  const std::vector<int64_t> needed = {4, 3, 5};
  EXPECT_EQ(GrowthPreemptions(held, needed, 3), 0);
  EXPECT_EQ(GrowthPreemptions(held, needed, 2), 1);  // without the third: growth 2 fits 2 + 4 freed
  EXPECT_EQ(GrowthPreemptions(held, needed, 0), 1);  // growth 2 fits the 4 the third frees
  // No growth: nothing leaves even with no free block.
  const std::vector<int64_t> same = {3, 2, 4};
  EXPECT_EQ(GrowthPreemptions(held, same, 0), 0);
  // The oldest alone cannot grow (nothing free, nothing else holds a block): all leave.
  const std::vector<int64_t> one_held = {2};
  const std::vector<int64_t> one_needed = {3};
  EXPECT_EQ(GrowthPreemptions(one_held, one_needed, 0), 1);
  EXPECT_EQ(GrowthPreemptions({}, {}, 0), 0);
}

}  // namespace
}  // namespace tandem::batching
