// The loop both batch-invariant prompt paths run around their register tiles (cpu_fast's float32 tiles,
// cpu_half's bf16 ones; --batch-invariant): outputs [out_begin, out_end) in chunks of `chunk` (their
// weights stay in L2 while every row group passes over them), rows in groups of kRows, and each group's
// blocks [0, full) in pieces of `piece` weights (they stay in L1 while the chunk's tiles pass over them),
// each tile's accumulators parked in a per-thread buffer between pieces.
#ifndef TANDEM_BACKEND_CPU_TILE_DRIVER_H_
#define TANDEM_BACKEND_CPU_TILE_DRIVER_H_

#include <algorithm>
#include <cstdint>
#include <vector>

namespace tandem::cpu_tiles {

// tile(r, rows, o, cols, k0, k1, last, state, sums) runs rows [r, r + rows) against outputs
// [o, o + cols) over the blocks in [k0, k1) on the kStateFloats accumulators at `state` (zero before the
// first piece); with `last` it also adds the tails and writes sums[i * cols + j]. y[row * out + o] then
// gets that sum plus bias[o] (when bias is not null).
template <int kRows, int kCols, int64_t kStateFloats, typename Tile>
void RunTiles(int64_t n, int64_t full, int64_t piece, int64_t chunk, int64_t out_begin, int64_t out_end,
              const float* bias, int64_t out, float* y, const Tile& tile) {
  thread_local std::vector<float> state;
  state.resize((chunk / kCols + 1) * kStateFloats);
  float sums[kRows * kCols];
  for (int64_t c0 = out_begin; c0 < out_end; c0 += chunk) {
    const int64_t c1 = std::min(out_end, c0 + chunk);
    for (int64_t r = 0; r < n; r += kRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kRows, n - r));
      std::fill(state.begin(), state.end(), 0.0f);
      for (int64_t k0 = 0;; k0 += piece) {
        const int64_t k1 = std::min(full, k0 + piece);
        const bool last = k1 == full;
        for (int64_t o = c0; o < c1; o += kCols) {
          const int cols = static_cast<int>(std::min<int64_t>(kCols, c1 - o));
          tile(r, rows, o, cols, k0, k1, last, state.data() + (o - c0) / kCols * kStateFloats, sums);
          if (!last) continue;
          for (int i = 0; i < rows; ++i) {
            for (int j = 0; j < cols; ++j) y[(r + i) * out + o + j] = sums[i * cols + j] + (bias ? bias[o + j] : 0.0f);
          }
        }
        if (last) break;
      }
    }
  }
}

}  // namespace tandem::cpu_tiles

#endif  // TANDEM_BACKEND_CPU_TILE_DRIVER_H_
