#include "model/step_plan.h"

#include <algorithm>

namespace tandem {

std::vector<std::vector<ChunkPiece>> PlanChunks(std::span<const int64_t> new_tokens, int64_t max_tokens,
                                                int32_t max_seqs) {
  std::vector<std::vector<ChunkPiece>> chunks(1);
  int64_t used = 0;
  for (size_t s = 0; s < new_tokens.size(); ++s) {
    int64_t begin = 0;
    while (begin < new_tokens[s]) {
      if (used == max_tokens || static_cast<int32_t>(chunks.back().size()) == max_seqs) {
        chunks.emplace_back();
        used = 0;
      }
      const int64_t take = std::min(new_tokens[s] - begin, max_tokens - used);
      ChunkPiece piece;
      piece.seq = static_cast<int32_t>(s);
      piece.token_begin = begin;
      piece.num_tokens = take;
      piece.last = begin + take == new_tokens[s];
      chunks.back().push_back(piece);
      used += take;
      begin += take;
    }
  }
  if (chunks.back().empty()) chunks.pop_back();
  return chunks;
}

std::vector<int32_t> GraphBuckets(int32_t max_batch) {
  std::vector<int32_t> buckets;
  for (int32_t b = 1; b < max_batch;) {
    buckets.push_back(b);
    if (b < 4) {
      b += 1;
    } else if (b < 16) {
      b += 2;
    } else if (b < 32) {
      b += 4;
    } else if (b < 64) {
      b += 8;
    } else if (b < 128) {
      b += 16;
    } else if (b < 256) {
      b += 32;
    } else {
      b += 64;
    }
  }
  if (max_batch >= 1) buckets.push_back(max_batch);
  return buckets;
}

int32_t ChooseGraphBucket(int32_t batch, std::span<const int32_t> buckets) {
  auto it = std::lower_bound(buckets.begin(), buckets.end(), batch);
  return it == buckets.end() ? 0 : *it;
}

}  // namespace tandem
