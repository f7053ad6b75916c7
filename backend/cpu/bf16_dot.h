// Linears on bf16 weights with AVX512_BF16's dot products (vdpbf16ps: 32 bf16 products summed in
// pairs into 16 float32 lanes per instruction). The activations are rounded to bf16 once per Linear
// (round to nearest even); the weights are read as stored, never widened; sums are float32. This is how
// llama.cpp's BF16 CPU path and oneDNN run bf16 matrix products, and it is twice the multiply-adds per
// instruction of float32 FMAs (issue 14: widen + sgemm ran prompts at 0.85-0.93x of float32 weights).
//
// Prompts (Gemm) and decode steps (StreamRows) both take it, so a prompt fed token by token gives the
// prefill's logits up to the order of float32 sums (exactly, with Gemm's batch_invariant); against
// float32 activations, logits move by about bf16's precision.
// Checked by tests/backend_conformance_test.cc against a loop that rounds the same way.
#ifndef TANDEM_BACKEND_CPU_BF16_DOT_H_
#define TANDEM_BACKEND_CPU_BF16_DOT_H_

#include <cstdint>

namespace tandem::cpu_bf16dot {

// True where the CPU has AVX-512F, AVX-512BW and AVX512_BF16, the kernels run at the AVX-512 level
// (TANDEM_CPU_ISA has not stepped down), and TANDEM_CPU_BF16_DOT is not "off" (for benchmarks and
// tests of the widen + sgemm path on such CPUs).
bool Available();

// Elements between rows of the rounded activations: `in` rounded up to 32.
int64_t Stride(int64_t in);

// x16[i * Stride(in) + k] = bf16(x[i * in + k]), rounded to nearest even; the padding is zero.
void RoundRows(const float* x, int64_t n, int64_t in, uint16_t* x16);

// y[i * out + o] = sum_k x16[i][k] * w[o * in + k] (+ bias[o]) for all n rows and outputs o in
// [out_begin, out_end): tiles of 4 rows x 4 outputs, each weight row read from memory once and reused
// for every row of the prompt, one accumulator per output. With batch_invariant, each output is summed
// as StreamRows sums it (four chains over k, one pass over the tile per chain), so a prompt's row gets
// exactly what a decode step gives it (slower: the passes re-read the tile's rows). Only where
// Available().
void Gemm(const uint16_t* x16, int64_t n, int64_t in, const uint16_t* w, int64_t out_begin, int64_t out_end,
          const float* bias, int64_t out, float* y, bool batch_invariant = false);

// The same products for decode steps (a few rows): each weight row streamed from memory once, against
// every row in groups of up to 4, 32 weights per instruction per row. A row's sum is taken in the same
// order whatever n is (four chains over k, then summed), so it does not depend on the batch.
void StreamRows(const uint16_t* x16, int64_t n, int64_t in, const uint16_t* w, int64_t out_begin, int64_t out_end,
                const float* bias, int64_t out, float* y);

}  // namespace tandem::cpu_bf16dot

#endif  // TANDEM_BACKEND_CPU_BF16_DOT_H_
