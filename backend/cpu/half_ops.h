// 16-bit weights on the CPU: bf16 and f16 matrices stay 16-bit in memory (half the bytes a decode step
// streams) and are widened to float32 inside the kernels; activations, accumulation and outputs are
// float32. (bf16 matrices on CPUs with AVX512_BF16 take backend/cpu/bf16_dot.h's dot products instead,
// unless CpuBackendOptions::bf16_dot_prompts is off or TANDEM_CPU_BF16_DOT=off.) Each kernel has an AVX-512 path, an AVX2 + F16C path and a portable one, picked once at
// load time from the CPU's features (TANDEM_CPU_ISA=avx512|avx2|portable overrides, for tests and
// benchmarks; a path the CPU lacks is never taken).
//
// Checked against backend/cpu/reference_ops.h by tests/backend_conformance_test.cc.
#ifndef TANDEM_BACKEND_CPU_HALF_OPS_H_
#define TANDEM_BACKEND_CPU_HALF_OPS_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "types/dtype.h"

namespace tandem::cpu_half {

// The instruction set the kernels use on this machine: "avx512", "avx2" or "portable".
std::string_view ActiveIsa();

// dst[i] = float(src[i]) for a kBF16 or kF16 `dtype`.
void WidenRow(DType dtype, const uint16_t* src, int64_t count, float* dst);

// The activations [n, in] as StreamRows wants them for this dtype: `x` itself, or a copy in `buffer`
// in the order the kernel reads (the AVX-512 bf16 kernel takes each block of 32 as its 16 even- then
// 16 odd-indexed values). Call once per Linear, before splitting the outputs between threads.
// With `ldx` > 0, rows are `ldx` floats apart in the copy (always a copy then; TileRows wants
// TileStride(in)).
const float* PrepareActivations(DType dtype, const float* x, int64_t n, int64_t in, std::vector<float>& buffer,
                               int64_t ldx = 0);

// y[r * out + o] = sum_k x[r * in + k] * w[o * in + k] (+ bias[o]) for rows r < n and outputs
// o in [out_begin, out_end), x as PrepareActivations returned it: the decode matrix-vector product,
// each weight row streamed once and reused for groups of up to 4 activation rows. Every output is
// summed in the same order whatever n is, so a row's result does not depend on the batch it is in.
void StreamRows(DType dtype, const float* x, int64_t n, int64_t in, const uint16_t* w, int64_t out_begin,
                int64_t out_end, const float* bias, int64_t out, float* y);

// Whether TileRows has a kernel for `dtype` on this machine (the AVX-512 bf16 path).
bool HasTileKernel(DType dtype);

// The row stride of the activations TileRows reads: `in` padded so that rows do not fall on the same L1
// sets.
int64_t TileStride(int64_t in);

// The same as StreamRows, bit for bit, for prompts: tiles of 3 activation rows x 2 weight rows, so each
// weight is loaded once per 3 rows and each activation once per 2 outputs, with no widened copy of the
// weights; x as PrepareActivations(..., TileStride(in)) returned it. Only where HasTileKernel(dtype).
void TileRows(DType dtype, const float* x, int64_t n, int64_t in, const uint16_t* w, int64_t out_begin,
              int64_t out_end, const float* bias, int64_t out, float* y);

}  // namespace tandem::cpu_half

#endif  // TANDEM_BACKEND_CPU_HALF_OPS_H_
