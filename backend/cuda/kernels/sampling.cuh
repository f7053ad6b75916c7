// Sampling on the device: greedy argmax with log-softmax for every row, and, for rows with a
// temperature, the sorted-candidate sampling of SampleRowReference (types/sampling.h) using the uniform
// the host drew from the request's own generator.
#ifndef TANDEM_BACKEND_CUDA_KERNELS_SAMPLING_CUH_
#define TANDEM_BACKEND_CUDA_KERNELS_SAMPLING_CUH_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace tandem::cuda {

// One row's parameters as the kernels read them (host-packed, copied with the step).
struct DeviceSampleRow {
  double uniform;
  float temperature;
  float top_p;
  int32_t top_k;
  int32_t padding;
};

// Per-row statistics the argmax pass leaves for the sampling pass.
struct SampleRowStats {
  float max;         // largest non-NaN logit (-inf when none)
  float log_sum;     // log sum exp(logit - max) over non-NaN logits
  int32_t valid;     // non-NaN logits
  int32_t padding;
};

struct ArgmaxArgs {
  const float* logits = nullptr;   // [rows, vocab]
  int64_t vocab = 0;
  int32_t rows = 0;
  int32_t* tokens = nullptr;       // [rows]: argmax (lowest id on ties; NaN never wins; 0 when all NaN)
  float* logprobs = nullptr;       // [rows]: log softmax at the argmax
  SampleRowStats* stats = nullptr; // [rows]
};

cudaError_t LaunchArgmax(const ArgmaxArgs& args, cudaStream_t stream);

struct RandomSampleArgs {
  const float* logits = nullptr;            // [rows, vocab]
  int64_t vocab = 0;
  const DeviceSampleRow* params = nullptr;  // [rows]
  const SampleRowStats* stats = nullptr;    // [rows], from LaunchArgmax
  const int32_t* sampled_rows = nullptr;    // [num_sampled]: rows with temperature > 0
  int32_t num_sampled = 0;                  // at most kSampleSortRows per call
  int32_t* tokens = nullptr;                // [rows]: overwritten for the sampled rows
  float* logprobs = nullptr;                // [rows]: likewise
  // Scratch from SampleSortScratchBytes(kSampleSortRows, vocab).
  void* scratch = nullptr;
  size_t scratch_bytes = 0;
};

// Bytes of scratch LaunchRandomSample needs for `rows` rows of `vocab` logits (keys, ids, both sorted,
// segment offsets and the radix sort's own temporary storage).
size_t SampleSortScratchBytes(int32_t rows, int64_t vocab);

cudaError_t LaunchRandomSample(const RandomSampleArgs& args, cudaStream_t stream);

}  // namespace tandem::cuda

#endif  // TANDEM_BACKEND_CUDA_KERNELS_SAMPLING_CUH_
