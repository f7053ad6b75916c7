#include "backend/cpu/fast_ops.h"

#include <cblas.h>

#include <algorithm>
#include <array>
#include <utility>
#include <cmath>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "backend/cpu/bf16_dot.h"
#include "backend/cpu/half_ops.h"
#include "backend/cpu/tile_driver.h"

namespace tandem::cpu_fast {
namespace {

// Decode: y = W x streams every weight row from memory once (the floor is weight bytes / memory
// bandwidth); 16 independent lanes per activation row keep the FMA units busy while the row streams in,
// and a row is reused from L1 for groups of up to 4 activation rows, instead of a GEMM whose packing
// costs several times a batch-1 step at these sizes. Every output is summed the same way (16 lanes,
// lanes in order, then the tail) whatever the group, so a sequence's logits do not depend on the batch
// it decodes in. Compiled for AVX-512, AVX2 and baseline, chosen at load time.
template <int N>
__attribute__((always_inline)) inline void DotGroup(const float* x, int64_t in, const float* wr, float* sums) {
  float acc[N][16] = {};
  int64_t k = 0;
  for (; k + 16 <= in; k += 16) {
    for (int i = 0; i < N; ++i) {
      for (int l = 0; l < 16; ++l) acc[i][l] += x[i * in + k + l] * wr[k + l];
    }
  }
  for (int i = 0; i < N; ++i) {
    float sum = 0.0f;
    for (int l = 0; l < 16; ++l) sum += acc[i][l];
    for (int64_t t = k; t < in; ++t) sum += x[i * in + t] * wr[t];
    sums[i] = sum;
  }
}

__attribute__((target_clones("avx512f", "avx2,fma", "default")))
void StreamRows(const float* x, int64_t n, int64_t in, const float* w, int64_t out_begin, int64_t out_end,
                const float* bias, int64_t out, float* y) {
  float sums[4];
  for (int64_t o = out_begin; o < out_end; ++o) {
    const float* wr = w + o * in;
    for (int64_t r = 0; r < n; r += 4) {
      const int64_t rows = std::min<int64_t>(4, n - r);
      const float* xr = x + r * in;
      switch (rows) {
        case 1: DotGroup<1>(xr, in, wr, sums); break;
        case 2: DotGroup<2>(xr, in, wr, sums); break;
        case 3: DotGroup<3>(xr, in, wr, sums); break;
        default: DotGroup<4>(xr, in, wr, sums); break;
      }
      for (int64_t i = 0; i < rows; ++i) y[(r + i) * out + o] = sums[i] + (bias ? bias[o] : 0.0f);
    }
  }
}

// R activation rows against W weight rows, each output summed exactly as DotGroup sums it (16 lanes,
// lanes in order, then the tail): the batch-invariant prompt path for float32 weights.
template <int R, int W>
__attribute__((always_inline)) inline void DotTile(const float* x, int64_t in, const float* w, float* sums) {
  float acc[R][W][16] = {};
  int64_t k = 0;
  for (; k + 16 <= in; k += 16) {
    for (int r = 0; r < R; ++r) {
      for (int j = 0; j < W; ++j) {
        for (int l = 0; l < 16; ++l) acc[r][j][l] += x[r * in + k + l] * w[j * in + k + l];
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < W; ++j) {
      float sum = 0.0f;
      for (int l = 0; l < 16; ++l) sum += acc[r][j][l];
      for (int64_t t = k; t < in; ++t) sum += x[r * in + t] * w[j * in + t];
      sums[r * W + j] = sum;
    }
  }
}

template <int R>
__attribute__((always_inline)) inline void DotTileRows(const float* x, int64_t in, const float* w, int cols,
                                                       float* sums) {
  switch (cols) {
    case 1: DotTile<R, 1>(x, in, w, sums); break;
    case 2: DotTile<R, 2>(x, in, w, sums); break;
    default: DotTile<R, 3>(x, in, w, sums); break;
  }
}

// StreamRows for prompts, bit for bit: tiles of 4 activation rows x 3 weight rows over output chunks
// that stay in L2.
__attribute__((target_clones("avx512f", "avx2,fma", "default")))
void TileRows(const float* x, int64_t n, int64_t in, const float* w, int64_t out_begin, int64_t out_end,
              const float* bias, int64_t out, float* y) {
  const int64_t chunk = std::max<int64_t>(3, (int64_t{256} << 10) / (4 * in) / 3 * 3);
  float sums[12];
  for (int64_t c0 = out_begin; c0 < out_end; c0 += chunk) {
    const int64_t c1 = std::min(out_end, c0 + chunk);
    for (int64_t r = 0; r < n; r += 4) {
      const int rows = static_cast<int>(std::min<int64_t>(4, n - r));
      for (int64_t o = c0; o < c1; o += 3) {
        const int cols = static_cast<int>(std::min<int64_t>(3, c1 - o));
        const float* xr = x + r * in;
        const float* wo = w + o * in;
        switch (rows) {
          case 1: DotTileRows<1>(xr, in, wo, cols, sums); break;
          case 2: DotTileRows<2>(xr, in, wo, cols, sums); break;
          case 3: DotTileRows<3>(xr, in, wo, cols, sums); break;
          default: DotTileRows<4>(xr, in, wo, cols, sums); break;
        }
        for (int i = 0; i < rows; ++i) {
          for (int j = 0; j < cols; ++j) y[(r + i) * out + o + j] = sums[i * cols + j] + (bias ? bias[o + j] : 0.0f);
        }
      }
    }
  }
}

#if defined(__x86_64__)
// The same tiles written for AVX-512, as DotGroup's AVX-512 clone computes each output: one 16-lane
// accumulator updated by fused multiply-adds per block of 16, lanes added in order from 0.0f, then the
// tail fused into the sum. R rows x W outputs in registers; one call runs the blocks of 16 in [k0, k1)
// on the accumulators kept in `state` (zero before the first call), and with `last` adds the tail and
// writes sums[r * W + j].
template <int R, int W>
__attribute__((target("avx512f"))) void TileF32Avx512(const float* x, int64_t in, const float* w, int64_t k0,
                                                      int64_t k1, bool last, float* state, float* sums) {
  __m512 acc[R][W];
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < W; ++j) acc[r][j] = _mm512_loadu_ps(state + (r * W + j) * 16);
  }
  for (int64_t k = k0; k < k1; k += 16) {
    __m512 xr[R];
    for (int r = 0; r < R; ++r) {
      xr[r] = _mm512_loadu_ps(x + r * in + k);
      asm("" : "+v"(xr[r]));  // one load per row, not one per FMA
    }
    for (int j = 0; j < W; ++j) {
      const __m512 wj = _mm512_loadu_ps(w + j * in + k);
      for (int r = 0; r < R; ++r) acc[r][j] = _mm512_fmadd_ps(xr[r], wj, acc[r][j]);
    }
  }
  if (!last) {
    for (int r = 0; r < R; ++r) {
      for (int j = 0; j < W; ++j) _mm512_storeu_ps(state + (r * W + j) * 16, acc[r][j]);
    }
    return;
  }
  const int64_t tail = in / 16 * 16;
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < W; ++j) {
      alignas(64) float lanes[16];
      _mm512_store_ps(lanes, acc[r][j]);
      float sum = 0.0f;
      for (int l = 0; l < 16; ++l) sum += lanes[l];
      for (int64_t t = tail; t < in; ++t) sum = std::fma(x[r * in + t], w[j * in + t], sum);
      sums[r * W + j] = sum;
    }
  }
}

using TileF32Fn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, bool, float*, float*);
constexpr int kF32TileRows = 4, kF32TileCols = 6;

template <int R, int... Ws>
constexpr std::array<TileF32Fn, sizeof...(Ws)> TileF32Row(std::integer_sequence<int, Ws...>) {
  return {TileF32Avx512<R, Ws + 1>...};
}

// TileRows with TileF32Avx512 (cpu_tiles::RunTiles): output chunks of 512 KiB of weights, each row quad
// in pieces of 1024 weights (16 KiB).
__attribute__((target("avx512f"))) void TileRowsAvx512(const float* x, int64_t n, int64_t in, const float* w,
                                                       int64_t out_begin, int64_t out_end, const float* bias,
                                                       int64_t out, float* y) {
  static constexpr std::array<std::array<TileF32Fn, kF32TileCols>, kF32TileRows> kTiles = {
      TileF32Row<1>(std::make_integer_sequence<int, kF32TileCols>{}),
      TileF32Row<2>(std::make_integer_sequence<int, kF32TileCols>{}),
      TileF32Row<3>(std::make_integer_sequence<int, kF32TileCols>{}),
      TileF32Row<4>(std::make_integer_sequence<int, kF32TileCols>{})};
  const int64_t chunk = std::max<int64_t>(kF32TileCols, (int64_t{512} << 10) / (4 * in) / kF32TileCols * kF32TileCols);
  cpu_tiles::RunTiles<kF32TileRows, kF32TileCols, kF32TileRows * kF32TileCols * 16>(
      n, /*full=*/in / 16 * 16, /*piece=*/1024, chunk, out_begin, out_end, bias, out, y,
      [&](int64_t r, int rows, int64_t o, int cols, int64_t k0, int64_t k1, bool last, float* state, float* sums) {
        kTiles[rows - 1][cols - 1](x + r * in, in, w + o * in, k0, k1, last, state, sums);
      });
}
#endif  // __x86_64__

void NormRow(const float* x, const float* w, float eps, int64_t hidden, float* out) {
  float sum_squares = 0.0f;
  for (int64_t j = 0; j < hidden; ++j) sum_squares += x[j] * x[j];
  const float inv = 1.0f / std::sqrt(sum_squares / hidden + eps);
  for (int64_t j = 0; j < hidden; ++j) out[j] = x[j] * inv * w[j];
}

}  // namespace

void RmsNorm(ThreadPool& pool, const Tensor& x, const Tensor& weight, float eps, const Tensor& out) {
  const int64_t hidden = x.dim(1);
  pool.ParallelFor(x.dim(0), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      NormRow(x.as<float>() + i * hidden, weight.as<float>(), eps, hidden, out.as<float>() + i * hidden);
    }
  });
}

void AddRmsNorm(ThreadPool& pool, const Tensor& residual, const Tensor& delta, const Tensor& weight,
                float eps, const Tensor& out) {
  const int64_t hidden = residual.dim(1);
  pool.ParallelFor(residual.dim(0), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float* r = residual.as<float>() + i * hidden;
      const float* d = delta.as<float>() + i * hidden;
      for (int64_t j = 0; j < hidden; ++j) r[j] += d[j];
      NormRow(r, weight.as<float>(), eps, hidden, out.as<float>() + i * hidden);
    }
  });
}

namespace {

// Weight rows per range of a streamed Linear: about 8 ranges per thread, at least 16 rows.
int64_t StreamGrain(const ThreadPool& pool, int64_t out) {
  return std::max<int64_t>(16, out / (8 * pool.num_threads()));
}

// Output ranges of a tiled prompt Linear: about 4 ranges per thread, whole tiles (of 2 or 3 outputs).
int64_t TileGrain(const ThreadPool& pool, int64_t out) {
  return std::max<int64_t>(6, out / (4 * pool.num_threads()) / 6 * 6);
}

// Prompts (more than kMaxStreamedRows rows): y = x · wᵀ as independent column blocks of y, one weight
// block each, taken by the pool's threads in turn; each runs a single-threaded sgemm of all n rows
// against its block. A 16-bit block is first widened into the thread's own float32 scratch, small
// enough to stay in its L2. OpenBLAS runs single-threaded inside the pool's threads (CpuBackend sets
// it): its own spinning threads beside ours would oversubscribe the cores.
void BlockedGemm(ThreadPool& pool, const Tensor& x, const Tensor& w, const float* b, const Tensor& y) {
  const int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0);
  const int64_t block = std::min<int64_t>(out, std::max<int64_t>(16, kGemmBlockFloats / in / 16 * 16));
  pool.ParallelForDynamic(out, block, [&](int64_t o0, int64_t o1) {
    const float* wb;
    if (w.dtype == DType::kF32) {
      wb = w.as<float>() + o0 * in;
    } else {
      thread_local std::vector<float> widened;
      if (static_cast<int64_t>(widened.size()) < (o1 - o0) * in) widened.resize((o1 - o0) * in);
      cpu_half::WidenRow(w.dtype, w.as<uint16_t>() + o0 * in, (o1 - o0) * in, widened.data());
      wb = widened.data();
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(o1 - o0),
                static_cast<int>(in), 1.0f, x.as<float>(), static_cast<int>(in), wb, static_cast<int>(in),
                0.0f, y.as<float>() + o0, static_cast<int>(out));
    if (b != nullptr) {
      for (int64_t i = 0; i < n; ++i) {
        float* row = y.as<float>() + i * out;
        for (int64_t o = o0; o < o1; ++o) row[o] += b[o];
      }
    }
  });
}

}  // namespace

void Linear(ThreadPool& pool, const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y,
            std::vector<float>& scratch, bool batch_invariant, bool bf16_dot) {
  const int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0);
  const float* b = bias ? bias->as<float>() : nullptr;
  if (bf16_dot && w.dtype == DType::kBF16 && cpu_bf16dot::Available()) {
    // bf16 dot products on bf16-rounded activations (bf16_dot.h): weights read as stored. With
    // batch_invariant, the prompt tiles sum every output as the decode rows do.
    const int64_t ldx = cpu_bf16dot::Stride(in);
    scratch.resize(static_cast<size_t>((n * ldx + 1) / 2));
    uint16_t* x16 = reinterpret_cast<uint16_t*>(scratch.data());
    cpu_bf16dot::RoundRows(x.as<float>(), n, in, x16);
    if (n > kMaxStreamedRows) {
      const int64_t grain = std::max<int64_t>(4, out / (4 * pool.num_threads()) / 4 * 4);
      pool.ParallelForDynamic(out, grain, [&](int64_t begin, int64_t end) {
        cpu_bf16dot::Gemm(x16, n, in, w.as<uint16_t>(), begin, end, b, out, y.as<float>(), batch_invariant);
      });
    } else {
      pool.ParallelForDynamic(out, StreamGrain(pool, out), [&](int64_t begin, int64_t end) {
        cpu_bf16dot::StreamRows(x16, n, in, w.as<uint16_t>(), begin, end, b, out, y.as<float>());
      });
    }
    return;
  }
  if (n > kMaxStreamedRows && batch_invariant) {
    // Every row summed as the decode kernel sums it, in tiles: a row's result is what it would be
    // decoded alone.
    if (w.dtype == DType::kF32) {
#if defined(__x86_64__)
      // The explicit AVX-512 tiles where the CPU has AVX-512F (as StreamRows' clone does); the generic
      // ones when TANDEM_CPU_ISA steps down, so that the tests check those too (on this CPU they run as
      // their AVX-512 clone, whose sums are the same).
      static const bool avx512 = cpu_half::ActiveIsa() == "avx512";
#else
      constexpr bool avx512 = false;
#endif
      pool.ParallelForDynamic(out, TileGrain(pool, out), [&](int64_t begin, int64_t end) {
#if defined(__x86_64__)
        if (avx512) return TileRowsAvx512(x.as<float>(), n, in, w.as<float>(), begin, end, b, out, y.as<float>());
#endif
        TileRows(x.as<float>(), n, in, w.as<float>(), begin, end, b, out, y.as<float>());
      });
    } else if (cpu_half::HasTileKernel(w.dtype)) {
      const float* xs = cpu_half::PrepareActivations(w.dtype, x.as<float>(), n, in, scratch, cpu_half::TileStride(in));
      pool.ParallelForDynamic(out, TileGrain(pool, out), [&](int64_t begin, int64_t end) {
        cpu_half::TileRows(w.dtype, xs, n, in, w.as<uint16_t>(), begin, end, b, out, y.as<float>());
      });
    } else {
      // No tile kernel for this dtype here: the decode kernel itself, four rows at a time.
      const float* xs = cpu_half::PrepareActivations(w.dtype, x.as<float>(), n, in, scratch);
      pool.ParallelForDynamic(out, StreamGrain(pool, out), [&](int64_t begin, int64_t end) {
        cpu_half::StreamRows(w.dtype, xs, n, in, w.as<uint16_t>(), begin, end, b, out, y.as<float>());
      });
    }
    return;
  }
  if (n > kMaxStreamedRows) {
    BlockedGemm(pool, x, w, b, y);
    return;
  }
  if (w.dtype != DType::kF32) {
    const float* xs = cpu_half::PrepareActivations(w.dtype, x.as<float>(), n, in, scratch);
    pool.ParallelForDynamic(out, StreamGrain(pool, out), [&](int64_t begin, int64_t end) {
      cpu_half::StreamRows(w.dtype, xs, n, in, w.as<uint16_t>(), begin, end, b, out, y.as<float>());
    });
    return;
  }
  pool.ParallelForDynamic(out, StreamGrain(pool, out), [&](int64_t begin, int64_t end) {
    StreamRows(x.as<float>(), n, in, w.as<float>(), begin, end, b, out, y.as<float>());
  });
}

void Embedding(ThreadPool& pool, const Tensor& tokens, const Tensor& table, const Tensor& out) {
  const int64_t hidden = table.dim(1);
  pool.ParallelFor(tokens.dim(0), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t id = tokens.as<int32_t>()[i];
      float* dst = out.as<float>() + i * hidden;
      if (table.dtype == DType::kF32) {
        std::memcpy(dst, table.as<float>() + id * hidden, hidden * sizeof(float));
      } else {
        cpu_half::WidenRow(table.dtype, table.as<uint16_t>() + id * hidden, hidden, dst);
      }
    }
  });
}

namespace {

// One (token, KV head) pair: the `group` query heads that share this KV head walk the context together,
// so each K and V row is loaded once for all of them. Scores for the whole context are kept (two
// passes: scores and their max, then exp-weighted V).
struct AttentionItem {
  const float* q;          // [group, head_dim] (query heads of the group are adjacent)
  float* out;              // [group, head_dim]
  const int32_t* table;    // block table of the sequence
  int64_t pos;             // attends to positions 0..pos
};

__attribute__((target_clones("avx512f", "avx2,fma", "default")))
void AttendGroup(const AttentionItem& item, const AttentionShape& shape, int kvh, const LayerKv& kv,
                 float* scores /* [group, pos + 1] */, float* acc /* [group, head_dim] */) {
  const int64_t hd = shape.head_dim;
  const int64_t kv_row = static_cast<int64_t>(shape.num_kv_heads) * hd;
  const int group = shape.num_heads / shape.num_kv_heads;
  const int64_t len = item.pos + 1;
  const float* k_base = kv.k.as<float>() + kvh * hd;
  const float* v_base = kv.v.as<float>() + kvh * hd;
  for (int64_t t = 0; t < len; ++t) {
    const int64_t slot = static_cast<int64_t>(item.table[t / shape.block_size]) * shape.block_size +
                         t % shape.block_size;
    const float* k = k_base + slot * kv_row;
    for (int g = 0; g < group; ++g) {
      const float* q = item.q + g * hd;
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int64_t d = 0; d < hd; ++d) dot += q[d] * k[d];
      scores[g * len + t] = dot * shape.scale;
    }
  }
  for (int g = 0; g < group; ++g) {
    float* sg = scores + g * len;
    float max_score = -INFINITY;
    for (int64_t t = 0; t < len; ++t) max_score = std::max(max_score, sg[t]);
    float denom = 0.0f;
    for (int64_t t = 0; t < len; ++t) {
      sg[t] = std::exp(sg[t] - max_score);
      denom += sg[t];
    }
    const float inv = 1.0f / denom;
    for (int64_t t = 0; t < len; ++t) sg[t] *= inv;
  }
  std::fill(acc, acc + group * hd, 0.0f);
  for (int64_t t = 0; t < len; ++t) {
    const int64_t slot = static_cast<int64_t>(item.table[t / shape.block_size]) * shape.block_size +
                         t % shape.block_size;
    const float* v = v_base + slot * kv_row;
    for (int g = 0; g < group; ++g) {
      const float p = scores[g * len + t];
      float* a = acc + g * hd;
#pragma omp simd
      for (int64_t d = 0; d < hd; ++d) a[d] += p * v[d];
    }
  }
  std::copy(acc, acc + group * hd, item.out);
}

#if defined(__x86_64__)

// The same attention with explicit AVX-512 (head_dim a multiple of 16): the compiler's version of the
// loops above reduces every q.k dot product with 16 dependent scalar adds and keeps the V accumulators
// in memory, which made attention an eighth of a TinyLlama decode step at 512 tokens of context. Here a
// dot product is 16-lane FMAs and one tree reduction, softmax is vectorised (Exp16, below), and the
// exp-weighted V sum keeps up to 4 heads x 64 lanes of accumulators in registers while each V row
// streams past once per 4 heads. Positions are walked block by block (no division per position).

// e^x for x <= 0 (softmax arguments after subtracting the max): x = n ln2 + r, |r| <= ln2/2, e^r by its
// degree-7 Taylor polynomial (truncation error under 1e-8 relative), then scaled by 2^n. Below -87 the
// result is 0 or a denormal either way; inputs are clamped there.
__attribute__((target("avx512f"), always_inline)) inline __m512 Exp16(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);  // ln2, high bits
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723212e-6f), r);  // ln2, the rest
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// acc[g][d] += sum over positions t of p[g][t] * v_t[d] for G heads of the group and D chunks of 16 lanes.
template <int G, int D>
__attribute__((target("avx512f"))) void AccumulateV(const AttentionItem& item, const AttentionShape& shape,
                                                    const float* v_base, int64_t kv_row, const float* scores,
                                                    int64_t len, float* acc /* G rows of head_dim */) {
  __m512 a[G][D];
  for (int g = 0; g < G; ++g) {
    for (int d = 0; d < D; ++d) a[g][d] = _mm512_setzero_ps();
  }
  const int64_t bs = shape.block_size;
  for (int64_t b = 0, t = 0; t < len; ++b) {
    const float* block = v_base + static_cast<int64_t>(item.table[b]) * bs * kv_row;
    for (int64_t j = 0; j < bs && t < len; ++j, ++t) {
      const float* v = block + j * kv_row;
      __m512 vv[D];
      for (int d = 0; d < D; ++d) vv[d] = _mm512_loadu_ps(v + 16 * d);
      for (int g = 0; g < G; ++g) {
        const __m512 p = _mm512_set1_ps(scores[g * len + t]);
        for (int d = 0; d < D; ++d) a[g][d] = _mm512_fmadd_ps(p, vv[d], a[g][d]);
      }
    }
  }
  for (int g = 0; g < G; ++g) {
    for (int d = 0; d < D; ++d) _mm512_storeu_ps(acc + g * shape.head_dim + 16 * d, a[g][d]);
  }
}

using AccumulateFn = void (*)(const AttentionItem&, const AttentionShape&, const float*, int64_t, const float*,
                              int64_t, float*);
template <int G>
constexpr AccumulateFn kAccumulate[4] = {AccumulateV<G, 1>, AccumulateV<G, 2>, AccumulateV<G, 3>, AccumulateV<G, 4>};
constexpr const AccumulateFn* kAccumulateByHeads[4] = {kAccumulate<1>, kAccumulate<2>, kAccumulate<3>, kAccumulate<4>};

__attribute__((target("avx512f"))) void AttendGroupAvx512(const AttentionItem& item, const AttentionShape& shape,
                                                          int kvh, const LayerKv& kv, float* scores, float* acc) {
  const int64_t hd = shape.head_dim;
  const int64_t chunks = hd / 16;
  const int64_t kv_row = static_cast<int64_t>(shape.num_kv_heads) * hd;
  const int group = shape.num_heads / shape.num_kv_heads;
  const int64_t len = item.pos + 1;
  const int64_t bs = shape.block_size;
  const float* k_base = kv.k.as<float>() + kvh * hd;
  const float* v_base = kv.v.as<float>() + kvh * hd;
  // Scores: one K row against every query head of the group.
  for (int64_t b = 0, t = 0; t < len; ++b) {
    const float* block = k_base + static_cast<int64_t>(item.table[b]) * bs * kv_row;
    for (int64_t j = 0; j < bs && t < len; ++j, ++t) {
      const float* k = block + j * kv_row;
      for (int g = 0; g < group; ++g) {
        const float* q = item.q + g * hd;
        __m512 dot = _mm512_mul_ps(_mm512_loadu_ps(q), _mm512_loadu_ps(k));
        for (int64_t c = 1; c < chunks; ++c) {
          dot = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * c), _mm512_loadu_ps(k + 16 * c), dot);
        }
        scores[g * len + t] = _mm512_reduce_add_ps(dot) * shape.scale;
      }
    }
  }
  // Softmax per head.
  for (int g = 0; g < group; ++g) {
    float* sg = scores + g * len;
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    int64_t t = 0;
    for (; t + 16 <= len; t += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(sg + t));
    float max_score = _mm512_reduce_max_ps(vmax);
    for (; t < len; ++t) max_score = std::max(max_score, sg[t]);
    const __m512 m = _mm512_set1_ps(max_score);
    __m512 vsum = _mm512_setzero_ps();
    for (t = 0; t + 16 <= len; t += 16) {
      const __m512 e = Exp16(_mm512_sub_ps(_mm512_loadu_ps(sg + t), m));
      _mm512_storeu_ps(sg + t, e);
      vsum = _mm512_add_ps(vsum, e);
    }
    if (t < len) {
      const __mmask16 tail = static_cast<__mmask16>((1u << (len - t)) - 1);
      const __m512 e = Exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, sg + t), m));
      _mm512_mask_storeu_ps(sg + t, tail, e);
      vsum = _mm512_add_ps(vsum, _mm512_maskz_mov_ps(tail, e));
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    for (t = 0; t + 16 <= len; t += 16) _mm512_storeu_ps(sg + t, _mm512_mul_ps(_mm512_loadu_ps(sg + t), inv));
    for (; t < len; ++t) sg[t] *= _mm512_cvtss_f32(inv);
  }
  // Exp-weighted V: up to 4 heads x 4 chunks of 16 lanes per pass over V.
  for (int g0 = 0; g0 < group; g0 += 4) {
    const int heads = std::min(4, group - g0);
    for (int64_t c0 = 0; c0 < chunks; c0 += 4) {
      const int64_t width = std::min<int64_t>(4, chunks - c0);
      kAccumulateByHeads[heads - 1][width - 1](item, shape, v_base + 16 * c0, kv_row, scores + g0 * len, len,
                                               acc + g0 * hd + 16 * c0);
    }
  }
  std::copy(acc, acc + group * hd, item.out);
}

bool UseAvx512Attention(int32_t head_dim) {
  static const bool avx512 = cpu_half::ActiveIsa() == "avx512";
  return avx512 && head_dim % 16 == 0;
}

#endif  // __x86_64__

}  // namespace

void Attention(ThreadPool& pool, const Tensor& qkv, const BatchLayout& layout,
               const AttentionShape& shape, const LayerKv& kv, const Tensor& out) {
  const int64_t hd = shape.head_dim;
  const int64_t row = static_cast<int64_t>(shape.num_heads + 2 * shape.num_kv_heads) * hd;
  const int group = shape.num_heads / shape.num_kv_heads;
  const int32_t* query_start = layout.query_start.as<int32_t>();
  const int32_t* context_lens = layout.context_lens.as<int32_t>();
  // Map each batch token to its sequence once.
  std::vector<int32_t> seq_of_token(layout.num_tokens);
  for (int s = 0; s < layout.num_seqs; ++s) {
    for (int32_t t = query_start[s]; t < query_start[s + 1]; ++t) seq_of_token[t] = s;
  }
  const int64_t work = static_cast<int64_t>(layout.num_tokens) * shape.num_kv_heads;
#if defined(__x86_64__)
  const bool avx512 = UseAvx512Attention(shape.head_dim);
#endif
  pool.ParallelFor(work, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(group) * layout.max_context_len);
    std::vector<float> acc(group * hd);
    for (int64_t w = begin; w < end; ++w) {
      const int64_t token = w / shape.num_kv_heads;
      const int kvh = static_cast<int>(w % shape.num_kv_heads);
      const int s = seq_of_token[token];
      const int64_t q_len = query_start[s + 1] - query_start[s];
      AttentionItem item;
      item.q = qkv.as<float>() + token * row + kvh * group * hd;
      item.out = out.as<float>() + token * shape.num_heads * hd + kvh * group * hd;
      item.table = layout.block_tables.as<int32_t>() + s * layout.max_blocks_per_seq;
      item.pos = context_lens[s] - q_len + (token - query_start[s]);
      if (item.pos < 0) {  // padding
        std::fill(item.out, item.out + group * hd, 0.0f);
        continue;
      }
#if defined(__x86_64__)
      if (avx512) {
        AttendGroupAvx512(item, shape, kvh, kv, scores.data(), acc.data());
        continue;
      }
#endif
      AttendGroup(item, shape, kvh, kv, scores.data(), acc.data());
    }
  });
}

void SiluMul(ThreadPool& pool, const Tensor& gate_up, const Tensor& out) {
  const int64_t inter = out.dim(1);
  pool.ParallelFor(out.dim(0), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* g = gate_up.as<float>() + i * 2 * inter;
      const float* u = g + inter;
      float* o = out.as<float>() + i * inter;
      for (int64_t j = 0; j < inter; ++j) o[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
    }
  });
}

}  // namespace tandem::cpu_fast
