// Sampling.
//
// Argmax: one block of 1024 threads per row. Pass 1 finds the largest non-NaN logit (lowest id on
// ties) and counts non-NaN logits; pass 2 sums exp(logit - max) for the log-softmax. Reads the row
// twice (the second time from L2): bandwidth-bound, vocab * 8 bytes per row.
//
// Random rows (temperature > 0), in groups of up to kSampleSortRows: a segmented radix sort orders each
// row's logits descending (stable, so equal logits keep ascending ids: the reference's tie order; NaN
// sorts after -inf, beyond the `valid` count); then one block per row computes, in double as
// the reference does, p_i = exp((logit_i - max) / temperature) over the top_k (or valid) candidates,
// the top_p cut as the first prefix whose normalised cumulative sum reaches top_p, and the pick as the
// first candidate whose cumulative sum exceeds uniform * total. Cumulative sums are block-wide scans
// over chunks of 1024 candidates, so they differ from the reference's sequential sums only in the last
// bits: a pick can differ only when the uniform lands within ~1e-15 of a boundary.
#include "backend/cuda/kernels/sampling.cuh"

#include <cub/cub.cuh>

#include <climits>

#include "backend/cuda/kernels/common.cuh"
#include "backend/cuda/launch_shapes.h"

namespace tandem::cuda {
namespace {

constexpr int kThreads = kSampleThreads;

struct ArgmaxPair {
  float value;
  int32_t index;  // INT_MAX: none found
};

struct MinOp {
  __device__ int operator()(int a, int b) const { return a < b ? a : b; }
};

struct ArgmaxOp {
  __device__ ArgmaxPair operator()(const ArgmaxPair& a, const ArgmaxPair& b) const {
    if (a.index == INT_MAX) return b;
    if (b.index == INT_MAX) return a;
    if (a.value > b.value) return a;
    if (b.value > a.value) return b;
    return a.index < b.index ? a : b;
  }
};

__global__ void __launch_bounds__(kThreads) ArgmaxKernel(const float* __restrict__ logits, int64_t vocab,
                                                         int32_t* __restrict__ tokens, float* __restrict__ logprobs,
                                                         SampleRowStats* __restrict__ stats) {
  using PairReduce = cub::BlockReduce<ArgmaxPair, kThreads>;
  using FloatReduce = cub::BlockReduce<float, kThreads>;
  using IntReduce = cub::BlockReduce<int, kThreads>;
  __shared__ union {
    typename PairReduce::TempStorage pair;
    typename FloatReduce::TempStorage sum;
    typename IntReduce::TempStorage count;
  } temp;
  __shared__ ArgmaxPair best_shared;
  __shared__ int valid_shared;
  const int64_t row = blockIdx.x;
  const float* x = logits + row * vocab;

  ArgmaxPair best{-INFINITY, INT_MAX};
  int valid = 0;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
    const float v = x[i];
    if (isnan(v)) continue;
    ++valid;
    if (best.index == INT_MAX || v > best.value) best = {v, static_cast<int32_t>(i)};
  }
  const ArgmaxPair reduced = PairReduce(temp.pair).Reduce(best, ArgmaxOp{});
  if (threadIdx.x == 0) best_shared = reduced;
  __syncthreads();
  const int valid_total = IntReduce(temp.count).Sum(valid);
  if (threadIdx.x == 0) valid_shared = valid_total;
  __syncthreads();
  const ArgmaxPair top = best_shared;
  const float max_value = top.index == INT_MAX ? -INFINITY : top.value;

  float sum = 0.0f;
  if (isfinite(max_value)) {
    for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
      const float v = x[i];
      if (!isnan(v)) sum += expf(v - max_value);
    }
  }
  const float total = FloatReduce(temp.sum).Sum(sum);
  if (threadIdx.x == 0) {
    const float log_sum = logf(total);
    tokens[row] = top.index == INT_MAX ? 0 : top.index;
    logprobs[row] = isfinite(max_value) ? -log_sum : -INFINITY;
    stats[row] = SampleRowStats{max_value, log_sum, valid_shared, 0};
  }
}

// Keys (NaN -> a negative NaN that sorts last, -0 -> +0 so that the radix order agrees with float
// comparison), ids and segment offsets of the rows to sort.
__global__ void PrepareSortKernel(const float* __restrict__ logits, int64_t vocab, const int32_t* __restrict__ rows,
                                  int32_t num_rows, float* __restrict__ keys, int32_t* __restrict__ ids,
                                  int* __restrict__ offsets) {
  const int32_t b = blockIdx.x;
  const float* x = logits + static_cast<int64_t>(rows[b]) * vocab;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float v = x[i];
    // A NaN sorts after every number, -inf included (a negative NaN's radix key is the smallest), so
    // the first `valid` entries are exactly the non-NaN logits, as the reference's candidates are.
    keys[b * vocab + i] = isnan(v) ? __int_as_float(static_cast<int>(0xffffffffu)) : v + 0.0f;
    ids[b * vocab + i] = static_cast<int32_t>(i);
  }
  if (threadIdx.x == 0) {
    offsets[b] = static_cast<int>(b * vocab);
    if (b == num_rows - 1) offsets[num_rows] = static_cast<int>(num_rows * vocab);
  }
}

// The index of the first i in [0, limit) whose inclusive prefix sum of value(i) satisfies
// reached(prefix), or -1. Block-wide scan over chunks of kThreads.
template <typename ValueFn, typename ReachedFn>
__device__ int FirstPrefixReaching(int limit, ValueFn value, ReachedFn reached) {
  using Scan = cub::BlockScan<double, kThreads>;
  using MinReduce = cub::BlockReduce<int, kThreads>;
  __shared__ typename Scan::TempStorage scan_temp;
  __shared__ typename MinReduce::TempStorage min_temp;
  __shared__ int found_shared;
  double running = 0.0;
  for (int base = 0; base < limit; base += kThreads) {
    const int i = base + static_cast<int>(threadIdx.x);
    const double v = i < limit ? value(i) : 0.0;
    double prefix, chunk_total;
    Scan(scan_temp).InclusiveSum(v, prefix, chunk_total);
    prefix += running;
    const int candidate = i < limit && reached(prefix) ? i : INT_MAX;
    const int found = MinReduce(min_temp).Reduce(candidate, MinOp{});
    if (threadIdx.x == 0) found_shared = found;
    __syncthreads();
    const int first = found_shared;
    __syncthreads();
    if (first != INT_MAX) return first;
    running += chunk_total;
  }
  return -1;
}

__device__ double BlockSumDouble(double v) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  __shared__ double total_shared;
  const double total = Reduce(temp).Sum(v);
  if (threadIdx.x == 0) total_shared = total;
  __syncthreads();
  const double out = total_shared;
  __syncthreads();
  return out;
}

__global__ void __launch_bounds__(kThreads)
    SelectKernel(const float* __restrict__ logits, int64_t vocab, const DeviceSampleRow* __restrict__ params,
                 const SampleRowStats* __restrict__ stats, const int32_t* __restrict__ rows,
                 const float* __restrict__ sorted_keys, const int32_t* __restrict__ sorted_ids,
                 int32_t* __restrict__ tokens, float* __restrict__ logprobs) {
  const int32_t b = blockIdx.x;
  const int32_t row = rows[b];
  const DeviceSampleRow p = params[row];
  const SampleRowStats st = stats[row];
  int keep = st.valid;
  if (p.top_k > 0 && p.top_k < keep) keep = p.top_k;
  const float* keys = sorted_keys + b * vocab;
  const int32_t* ids = sorted_ids + b * vocab;
  if (keep == 0) {
    if (threadIdx.x == 0) {
      tokens[row] = 0;
      logprobs[row] = -INFINITY;
    }
    return;
  }
  const double max_logit = keys[0];
  const double temperature = p.temperature;
  auto prob = [&](int i) { return exp((static_cast<double>(keys[i]) - max_logit) / temperature); };

  double local = 0.0;
  for (int i = threadIdx.x; i < keep; i += kThreads) local += prob(i);
  double total = BlockSumDouble(local);
  if (p.top_p < 1.0f) {
    const double top_p = p.top_p;
    const int first = FirstPrefixReaching(
        keep, [&](int i) { return prob(i) / total; }, [&](double prefix) { return prefix >= top_p; });
    if (first >= 0) keep = first + 1;
    local = 0.0;
    for (int i = threadIdx.x; i < keep; i += kThreads) local += prob(i);
    total = BlockSumDouble(local);
  }
  const double target = p.uniform * total;
  int pick = FirstPrefixReaching(keep, prob, [&](double prefix) { return target < prefix; });
  if (pick < 0) pick = keep - 1;
  if (threadIdx.x == 0) {
    const int32_t token = ids[pick];
    tokens[row] = token;
    const float logit = logits[static_cast<int64_t>(row) * vocab + token];
    logprobs[row] = isfinite(st.max) ? logit - st.max - st.log_sum : -INFINITY;
  }
}

// Scratch layout: keys | keys sorted | ids | ids sorted | offsets | radix sort temp.
struct SortScratch {
  float* keys;
  float* keys_sorted;
  int32_t* ids;
  int32_t* ids_sorted;
  int* offsets;
  void* temp;
  size_t temp_bytes;
  size_t total;
};

size_t Align(size_t n) { return (n + 255) / 256 * 256; }

size_t RadixTempBytes(int32_t rows, int64_t vocab) {
  size_t bytes = 0;
  cub::DeviceSegmentedRadixSort::SortPairsDescending(
      nullptr, bytes, static_cast<const float*>(nullptr), static_cast<float*>(nullptr),
      static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr), static_cast<int>(rows * vocab), rows,
      static_cast<const int*>(nullptr), static_cast<const int*>(nullptr));
  return bytes;
}

SortScratch LayOut(void* base, int32_t rows, int64_t vocab) {
  SortScratch s;
  char* p = static_cast<char*>(base);
  const size_t n = static_cast<size_t>(rows) * vocab;
  size_t at = 0;
  s.keys = reinterpret_cast<float*>(p + at);
  at += Align(n * 4);
  s.keys_sorted = reinterpret_cast<float*>(p + at);
  at += Align(n * 4);
  s.ids = reinterpret_cast<int32_t*>(p + at);
  at += Align(n * 4);
  s.ids_sorted = reinterpret_cast<int32_t*>(p + at);
  at += Align(n * 4);
  s.offsets = reinterpret_cast<int*>(p + at);
  at += Align((rows + 1) * 4);
  s.temp = p + at;
  s.temp_bytes = RadixTempBytes(rows, vocab);
  at += Align(s.temp_bytes);
  s.total = at;
  return s;
}

}  // namespace

cudaError_t LaunchArgmax(const ArgmaxArgs& a, cudaStream_t stream) {
  if (a.rows == 0) return cudaSuccess;
  ArgmaxKernel<<<a.rows, kThreads, 0, stream>>>(a.logits, a.vocab, a.tokens, a.logprobs, a.stats);
  return cudaGetLastError();
}

size_t SampleSortScratchBytes(int32_t rows, int64_t vocab) { return LayOut(nullptr, rows, vocab).total; }

cudaError_t LaunchRandomSample(const RandomSampleArgs& a, cudaStream_t stream) {
  if (a.num_sampled == 0) return cudaSuccess;
  if (a.num_sampled > kSampleSortRows) return cudaErrorInvalidValue;
  SortScratch s = LayOut(a.scratch, a.num_sampled, a.vocab);
  if (s.total > a.scratch_bytes) return cudaErrorInvalidValue;
  PrepareSortKernel<<<a.num_sampled, 256, 0, stream>>>(a.logits, a.vocab, a.sampled_rows, a.num_sampled, s.keys,
                                                       s.ids, s.offsets);
  cudaError_t result = cudaGetLastError();
  if (result != cudaSuccess) return result;
  result = cub::DeviceSegmentedRadixSort::SortPairsDescending(
      s.temp, s.temp_bytes, s.keys, s.keys_sorted, s.ids, s.ids_sorted, static_cast<int>(a.num_sampled * a.vocab),
      a.num_sampled, s.offsets, s.offsets + 1, 0, 32, stream);
  if (result != cudaSuccess) return result;
  SelectKernel<<<a.num_sampled, kThreads, 0, stream>>>(a.logits, a.vocab, a.params, a.stats, a.sampled_rows,
                                                       s.keys_sorted, s.ids_sorted, a.tokens, a.logprobs);
  return cudaGetLastError();
}

}  // namespace tandem::cuda
