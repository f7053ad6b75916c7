#include "backend/cpu/reference_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace tandem::cpu_ref {

void Embedding(const Tensor& tokens, const Tensor& table, const Tensor& out) {
  const int64_t n = tokens.dim(0);
  const int64_t hidden = table.dim(1);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t id = tokens.as<int32_t>()[i];
    const char* row = static_cast<const char*>(table.data) + id * hidden * DTypeSize(table.dtype);
    ConvertToF32(table.dtype, row, hidden, out.as<float>() + i * hidden);
  }
}

static void NormRow(const float* x, const float* w, float eps, int64_t hidden, float* out) {
  double sum_squares = 0.0;
  for (int64_t j = 0; j < hidden; ++j) sum_squares += static_cast<double>(x[j]) * x[j];
  const float inv = static_cast<float>(1.0 / std::sqrt(sum_squares / hidden + eps));
  for (int64_t j = 0; j < hidden; ++j) out[j] = x[j] * inv * w[j];
}

void RmsNorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) {
  const int64_t n = x.dim(0), hidden = x.dim(1);
  for (int64_t i = 0; i < n; ++i) {
    NormRow(x.as<float>() + i * hidden, weight.as<float>(), eps, hidden, out.as<float>() + i * hidden);
  }
}

void AddRmsNorm(const Tensor& residual, const Tensor& delta, const Tensor& weight, float eps,
                const Tensor& out) {
  const int64_t n = residual.dim(0), hidden = residual.dim(1);
  for (int64_t i = 0; i < n; ++i) {
    float* r = residual.as<float>() + i * hidden;
    const float* d = delta.as<float>() + i * hidden;
    for (int64_t j = 0; j < hidden; ++j) r[j] += d[j];
    NormRow(r, weight.as<float>(), eps, hidden, out.as<float>() + i * hidden);
  }
}

void Linear(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y) {
  const int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0);
  // A 16-bit weight row is widened exactly to float32 first.
  std::vector<float> wrow(in);
  for (int64_t o = 0; o < out; ++o) {
    ConvertToF32(w.dtype, static_cast<const char*>(w.data) + o * in * DTypeSize(w.dtype), in, wrow.data());
    for (int64_t i = 0; i < n; ++i) {
      double acc = bias ? bias->as<float>()[o] : 0.0;
      const float* xr = x.as<float>() + i * in;
      for (int64_t k = 0; k < in; ++k) acc += static_cast<double>(xr[k]) * wrow[k];
      y.as<float>()[i * out + o] = static_cast<float>(acc);
    }
  }
}

// Rotate-half: for d < half, x'[d] = x[d] cos - x[d + half] sin; x'[d + half] = x[d + half] cos + x[d] sin.
static void RotateHead(float* head, const float* cos_sin, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  for (int64_t d = 0; d < half; ++d) {
    const float c = cos_sin[d], s = cos_sin[half + d];
    const float a = head[d], b = head[d + half];
    head[d] = a * c - b * s;
    head[d + half] = b * c + a * s;
  }
}

void RopeAndStoreKv(const Tensor& qkv, const Tensor& rope, const BatchLayout& layout,
                    const AttentionShape& shape, const LayerKv& kv) {
  const int64_t hd = shape.head_dim;
  const int64_t row = static_cast<int64_t>(shape.num_heads + 2 * shape.num_kv_heads) * hd;
  const int64_t kv_row = static_cast<int64_t>(shape.num_kv_heads) * hd;
  for (int64_t i = 0; i < layout.num_tokens; ++i) {
    float* q = qkv.as<float>() + i * row;
    float* k = q + shape.num_heads * hd;
    float* v = k + kv_row;
    const float* cs = rope.as<float>() + static_cast<int64_t>(layout.positions.as<int32_t>()[i]) * hd;
    for (int h = 0; h < shape.num_heads; ++h) RotateHead(q + h * hd, cs, hd);
    for (int h = 0; h < shape.num_kv_heads; ++h) RotateHead(k + h * hd, cs, hd);
    const int64_t slot = layout.slot_mapping.as<int32_t>()[i];
    if (slot < 0) continue;  // padding
    std::memcpy(kv.k.as<float>() + slot * kv_row, k, kv_row * sizeof(float));
    std::memcpy(kv.v.as<float>() + slot * kv_row, v, kv_row * sizeof(float));
  }
}

void Attention(const Tensor& qkv, const BatchLayout& layout, const AttentionShape& shape,
               const LayerKv& kv, const Tensor& out) {
  const int64_t hd = shape.head_dim;
  const int64_t row = static_cast<int64_t>(shape.num_heads + 2 * shape.num_kv_heads) * hd;
  const int64_t kv_row = static_cast<int64_t>(shape.num_kv_heads) * hd;
  const int group = shape.num_heads / shape.num_kv_heads;
  const int32_t* query_start = layout.query_start.as<int32_t>();
  const int32_t* context_lens = layout.context_lens.as<int32_t>();
  std::vector<double> scores;
  for (int s = 0; s < layout.num_seqs; ++s) {
    const int32_t* table = layout.block_tables.as<int32_t>() + s * layout.max_blocks_per_seq;
    const int64_t q_len = query_start[s + 1] - query_start[s];
    for (int64_t j = 0; j < q_len; ++j) {
      const int64_t token = query_start[s] + j;
      const int64_t pos = context_lens[s] - q_len + j;
      if (pos < 0) {  // padding
        std::fill(out.as<float>() + token * shape.num_heads * hd,
                  out.as<float>() + (token + 1) * shape.num_heads * hd, 0.0f);
        continue;
      }
      for (int h = 0; h < shape.num_heads; ++h) {
        const int kvh = h / group;
        const float* q = qkv.as<float>() + token * row + h * hd;
        scores.assign(pos + 1, 0.0);
        double max_score = -INFINITY;
        for (int64_t t = 0; t <= pos; ++t) {
          const int64_t slot = static_cast<int64_t>(table[t / shape.block_size]) * shape.block_size +
                               t % shape.block_size;
          const float* k = kv.k.as<float>() + slot * kv_row + kvh * hd;
          double dot = 0.0;
          for (int64_t d = 0; d < hd; ++d) dot += static_cast<double>(q[d]) * k[d];
          scores[t] = dot * shape.scale;
          max_score = std::max(max_score, scores[t]);
        }
        double denom = 0.0;
        for (int64_t t = 0; t <= pos; ++t) denom += (scores[t] = std::exp(scores[t] - max_score));
        float* o = out.as<float>() + token * shape.num_heads * hd + h * hd;
        for (int64_t d = 0; d < hd; ++d) {
          double acc = 0.0;
          for (int64_t t = 0; t <= pos; ++t) {
            const int64_t slot = static_cast<int64_t>(table[t / shape.block_size]) * shape.block_size +
                                 t % shape.block_size;
            acc += scores[t] * kv.v.as<float>()[slot * kv_row + kvh * hd + d];
          }
          o[d] = static_cast<float>(acc / denom);
        }
      }
    }
  }
}

void SiluMul(const Tensor& gate_up, const Tensor& out) {
  const int64_t n = out.dim(0), inter = out.dim(1);
  for (int64_t i = 0; i < n; ++i) {
    const float* g = gate_up.as<float>() + i * 2 * inter;
    const float* u = g + inter;
    for (int64_t j = 0; j < inter; ++j) {
      out.as<float>()[i * inter + j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
    }
  }
}

void GatherRows(const Tensor& x, const Tensor& rows, const Tensor& out) {
  const int64_t m = rows.dim(0), hidden = x.dim(1);
  for (int64_t j = 0; j < m; ++j) {
    std::memcpy(out.as<float>() + j * hidden, x.as<float>() + rows.as<int32_t>()[j] * hidden,
                hidden * sizeof(float));
  }
}

}  // namespace tandem::cpu_ref
