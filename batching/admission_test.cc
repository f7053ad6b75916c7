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
