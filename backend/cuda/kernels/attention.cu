// Paged causal attention with an online softmax (no score matrix in memory).
//
// Work mapping: grid (row tiles, kv_heads * splits, seqs); 8 warps per block. A sequence's "rows" are
// its (new token, query head of the kv head's group) pairs, q_len * group of them; a block takes
// kAttentionRows = 16 of them, two per warp, so the query heads of a group share every K/V load
// (grouped-query attention) and so do consecutive tokens of a prompt. The block walks its keys, up to
// its last row's position and within its split's partition, in tiles of 32: the whole block stages a
// tile of K (padded rows: conflict-free column reads) and V in shared memory as float; then in each
// warp lane j scores key j against the row's q (masked causally per row), the warp takes the tile's max
// and sum, and rescales its running output, each lane owning head_dim / 32 output elements.
// With one split the output is normalised and written; with several, each split writes its unnormalised
// output with its max and sum, and a combine kernel merges them (flash-decoding).
//
// Bound: for decode, reading K and V once per kv head (bandwidth); for prompts, the q.k and p.v FMAs on
// the CUDA cores (about 4 * rows * keys * head_dim FLOP), at a fraction of what tensor cores would give.
#include "backend/cuda/kernels/attention.cuh"

#include "backend/cuda/kernels/common.cuh"

namespace tandem::cuda {
namespace {

constexpr int kWarps = kAttentionWarps;
constexpr int kRowsPerWarp = kAttentionRowsPerWarp;
constexpr int kRows = kAttentionRows;
constexpr int kTile = kAttentionKeyTile;
constexpr int kMaxPerLane = kAttentionMaxHeadDim / 32;

struct KernelArgs {
  const void* qkv;
  const void* k_cache;
  const void* v_cache;
  void* out;
  const int32_t* query_start;
  const int32_t* context_lens;
  const int32_t* block_tables;
  int32_t num_heads, num_kv_heads, head_dim, block_size, max_blocks_per_seq;
  int32_t num_splits, partition;
  float scale;
  float* partial_out;  // [num_tokens, heads, splits, head_dim]
  float* partial_ml;   // [num_tokens, heads, splits, 2]: max, sum
};

template <typename T>
__global__ void __launch_bounds__(kWarps * 32) AttentionKernel(KernelArgs a) {
  extern __shared__ float smem[];
  const int hd = a.head_dim;
  float* q_s = smem;                     // [kRows][hd]
  float* k_s = q_s + kRows * hd;         // [kTile][hd + 1]
  float* v_s = k_s + kTile * (hd + 1);   // [kTile][hd]
  const T* qkv = static_cast<const T*>(a.qkv);
  const T* k_cache = static_cast<const T*>(a.k_cache);
  const T* v_cache = static_cast<const T*>(a.v_cache);

  const int seq = blockIdx.z;
  const int kvh = blockIdx.y % a.num_kv_heads;
  const int split = blockIdx.y / a.num_kv_heads;
  const int group = a.num_heads / a.num_kv_heads;
  const int q_begin = a.query_start[seq];
  const int q_len = a.query_start[seq + 1] - q_begin;
  const int context = a.context_lens[seq];
  const int rows_total = q_len * group;
  const int row0 = blockIdx.x * kRows;
  if (row0 >= rows_total) return;  // the whole block: this sequence has fewer rows
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t row_width = static_cast<int64_t>(a.num_heads + 2 * a.num_kv_heads) * hd;

  // Stage the block's q rows, pre-scaled.
  for (int i = threadIdx.x; i < kRows * hd; i += blockDim.x) {
    const int r = i / hd, d = i % hd, f = row0 + r;
    float value = 0.0f;
    if (f < rows_total) {
      const int64_t token = q_begin + f / group;
      const int head = kvh * group + f % group;
      value = ToFloat(qkv[token * row_width + static_cast<int64_t>(head) * hd + d]) * a.scale;
    }
    q_s[i] = value;
  }

  // Keys this block may need: up to its last row's position, within its split's partition.
  const int last_f = min(row0 + kRows, rows_total) - 1;
  const int last_pos = context - q_len + last_f / group;  // negative for padding
  const int key_begin = split * a.partition;
  const int key_end = min(last_pos + 1, (split + 1) * a.partition);

  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kMaxPerLane];
  int pos[kRowsPerWarp];
  bool valid[kRowsPerWarp];
#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    const int f = row0 + warp + i * kWarps;
    valid[i] = f < rows_total;
    pos[i] = valid[i] ? context - q_len + f / group : -1;
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int c = 0; c < kMaxPerLane; ++c) acc[i][c] = 0.0f;
  }
  const int32_t* table = a.block_tables + static_cast<int64_t>(seq) * a.max_blocks_per_seq;
  __syncthreads();

  for (int t0 = key_begin; t0 < key_end; t0 += kTile) {
    for (int i = threadIdx.x; i < kTile * hd; i += blockDim.x) {
      const int j = i / hd, d = i % hd, t = t0 + j;
      float kf = 0.0f, vf = 0.0f;
      if (t < key_end) {
        const int64_t slot = static_cast<int64_t>(table[t / a.block_size]) * a.block_size + t % a.block_size;
        const int64_t index = (slot * a.num_kv_heads + kvh) * hd + d;
        kf = ToFloat(k_cache[index]);
        vf = ToFloat(v_cache[index]);
      }
      k_s[j * (hd + 1) + d] = kf;
      v_s[j * hd + d] = vf;
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kRowsPerWarp; ++i) {
      if (!valid[i]) continue;  // warp-uniform
      const int r = warp + i * kWarps;
      const int t = t0 + lane;
      float s = -INFINITY;
      if (t < key_end && t <= pos[i]) {
        const float* q = q_s + r * hd;
        const float* k = k_s + lane * (hd + 1);
        float dot = 0.0f;
        for (int d = 0; d < hd; ++d) dot = fmaf(q[d], k[d], dot);
        s = dot;
      }
      const float m_new = fmaxf(m[i], WarpMax(s));
      // No visible key yet (warp-uniform). A NaN score is not "no key": it propagates, as in the reference.
      if (m_new == -INFINITY && !__any_sync(0xffffffffu, isnan(s))) continue;
      const float alpha = expf(m[i] - m_new);
      const float p = s == -INFINITY ? 0.0f : expf(s - m_new);
      l[i] = l[i] * alpha + WarpSum(p);
#pragma unroll
      for (int c = 0; c < kMaxPerLane; ++c) acc[i][c] *= alpha;
      for (int j = 0; j < kTile; ++j) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
        for (int c = 0; c < kMaxPerLane; ++c) {
          const int d = lane + 32 * c;
          if (d < hd) acc[i][c] = fmaf(pj, v_s[j * hd + d], acc[i][c]);
        }
      }
      m[i] = m_new;
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    if (!valid[i]) continue;
    const int f = row0 + warp + i * kWarps;
    const int64_t token = q_begin + f / group;
    const int head = kvh * group + f % group;
    if (a.num_splits == 1) {
      T* o = static_cast<T*>(a.out) + (token * a.num_heads + head) * hd;
      // Divided as the combine kernel divides: a row whose keys all fall in one split gets the same
      // bits whether or not the keys were split. No key (padding): zero. A NaN sum stays NaN.
#pragma unroll
      for (int c = 0; c < kMaxPerLane; ++c) {
        const int d = lane + 32 * c;
        if (d < hd) o[d] = FromFloat<T>(l[i] != 0.0f ? acc[i][c] / l[i] : 0.0f);
      }
    } else {
      const int64_t base = (token * a.num_heads + head) * a.num_splits + split;
      float* o = a.partial_out + base * hd;
#pragma unroll
      for (int c = 0; c < kMaxPerLane; ++c) {
        const int d = lane + 32 * c;
        if (d < hd) o[d] = acc[i][c];
      }
      if (lane == 0) {
        a.partial_ml[base * 2] = m[i];
        a.partial_ml[base * 2 + 1] = l[i];
      }
    }
  }
}

// Merges the splits of one (token, head): out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M).
template <typename T>
__global__ void CombineKernel(const float* __restrict__ partial_out, const float* __restrict__ partial_ml,
                              T* __restrict__ out, int32_t num_heads, int32_t head_dim, int32_t num_splits) {
  const int64_t token = blockIdx.x;
  const int head = blockIdx.y;
  const int d = threadIdx.x;
  const int64_t base = (token * num_heads + head) * num_splits;
  float max_m = -INFINITY;
  bool nan = false;
  for (int s = 0; s < num_splits; ++s) {
    const float m = partial_ml[(base + s) * 2];
    nan = nan || isnan(m);
    max_m = fmaxf(max_m, m);
  }
  float value = nan ? NAN : 0.0f;
  if (!nan && max_m != -INFINITY) {
    float sum = 0.0f, weighted = 0.0f;
    for (int s = 0; s < num_splits; ++s) {
      const float m = partial_ml[(base + s) * 2];
      if (m == -INFINITY) continue;
      const float w = expf(m - max_m);
      sum += partial_ml[(base + s) * 2 + 1] * w;
      if (d < head_dim) weighted += partial_out[(base + s) * head_dim + d] * w;
    }
    value = sum != 0.0f ? weighted / sum : 0.0f;
  }
  if (d < head_dim) out[(token * num_heads + head) * head_dim + d] = FromFloat<T>(value);
}

}  // namespace

cudaError_t LaunchAttention(const AttentionArgs& a, const DeviceLimits& limits, cudaStream_t stream) {
  const AttentionDims& dims = a.dims;
  if (dims.head_dim < 1 || dims.head_dim > kAttentionMaxHeadDim || dims.num_kv_heads < 1 ||
      dims.num_heads % dims.num_kv_heads != 0) {
    return cudaErrorInvalidValue;
  }
  if (dims.num_tokens == 0 || dims.num_seqs == 0) return cudaSuccess;
  AttentionPlan plan = PlanAttention(dims, a.split_token_limit, limits);
  if (plan.num_splits > 1 && AttentionScratchFloats(dims, plan) > a.scratch_floats) {
    plan = PlanAttention(dims, 0, limits);  // not enough scratch: one split
  }
  KernelArgs k;
  k.qkv = a.qkv;
  k.k_cache = a.k_cache;
  k.v_cache = a.v_cache;
  k.out = a.out;
  k.query_start = a.query_start;
  k.context_lens = a.context_lens;
  k.block_tables = a.block_tables;
  k.num_heads = dims.num_heads;
  k.num_kv_heads = dims.num_kv_heads;
  k.head_dim = dims.head_dim;
  k.block_size = a.block_size;
  k.max_blocks_per_seq = a.max_blocks_per_seq;
  k.num_splits = plan.num_splits;
  k.partition = plan.partition;
  k.scale = a.scale;
  const int64_t split_outputs = static_cast<int64_t>(dims.num_tokens) * dims.num_heads * plan.num_splits;
  k.partial_out = a.scratch;
  k.partial_ml = a.scratch + split_outputs * dims.head_dim;
  cudaError_t result = cudaErrorInvalidValue;
  DispatchFloat(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    const dim3 grid(GridDim(plan.main.grid_x), GridDim(plan.main.grid_y), GridDim(plan.main.grid_z));
    if (plan.main.shared_bytes > limits.max_shared_per_block) {
      result = cudaFuncSetAttribute(AttentionKernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(plan.main.shared_bytes));
      if (result != cudaSuccess) return;
    }
    AttentionKernel<T><<<grid, plan.main.block, plan.main.shared_bytes, stream>>>(k);
    result = cudaGetLastError();
    if (result != cudaSuccess || plan.num_splits == 1) return;
    const dim3 combine_grid(GridDim(plan.combine.grid_x), GridDim(plan.combine.grid_y));
    CombineKernel<T><<<combine_grid, plan.combine.block, 0, stream>>>(
        k.partial_out, k.partial_ml, static_cast<T*>(a.out), dims.num_heads, dims.head_dim, plan.num_splits);
    result = cudaGetLastError();
  });
  return result;
}

}  // namespace tandem::cuda
