// Pure arithmetic of how the model runs a step: splitting a step larger than the fixed workspaces into
// chunks, and which padded batch size (graph bucket) a decode step replays. No device, no allocation
// beyond the returned vectors; tested on the host.
#ifndef TANDEM_MODEL_STEP_PLAN_H_
#define TANDEM_MODEL_STEP_PLAN_H_

#include <cstdint>
#include <span>
#include <vector>

namespace tandem {

// A piece of one sequence's new tokens inside one chunk.
struct ChunkPiece {
  int32_t seq = 0;          // index into the step's sequences
  int64_t token_begin = 0;  // first new token of the sequence in this piece
  int64_t num_tokens = 0;
  bool last = false;        // the piece holds the sequence's last new token (its logits row)
};

// Splits a step whose sequences bring `new_tokens[s]` tokens each into chunks of at most `max_tokens`
// tokens and `max_seqs` sequences, in order: a sequence's pieces are in consecutive chunks, so each
// piece's KV is cached before the next piece attends to it (chunked prefill). A step that fits is one
// chunk holding every sequence whole. max_tokens and max_seqs must be >= 1; sizes must be >= 1.
std::vector<std::vector<ChunkPiece>> PlanChunks(std::span<const int64_t> new_tokens, int64_t max_tokens,
                                                int32_t max_seqs);

// Decode batch sizes that get their own graph, ascending, up to `max_batch` (which is always the last):
// 1..4, then steps of 2 to 16, of 4 to 32, of 8 to 64, of 16 to 128, of 32 to 256, of 64 beyond; so
// padding a batch to its bucket wastes at most a fifth of the bucket (26 buckets up to 256).
std::vector<int32_t> GraphBuckets(int32_t max_batch);

// The smallest bucket >= batch, or 0 when batch is larger than every bucket (the step runs eagerly).
int32_t ChooseGraphBucket(int32_t batch, std::span<const int32_t> buckets);

}  // namespace tandem

#endif  // TANDEM_MODEL_STEP_PLAN_H_
