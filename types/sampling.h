// Sampling parameters of one request and of one row of a sampling step. Part of the bottom layer: no
// abseil, shared by the router's validation, the engines and every backend's Sample op.
#ifndef TANDEM_TYPES_SAMPLING_H_
#define TANDEM_TYPES_SAMPLING_H_

#include <cstdint>
#include <string>

namespace tandem {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy (argmax; the lowest id wins a tie)
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off; otherwise the smallest set whose probability reaches top_p
  uint64_t seed = 0;
};

// Empty when valid; otherwise a message naming the field: temperature < 0 or not finite, top_k < 0 or
// > vocab_size, top_p outside (0, 1] or not finite.
std::string SamplingParamsError(const SamplingParams& params, int64_t vocab_size);

// One row of a backend Sample step. `uniform` is the request's next draw in [0, 1) from its own
// generator (model/sampler.h), taken on the host so that every backend consumes the same random stream;
// it is ignored when temperature is 0.
struct SampleRow {
  float temperature = 0.0f;
  int32_t top_k = 0;
  float top_p = 1.0f;
  double uniform = 0.0;
};

// The CPU reference for one row (the spec every backend's Sample op is checked against):
// - temperature 0: argmax; NaN never wins; the lowest id wins a tie.
// - otherwise: candidates are the non-NaN logits sorted by value descending (ties by id ascending), cut
//   to top_k when set; probabilities exp((logit - max) / temperature) in double; when top_p < 1, the
//   shortest prefix whose normalised cumulative probability reaches top_p; then the first candidate
//   whose cumulative probability exceeds uniform * total (the last candidate when rounding leaves none).
// Returns 0 when every logit is NaN.
int32_t SampleRowReference(const float* logits, int64_t vocab, const SampleRow& row);

// log softmax(logits)[token] at temperature 1, in double; -inf when the token's logit is -inf or NaN.
double TokenLogprob(const float* logits, int64_t vocab, int32_t token);

}  // namespace tandem

#endif  // TANDEM_TYPES_SAMPLING_H_
