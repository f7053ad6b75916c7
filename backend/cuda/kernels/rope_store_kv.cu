// RoPE + KV store. One block per token; its threads walk the (head, d < head_dim / 2) pairs of the q
// and k heads, rotating x[d] and x[d + half] together in float with the token's cos/sin row and
// writing both back (rounded to the dtype); a k pair is also written to the cache slot, and v is copied
// there unchanged. Memory-bound: each qkv element is read and written once, k and v once more.
#include "backend/cuda/kernels/rope_store_kv.cuh"

#include "backend/cuda/kernels/common.cuh"
#include "backend/cuda/launch_shapes.h"

namespace tandem::cuda {
namespace {

template <typename T>
__global__ void RopeStoreKvKernel(T* __restrict__ qkv, const float* __restrict__ rope,
                                  const int32_t* __restrict__ positions, const int32_t* __restrict__ slots,
                                  T* __restrict__ k_cache, T* __restrict__ v_cache, int32_t num_heads,
                                  int32_t num_kv_heads, int32_t head_dim) {
  const int64_t token = blockIdx.x;
  const int32_t half = head_dim / 2;
  const int64_t row_width = static_cast<int64_t>(num_heads + 2 * num_kv_heads) * head_dim;
  const int64_t kv_width = static_cast<int64_t>(num_kv_heads) * head_dim;
  T* row = qkv + token * row_width;
  const float* cos_sin = rope + static_cast<int64_t>(positions[token]) * head_dim;
  const int64_t slot = slots[token];
  const int32_t rotated_heads = num_heads + num_kv_heads;
  for (int32_t i = threadIdx.x; i < rotated_heads * half; i += blockDim.x) {
    const int32_t head = i / half, d = i % half;
    T* x = row + static_cast<int64_t>(head) * head_dim;
    const float c = cos_sin[d], s = cos_sin[half + d];
    const float a = ToFloat(x[d]), b = ToFloat(x[d + half]);
    // Unfused multiplies and adds: the same float rounding as the CPU reference, so an fp32 cache is
    // bit-identical to it.
    const T ra = FromFloat<T>(__fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s)));
    const T rb = FromFloat<T>(__fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s)));
    x[d] = ra;
    x[d + half] = rb;
    if (head >= num_heads && slot >= 0) {
      T* k = k_cache + slot * kv_width + static_cast<int64_t>(head - num_heads) * head_dim;
      k[d] = ra;
      k[d + half] = rb;
    }
  }
  if (slot < 0) return;
  const T* v = row + static_cast<int64_t>(num_heads + num_kv_heads) * head_dim;
  for (int64_t i = threadIdx.x; i < kv_width; i += blockDim.x) v_cache[slot * kv_width + i] = v[i];
}

}  // namespace

cudaError_t LaunchRopeStoreKv(const RopeStoreKvArgs& a, cudaStream_t stream) {
  if (a.num_tokens == 0) return cudaSuccess;
  const LaunchShape shape = RowShape(a.num_tokens, static_cast<int64_t>(a.num_heads + a.num_kv_heads) * a.head_dim / 2);
  bool ok = DispatchFloat(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    RopeStoreKvKernel<T><<<GridDim(shape.grid_x), shape.block, 0, stream>>>(
        static_cast<T*>(a.qkv), a.rope, a.positions, a.slots, static_cast<T*>(a.k_cache),
        static_cast<T*>(a.v_cache), a.num_heads, a.num_kv_heads, a.head_dim);
  });
  return ok ? cudaGetLastError() : cudaErrorInvalidValue;
}

}  // namespace tandem::cuda
