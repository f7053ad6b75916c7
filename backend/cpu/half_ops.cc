#include "backend/cpu/half_ops.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#include "backend/cpu/tile_driver.h"

namespace tandem::cpu_half {
namespace {

enum class Isa { kPortable, kAvx2, kAvx512 };

// One group of N activation rows against one weight row: sums[i] = x[i] . w.
using GroupFn = void (*)(const float* x, int64_t in, const uint16_t* w, float* sums);
using WidenFn = void (*)(const uint16_t* src, int64_t count, float* dst);

template <bool kBf16>
inline float WidenScalar(uint16_t bits) {
  if constexpr (kBf16) {
    return Bf16ToF32(bits);
  } else {
    return F16ToF32(bits);
  }
}

// --- portable: 16 float lanes per row, as the float32 kernel sums ---

template <bool kBf16, int N>
void DotGroupPortable(const float* x, int64_t in, const uint16_t* w, float* sums) {
  float acc[N][16] = {};
  int64_t k = 0;
  for (; k + 16 <= in; k += 16) {
    float wf[16];
    for (int l = 0; l < 16; ++l) wf[l] = WidenScalar<kBf16>(w[k + l]);
    for (int i = 0; i < N; ++i) {
      for (int l = 0; l < 16; ++l) acc[i][l] += x[i * in + k + l] * wf[l];
    }
  }
  for (int i = 0; i < N; ++i) {
    float sum = 0.0f;
    for (int l = 0; l < 16; ++l) sum += acc[i][l];
    for (int64_t t = k; t < in; ++t) sum += x[i * in + t] * WidenScalar<kBf16>(w[t]);
    sums[i] = sum;
  }
}

template <bool kBf16>
void WidenPortable(const uint16_t* src, int64_t count, float* dst) {
  for (int64_t i = 0; i < count; ++i) dst[i] = WidenScalar<kBf16>(src[i]);
}

#if defined(__x86_64__)

// --- AVX-512: four accumulators of 16 lanes per row (64 weights per iteration), so that the FMA
// latency does not bound a 2-byte-per-weight stream ---

template <bool kBf16>
__attribute__((target("avx512f"), always_inline)) inline __m512 Widen16(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  if constexpr (kBf16) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    return _mm512_cvtph_ps(h);
  }
}

template <bool kBf16, int N>
__attribute__((target("avx512f"))) void DotGroupAvx512(const float* x, int64_t in, const uint16_t* w,
                                                       float* sums) {
  __m512 acc[N][4];
  for (int i = 0; i < N; ++i) {
    for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  int64_t k = 0;
  for (; k + 64 <= in; k += 64) {
    const __m512 w0 = Widen16<kBf16>(w + k);
    const __m512 w1 = Widen16<kBf16>(w + k + 16);
    const __m512 w2 = Widen16<kBf16>(w + k + 32);
    const __m512 w3 = Widen16<kBf16>(w + k + 48);
    for (int i = 0; i < N; ++i) {
      const float* xi = x + i * in + k;
      acc[i][0] = _mm512_fmadd_ps(_mm512_loadu_ps(xi), w0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(_mm512_loadu_ps(xi + 16), w1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(_mm512_loadu_ps(xi + 32), w2, acc[i][2]);
      acc[i][3] = _mm512_fmadd_ps(_mm512_loadu_ps(xi + 48), w3, acc[i][3]);
    }
  }
  for (; k + 16 <= in; k += 16) {
    const __m512 w0 = Widen16<kBf16>(w + k);
    for (int i = 0; i < N; ++i) acc[i][0] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i * in + k), w0, acc[i][0]);
  }
  for (int i = 0; i < N; ++i) {
    const __m512 s = _mm512_add_ps(_mm512_add_ps(acc[i][0], acc[i][1]), _mm512_add_ps(acc[i][2], acc[i][3]));
    float sum = _mm512_reduce_add_ps(s);
    for (int64_t t = k; t < in; ++t) sum += x[i * in + t] * WidenScalar<kBf16>(w[t]);
    sums[i] = sum;
  }
}

// bf16 without widening shuffles: a 32-bit lane holding two bf16 weights [w(2j) | w(2j+1) << 16] is
// w(2j+1) as a float once its low half is masked off, and w(2j) once shifted left by 16. So 32 weights
// cost one load, one shift and one and, against activations stored per 32-block as 16 even-indexed then
// 16 odd-indexed values (PrepareActivations). Four accumulators per row (two blocks of 32).
__attribute__((target("avx512f"), always_inline)) inline void SplitBf16(const uint16_t* p, __m512& even,
                                                                        __m512& odd) {
  __m512i v = _mm512_loadu_si512(p);
  asm("" : "+v"(v));  // one load for both halves (GCC would fold it into the shift and the and)
  even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  odd = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
}

template <int N>
__attribute__((target("avx512f"))) void DotGroupBf16Split(const float* x, int64_t in, const uint16_t* w,
                                                          float* sums) {
  __m512 acc[N][4];
  for (int i = 0; i < N; ++i) {
    for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  int64_t k = 0;
  for (; k + 64 <= in; k += 64) {
    __m512 e0, o0, e1, o1;
    SplitBf16(w + k, e0, o0);
    SplitBf16(w + k + 32, e1, o1);
    for (int i = 0; i < N; ++i) {
      const float* xi = x + i * in + k;  // [16 even | 16 odd] [16 even | 16 odd]
      acc[i][0] = _mm512_fmadd_ps(_mm512_loadu_ps(xi), e0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(_mm512_loadu_ps(xi + 16), o0, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(_mm512_loadu_ps(xi + 32), e1, acc[i][2]);
      acc[i][3] = _mm512_fmadd_ps(_mm512_loadu_ps(xi + 48), o1, acc[i][3]);
    }
  }
  for (; k + 32 <= in; k += 32) {
    __m512 e0, o0;
    SplitBf16(w + k, e0, o0);
    for (int i = 0; i < N; ++i) {
      const float* xi = x + i * in + k;
      acc[i][0] = _mm512_fmadd_ps(_mm512_loadu_ps(xi), e0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(_mm512_loadu_ps(xi + 16), o0, acc[i][1]);
    }
  }
  for (int i = 0; i < N; ++i) {
    const __m512 s = _mm512_add_ps(_mm512_add_ps(acc[i][0], acc[i][1]), _mm512_add_ps(acc[i][2], acc[i][3]));
    float sum = _mm512_reduce_add_ps(s);
    for (int64_t t = k; t < in; ++t) sum += x[i * in + t] * Bf16ToF32(w[t]);  // the tail is in order
    sums[i] = sum;
  }
}

// R activation rows against W weight rows (rows `in` apart), each output summed exactly as
// DotGroupBf16Split sums it: the same four accumulators per output, updated in the same order, the same
// reduction and tail. So a prompt's Linear gives, bit for bit, what the decode kernel gives each row.
// One call runs the blocks of 64 in [k0, k1) (k1 <= in / 64 * 64) on the accumulators kept in `state`
// (R * W * 4 vectors, zero before the first call), so that a long row can be split into pieces that stay
// in L1; with `last` it then adds the tails and writes sums[r * W + j]. Each block of 64 runs as two
// halves of 32 so that the R * W * 4 accumulators and one half's weights fit the 32 registers.
template <int R, int W>
__attribute__((target("avx512f"))) void TileBf16Split(const float* x, int64_t ldx, int64_t in, const uint16_t* w,
                                                      int64_t k0, int64_t k1, bool last, float* state, float* sums) {
  __m512 acc[R][W][4];
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < W; ++j) {
      for (int a = 0; a < 4; ++a) acc[r][j][a] = _mm512_loadu_ps(state + ((r * W + j) * 4 + a) * 16);
    }
  }
  for (int64_t k = k0; k < k1; k += 64) {
    for (int half = 0; half < 2; ++half) {
      const int64_t kh = k + 32 * half;
      __m512 e[W], o[W];
      for (int j = 0; j < W; ++j) SplitBf16(w + j * in + kh, e[j], o[j]);
      for (int r = 0; r < R; ++r) {
        __m512 xe = _mm512_loadu_ps(x + r * ldx + kh), xo = _mm512_loadu_ps(x + r * ldx + kh + 16);
        // In registers: otherwise GCC folds the load into each of the W FMAs, W loads instead of one.
        asm("" : "+v"(xe), "+v"(xo));
        for (int j = 0; j < W; ++j) {
          acc[r][j][2 * half] = _mm512_fmadd_ps(xe, e[j], acc[r][j][2 * half]);
          acc[r][j][2 * half + 1] = _mm512_fmadd_ps(xo, o[j], acc[r][j][2 * half + 1]);
        }
      }
    }
  }
  if (!last) {
    for (int r = 0; r < R; ++r) {
      for (int j = 0; j < W; ++j) {
        for (int a = 0; a < 4; ++a) _mm512_storeu_ps(state + ((r * W + j) * 4 + a) * 16, acc[r][j][a]);
      }
    }
    return;
  }
  int64_t k = in / 64 * 64;
  for (; k + 32 <= in; k += 32) {
    __m512 e[W], o[W];
    for (int j = 0; j < W; ++j) SplitBf16(w + j * in + k, e[j], o[j]);
    for (int r = 0; r < R; ++r) {
      const __m512 xe = _mm512_loadu_ps(x + r * ldx + k), xo = _mm512_loadu_ps(x + r * ldx + k + 16);
      for (int j = 0; j < W; ++j) {
        acc[r][j][0] = _mm512_fmadd_ps(xe, e[j], acc[r][j][0]);
        acc[r][j][1] = _mm512_fmadd_ps(xo, o[j], acc[r][j][1]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < W; ++j) {
      const __m512 s = _mm512_add_ps(_mm512_add_ps(acc[r][j][0], acc[r][j][1]), _mm512_add_ps(acc[r][j][2], acc[r][j][3]));
      float sum = _mm512_reduce_add_ps(s);
      for (int64_t t = k; t < in; ++t) sum += x[r * ldx + t] * Bf16ToF32(w[j * in + t]);
      sums[r * W + j] = sum;
    }
  }
}

template <bool kBf16>
__attribute__((target("avx512f"))) void WidenAvx512(const uint16_t* src, int64_t count, float* dst) {
  int64_t i = 0;
  for (; i + 64 <= count; i += 64) {  // four loads in flight per iteration
    const __m512 a = Widen16<kBf16>(src + i), b = Widen16<kBf16>(src + i + 16), c = Widen16<kBf16>(src + i + 32),
                 d = Widen16<kBf16>(src + i + 48);
    _mm512_storeu_ps(dst + i, a);
    _mm512_storeu_ps(dst + i + 16, b);
    _mm512_storeu_ps(dst + i + 32, c);
    _mm512_storeu_ps(dst + i + 48, d);
  }
  for (; i + 16 <= count; i += 16) _mm512_storeu_ps(dst + i, Widen16<kBf16>(src + i));
  for (; i < count; ++i) dst[i] = WidenScalar<kBf16>(src[i]);
}

// --- AVX2 + FMA + F16C: the same with 8 lanes ---

template <bool kBf16>
__attribute__((target("avx2,fma,f16c"), always_inline)) inline __m256 Widen8(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (kBf16) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    return _mm256_cvtph_ps(h);
  }
}

__attribute__((target("avx2,fma,f16c"), always_inline)) inline float Sum8(__m256 v) {
  const __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <bool kBf16, int N>
__attribute__((target("avx2,fma,f16c"))) void DotGroupAvx2(const float* x, int64_t in, const uint16_t* w,
                                                           float* sums) {
  __m256 acc[N][4];
  for (int i = 0; i < N; ++i) {
    for (int j = 0; j < 4; ++j) acc[i][j] = _mm256_setzero_ps();
  }
  int64_t k = 0;
  for (; k + 32 <= in; k += 32) {
    const __m256 w0 = Widen8<kBf16>(w + k);
    const __m256 w1 = Widen8<kBf16>(w + k + 8);
    const __m256 w2 = Widen8<kBf16>(w + k + 16);
    const __m256 w3 = Widen8<kBf16>(w + k + 24);
    for (int i = 0; i < N; ++i) {
      const float* xi = x + i * in + k;
      acc[i][0] = _mm256_fmadd_ps(_mm256_loadu_ps(xi), w0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(_mm256_loadu_ps(xi + 8), w1, acc[i][1]);
      acc[i][2] = _mm256_fmadd_ps(_mm256_loadu_ps(xi + 16), w2, acc[i][2]);
      acc[i][3] = _mm256_fmadd_ps(_mm256_loadu_ps(xi + 24), w3, acc[i][3]);
    }
  }
  for (; k + 8 <= in; k += 8) {
    const __m256 w0 = Widen8<kBf16>(w + k);
    for (int i = 0; i < N; ++i) acc[i][0] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i * in + k), w0, acc[i][0]);
  }
  for (int i = 0; i < N; ++i) {
    float sum = Sum8(_mm256_add_ps(_mm256_add_ps(acc[i][0], acc[i][1]), _mm256_add_ps(acc[i][2], acc[i][3])));
    for (int64_t t = k; t < in; ++t) sum += x[i * in + t] * WidenScalar<kBf16>(w[t]);
    sums[i] = sum;
  }
}

template <bool kBf16>
__attribute__((target("avx2,fma,f16c"))) void WidenAvx2(const uint16_t* src, int64_t count, float* dst) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) _mm256_storeu_ps(dst + i, Widen8<kBf16>(src + i));
  for (; i < count; ++i) dst[i] = WidenScalar<kBf16>(src[i]);
}

bool HasF16c() {
  unsigned eax, ebx, ecx, edx;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}

#endif  // __x86_64__

Isa DetectIsa() {
  Isa best = Isa::kPortable;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && HasF16c()) best = Isa::kAvx2;
  if (__builtin_cpu_supports("avx512f")) best = Isa::kAvx512;
#endif
  // An override may only step down.
  if (const char* env = std::getenv("TANDEM_CPU_ISA"); env != nullptr) {
    const std::string_view want(env);
    if (want == "portable") return Isa::kPortable;
    if (want == "avx2" && best >= Isa::kAvx2) return Isa::kAvx2;
  }
  return best;
}

Isa ChosenIsa() {
  static const Isa isa = DetectIsa();
  return isa;
}

// R activation rows against W weight rows: sums[r * W + j] = x[r] . w[j], as `group` sums them, in
// pieces of k (TileBf16Split).
constexpr int kTileRows = 3, kTileCols = 2;
using TileFn = void (*)(const float* x, int64_t ldx, int64_t in, const uint16_t* w, int64_t k0, int64_t k1,
                        bool last, float* state, float* sums);

struct Kernels {
  GroupFn group[4];  // N = 1..4
  WidenFn widen;
  bool split_activations = false;  // x laid out per 32-block as 16 even, 16 odd (DotGroupBf16Split)
  TileFn tile[kTileRows][kTileCols] = {};  // [R - 1][W - 1]; empty: no prompt kernel (TileRows unavailable)
};

template <bool kBf16>
Kernels KernelsFor(Isa isa) {
#if defined(__x86_64__)
  if (isa == Isa::kAvx512 && kBf16) {
    return {{DotGroupBf16Split<1>, DotGroupBf16Split<2>, DotGroupBf16Split<3>, DotGroupBf16Split<4>},
            WidenAvx512<true>,
            true,
            {{TileBf16Split<1, 1>, TileBf16Split<1, 2>},
             {TileBf16Split<2, 1>, TileBf16Split<2, 2>},
             {TileBf16Split<3, 1>, TileBf16Split<3, 2>}}};
  }
  if (isa == Isa::kAvx512) {
    return {{DotGroupAvx512<kBf16, 1>, DotGroupAvx512<kBf16, 2>, DotGroupAvx512<kBf16, 3>, DotGroupAvx512<kBf16, 4>},
            WidenAvx512<kBf16>};
  }
  if (isa == Isa::kAvx2) {
    return {{DotGroupAvx2<kBf16, 1>, DotGroupAvx2<kBf16, 2>, DotGroupAvx2<kBf16, 3>, DotGroupAvx2<kBf16, 4>},
            WidenAvx2<kBf16>};
  }
#endif
  return {{DotGroupPortable<kBf16, 1>, DotGroupPortable<kBf16, 2>, DotGroupPortable<kBf16, 3>,
           DotGroupPortable<kBf16, 4>},
          WidenPortable<kBf16>};
}

const Kernels& KernelsFor(DType dtype) {
  static const Kernels bf16 = KernelsFor<true>(ChosenIsa());
  static const Kernels f16 = KernelsFor<false>(ChosenIsa());
  return dtype == DType::kBF16 ? bf16 : f16;
}

}  // namespace

std::string_view ActiveIsa() {
  switch (ChosenIsa()) {
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx2: return "avx2";
    case Isa::kPortable: return "portable";
  }
  return "portable";
}

void WidenRow(DType dtype, const uint16_t* src, int64_t count, float* dst) {
  KernelsFor(dtype).widen(src, count, dst);
}

const float* PrepareActivations(DType dtype, const float* x, int64_t n, int64_t in, std::vector<float>& buffer,
                               int64_t ldx) {
  if (ldx == 0) ldx = in;
  if (!KernelsFor(dtype).split_activations && ldx == in) return x;
  if (static_cast<int64_t>(buffer.size()) < n * ldx) buffer.resize(n * ldx);
  const bool split = KernelsFor(dtype).split_activations;
  for (int64_t r = 0; r < n; ++r) {
    const float* src = x + r * in;
    float* dst = buffer.data() + r * ldx;
    if (!split) {
      std::memcpy(dst, src, in * sizeof(float));
      continue;
    }
    int64_t k = 0;
    for (; k + 32 <= in; k += 32) {
      for (int j = 0; j < 16; ++j) {
        dst[k + j] = src[k + 2 * j];
        dst[k + 16 + j] = src[k + 2 * j + 1];
      }
    }
    for (; k < in; ++k) dst[k] = src[k];
  }
  return buffer.data();
}

void StreamRows(DType dtype, const float* x, int64_t n, int64_t in, const uint16_t* w, int64_t out_begin,
                int64_t out_end, const float* bias, int64_t out, float* y) {
  const Kernels& kernels = KernelsFor(dtype);
  float sums[4];
  for (int64_t o = out_begin; o < out_end; ++o) {
    const uint16_t* wr = w + o * in;
    for (int64_t r = 0; r < n; r += 4) {
      const int64_t rows = std::min<int64_t>(4, n - r);
      kernels.group[rows - 1](x + r * in, in, wr, sums);
      for (int64_t i = 0; i < rows; ++i) y[(r + i) * out + o] = sums[i] + (bias ? bias[o] : 0.0f);
    }
  }
}

bool HasTileKernel(DType dtype) { return KernelsFor(dtype).tile[0][0] != nullptr; }

int64_t TileStride(int64_t in) { return (in + 15) / 16 * 16 + 16; }

void TileRows(DType dtype, const float* x, int64_t n, int64_t in, const uint16_t* w, int64_t out_begin,
              int64_t out_end, const float* bias, int64_t out, float* y) {
  const int64_t ldx = TileStride(in);
  const Kernels& kernels = KernelsFor(dtype);
  // cpu_tiles::RunTiles: output chunks of 512 KiB of weights; a row triple in pieces of 2048 weights
  // (24 KiB; a row of up to 2048 is one piece).
  const int64_t chunk = std::max<int64_t>(kTileCols, (int64_t{512} << 10) / (2 * in) / kTileCols * kTileCols);
  cpu_tiles::RunTiles<kTileRows, kTileCols, kTileRows * kTileCols * 4 * 16>(
      n, /*full=*/in / 64 * 64, /*piece=*/2048, chunk, out_begin, out_end, bias, out, y,
      [&](int64_t r, int rows, int64_t o, int cols, int64_t k0, int64_t k1, bool last, float* state, float* sums) {
        kernels.tile[rows - 1][cols - 1](x + r * ldx, ldx, in, w + o * in, k0, k1, last, state, sums);
      });
}

}  // namespace tandem::cpu_half
