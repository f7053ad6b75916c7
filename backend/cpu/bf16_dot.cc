#include "backend/cpu/bf16_dot.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "backend/cpu/half_ops.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tandem::cpu_bf16dot {
namespace {

constexpr int kRows = 4, kCols = 4;

bool Detect() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
      !__builtin_cpu_supports("avx512bf16")) {
    return false;
  }
  if (cpu_half::ActiveIsa() != "avx512") return false;
  const char* env = std::getenv("TANDEM_CPU_BF16_DOT");
  return env == nullptr || std::string_view(env) != "off";
#else
  return false;
#endif
}

#if defined(__x86_64__)

// acc[i][j] += x16 row i . w row j over the 32 weights at k (all of them there).
template <int R, int C>
__attribute__((target("avx512f,avx512bw,avx512bf16"), always_inline)) inline void Step(
    __m512 (&acc)[R][C], const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t in, int64_t k) {
  __m512i wv[C];
  for (int j = 0; j < C; ++j) {
    wv[j] = _mm512_loadu_si512(w + j * in + k);
    asm("" : "+v"(wv[j]));  // keep it in a register: GCC would fold the load into every use
  }
  for (int i = 0; i < R; ++i) {
    __m512i xv = _mm512_loadu_si512(x + i * ldx + k);
    asm("" : "+v"(xv));
    for (int j = 0; j < C; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)xv, (__m512bh)wv[j]);
  }
}

// Step for the weights from k to min(in, k + 32): the weight rows read under a mask (x16 rows are
// zero-padded to a multiple of 32).
template <int R, int C>
__attribute__((target("avx512f,avx512bw,avx512bf16"), always_inline)) inline void TailStep(
    __m512 (&acc)[R][C], const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t in, int64_t k) {
  const int64_t left = in - k;
  const __mmask32 mask = left >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((uint64_t{1} << left) - 1);
  __m512i wv[C];
  for (int j = 0; j < C; ++j) wv[j] = _mm512_maskz_loadu_epi16(mask, w + j * in + k);
  for (int i = 0; i < R; ++i) {
    const __m512i xv = _mm512_loadu_si512(x + i * ldx + k);
    for (int j = 0; j < C; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)xv, (__m512bh)wv[j]);
  }
}

template <int R, int C>
__attribute__((target("avx512f"), always_inline)) inline void Zero(__m512 (&acc)[R][C]) {
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < C; ++j) acc[i][j] = _mm512_setzero_ps();
  }
}

// sums[i * C + j] = x16 row i . w row j over `in` (rows of x16 are `ldx` apart and zero-padded to a
// multiple of 32; the weight rows are `in` apart): one accumulator per output, k in order.
template <int R, int C>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void Tile(const uint16_t* x, int64_t ldx,
                                                                  const uint16_t* w, int64_t in, float* sums) {
  __m512 acc[R][C];
  Zero(acc);
  int64_t k = 0;
  for (; k + 32 <= in; k += 32) Step(acc, x, ldx, w, in, k);
  if (k < in) TailStep(acc, x, ldx, w, in, k);
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < C; ++j) sums[i * C + j] = _mm512_reduce_add_ps(acc[i][j]);
  }
}

// ChainTile: Tile's products summed exactly as DotRows sums a row (for batch_invariant): four chains
// (chain c takes the 32 weights at 32c + 128m, the last under a mask), then (c0 + c1) + (c2 + c3)
// reduced. The chains take a pass each over the tile's rows (16 accumulators in registers, not 64),
// their vectors parked between passes.
template <int R, int C>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void ChainTile(const uint16_t* x, int64_t ldx,
                                                                       const uint16_t* w, int64_t in, float* sums) {
  __m512 parked[4][R][C];
  const int64_t whole = in / 128 * 128;
  for (int c = 0; c < 4; ++c) {
    __m512 acc[R][C];
    Zero(acc);
    for (int64_t k = 32 * c; k < whole; k += 128) Step(acc, x, ldx, w, in, k);
    if (const int64_t k = whole + 32 * c; k < in) TailStep(acc, x, ldx, w, in, k);
    for (int i = 0; i < R; ++i) {
      for (int j = 0; j < C; ++j) parked[c][i][j] = acc[i][j];
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < C; ++j) {
      sums[i * C + j] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(parked[0][i][j], parked[1][i][j]),
                                                           _mm512_add_ps(parked[2][i][j], parked[3][i][j])));
    }
  }
}

// sums[i] = x16 row i . w over `in`, for N rows; four accumulation chains per row (k blocks of 128:
// chain c takes the 32 weights at k + 32c), summed at the end, the same for every N, and the same as
// ChainTile sums them.
template <int N>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void DotRows(const uint16_t* x, int64_t ldx,
                                                                     const uint16_t* w, int64_t in, float* sums) {
  __m512 acc[N][4];
  for (int i = 0; i < N; ++i) {
    for (int c = 0; c < 4; ++c) acc[i][c] = _mm512_setzero_ps();
  }
  int64_t k = 0;
  for (; k + 128 <= in; k += 128) {
    __m512i wv[4];
    for (int c = 0; c < 4; ++c) {
      wv[c] = _mm512_loadu_si512(w + k + 32 * c);
      asm("" : "+v"(wv[c]));
    }
    for (int i = 0; i < N; ++i) {
      for (int c = 0; c < 4; ++c) {
        acc[i][c] = _mm512_dpbf16_ps(acc[i][c], (__m512bh)_mm512_loadu_si512(x + i * ldx + k + 32 * c),
                                     (__m512bh)wv[c]);
      }
    }
  }
  for (int c = 0; k < in; k += 32, ++c) {  // the rest, 32 at a time, the last under a mask
    const int64_t left = in - k;
    const __mmask32 mask = left >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((uint64_t{1} << left) - 1);
    const __m512i wv = _mm512_maskz_loadu_epi16(mask, w + k);
    for (int i = 0; i < N; ++i) {
      acc[i][c] = _mm512_dpbf16_ps(acc[i][c], (__m512bh)_mm512_loadu_si512(x + i * ldx + k), (__m512bh)wv);
    }
  }
  for (int i = 0; i < N; ++i) {
    sums[i] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[i][0], acc[i][1]), _mm512_add_ps(acc[i][2], acc[i][3])));
  }
}

using TileFn = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, float*);

template <int R, int... Cs>
constexpr std::array<TileFn, kCols> RowOfTiles(std::integer_sequence<int, Cs...>) {
  return {Tile<R, Cs + 1>...};
}
template <int R, int... Cs>
constexpr std::array<TileFn, kCols> RowOfChainTiles(std::integer_sequence<int, Cs...>) {
  return {ChainTile<R, Cs + 1>...};
}

__attribute__((target("avx512f,avx512bw,avx512bf16"))) void RoundRowsAvx512(const float* x, int64_t n, int64_t in,
                                                                             uint16_t* x16) {
  const int64_t ldx = Stride(in);
  for (int64_t i = 0; i < n; ++i) {
    const float* src = x + i * in;
    uint16_t* dst = x16 + i * ldx;
    int64_t k = 0;
    for (; k + 16 <= in; k += 16) {
      const __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + k));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k), (__m256i)h);
    }
    if (k < in) {
      const __mmask16 mask = static_cast<__mmask16>((1u << (in - k)) - 1);
      const __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + k));
      uint16_t tail[16];
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(tail), (__m256i)h);
      std::memcpy(dst + k, tail, (in - k) * sizeof(uint16_t));
      k = in;
    }
    std::memset(dst + in, 0, (ldx - in) * sizeof(uint16_t));
  }
}

#endif  // __x86_64__

}  // namespace

bool Available() {
  static const bool available = Detect();
  return available;
}

int64_t Stride(int64_t in) { return (in + 31) / 32 * 32; }

void RoundRows(const float* x, int64_t n, int64_t in, uint16_t* x16) {
#if defined(__x86_64__)
  if (Available()) return RoundRowsAvx512(x, n, in, x16);
#endif
  std::abort();  // callers check Available()
}

void Gemm(const uint16_t* x16, int64_t n, int64_t in, const uint16_t* w, int64_t out_begin, int64_t out_end,
          const float* bias, int64_t out, float* y, bool batch_invariant) {
#if defined(__x86_64__)
  using Seq = std::make_integer_sequence<int, kCols>;
  static constexpr std::array<std::array<TileFn, kCols>, kRows> kTiles = {
      RowOfTiles<1>(Seq()), RowOfTiles<2>(Seq()), RowOfTiles<3>(Seq()), RowOfTiles<4>(Seq())};
  static constexpr std::array<std::array<TileFn, kCols>, kRows> kChainTiles = {
      RowOfChainTiles<1>(Seq()), RowOfChainTiles<2>(Seq()), RowOfChainTiles<3>(Seq()), RowOfChainTiles<4>(Seq())};
  const auto& tiles = batch_invariant ? kChainTiles : kTiles;
  const int64_t ldx = Stride(in);
  float sums[kRows * kCols];
  for (int64_t o = out_begin; o < out_end; o += kCols) {
    const int cols = static_cast<int>(std::min<int64_t>(kCols, out_end - o));
    for (int64_t r = 0; r < n; r += kRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kRows, n - r));
      tiles[rows - 1][cols - 1](x16 + r * ldx, ldx, w + o * in, in, sums);
      for (int i = 0; i < rows; ++i) {
        for (int j = 0; j < cols; ++j) y[(r + i) * out + o + j] = sums[i * cols + j] + (bias ? bias[o + j] : 0.0f);
      }
    }
  }
#else
  std::abort();
#endif
}

void StreamRows(const uint16_t* x16, int64_t n, int64_t in, const uint16_t* w, int64_t out_begin, int64_t out_end,
                const float* bias, int64_t out, float* y) {
#if defined(__x86_64__)
  static constexpr std::array<TileFn, 4> kDots = {DotRows<1>, DotRows<2>, DotRows<3>, DotRows<4>};
  const int64_t ldx = Stride(in);
  float sums[4];
  for (int64_t o = out_begin; o < out_end; ++o) {
    for (int64_t r = 0; r < n; r += 4) {
      const int rows = static_cast<int>(std::min<int64_t>(4, n - r));
      kDots[rows - 1](x16 + r * ldx, ldx, w + o * in, in, sums);
      for (int i = 0; i < rows; ++i) y[(r + i) * out + o] = sums[i] + (bias ? bias[o] : 0.0f);
    }
  }
#else
  std::abort();
#endif
}

}  // namespace tandem::cpu_bf16dot
