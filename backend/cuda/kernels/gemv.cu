// Small-batch matrix-vector product (decode Linear, 1 to 8 rows of x).
//
// One warp per output feature o, kGemvWarps warps per block. Lanes stride over w's row in 16-byte
// vectors (8 bf16/f16 or 4 f32), four vectors in flight per lane, and multiply each against the same
// slice of every row of x (x is small and shared by every warp, so it is served from L1/L2); a warp
// reduction gives y[r, o]. Every weight byte is read exactly once per call, so the bound is
// out * in * sizeof(T) / memory bandwidth, independent of the number of rows up to 8. Accumulation is in
// float. Rows whose length is not a multiple of the vector (or unaligned) take the scalar loop.
#include "backend/cuda/kernels/gemv.cuh"

#include "backend/cuda/kernels/common.cuh"
#include "backend/cuda/launch_shapes.h"

namespace tandem::cuda {
namespace {

constexpr int kUnroll = 4;

template <typename T, typename TY, bool kVectorized>
__global__ void __launch_bounds__(kGemvWarps * 32)
    GemvKernel(const T* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias, TY* __restrict__ y,
               int32_t rows, int64_t in, int64_t out) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t o = static_cast<int64_t>(blockIdx.x) * kGemvWarps + warp;
  if (o >= out) return;
  float acc[kGemvMaxRows];
#pragma unroll
  for (int r = 0; r < kGemvMaxRows; ++r) acc[r] = 0.0f;
  const T* wr = w + o * in;
  if constexpr (kVectorized) {
    constexpr int V = kVec<T>;
    const int64_t vecs = in / V;
    int64_t v = lane;
    for (; v + (kUnroll - 1) * 32 < vecs; v += kUnroll * 32) {
      float wv[kUnroll][V];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) LoadVec<T>(wr + (v + u * 32) * V, wv[u]);
#pragma unroll
      for (int r = 0; r < kGemvMaxRows; ++r) {
        if (r < rows) {
#pragma unroll
          for (int u = 0; u < kUnroll; ++u) {
            float xv[V];
            LoadVec<T>(x + r * in + (v + u * 32) * V, xv);
#pragma unroll
            for (int i = 0; i < V; ++i) acc[r] = fmaf(wv[u][i], xv[i], acc[r]);
          }
        }
      }
    }
    for (; v < vecs; v += 32) {
      float wv[V];
      LoadVec<T>(wr + v * V, wv);
#pragma unroll
      for (int r = 0; r < kGemvMaxRows; ++r) {
        if (r < rows) {
          float xv[V];
          LoadVec<T>(x + r * in + v * V, xv);
#pragma unroll
          for (int i = 0; i < V; ++i) acc[r] = fmaf(wv[i], xv[i], acc[r]);
        }
      }
    }
  } else {
    for (int64_t k = lane; k < in; k += 32) {
      const float wk = ToFloat(wr[k]);
#pragma unroll
      for (int r = 0; r < kGemvMaxRows; ++r) {
        if (r < rows) acc[r] = fmaf(wk, ToFloat(x[r * in + k]), acc[r]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kGemvMaxRows; ++r) {
    if (r < rows) {
      const float sum = WarpSum(acc[r]);
      if (lane == 0) y[r * out + o] = FromFloat<TY>(sum + (bias != nullptr ? bias[o] : 0.0f));
    }
  }
}

template <typename T, typename TY>
cudaError_t Launch(const GemvArgs& a, cudaStream_t stream) {
  const LaunchShape shape = GemvShape(a.out);
  constexpr int V = kVec<T>;
  const bool aligned = a.in % V == 0 && reinterpret_cast<uintptr_t>(a.x) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(a.w) % 16 == 0;
  const T* x = static_cast<const T*>(a.x);
  const T* w = static_cast<const T*>(a.w);
  TY* y = static_cast<TY*>(a.y);
  if (aligned) {
    GemvKernel<T, TY, true><<<GridDim(shape.grid_x), shape.block, 0, stream>>>(x, w, a.bias, y, a.rows, a.in, a.out);
  } else {
    GemvKernel<T, TY, false><<<GridDim(shape.grid_x), shape.block, 0, stream>>>(x, w, a.bias, y, a.rows, a.in, a.out);
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchGemv(const GemvArgs& a, cudaStream_t stream) {
  if (a.rows < 1 || a.rows > kGemvMaxRows) return cudaErrorInvalidValue;
  if (a.out == 0) return cudaSuccess;
  cudaError_t result = cudaErrorInvalidValue;
  const bool float_out = a.out_dtype == DType::kF32;
  if (!float_out && a.out_dtype != a.dtype) return cudaErrorInvalidValue;
  DispatchFloat(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    result = float_out ? Launch<T, float>(a, stream) : Launch<T, T>(a, stream);
  });
  return result;
}

}  // namespace tandem::cuda
