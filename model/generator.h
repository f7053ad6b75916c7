// Offline generation over one Model and KvCache: continuous batching in one process, no cluster.
//
// Each step either prefills a batch of waiting prompts (FCFS under a token budget) or advances every
// running sequence by one decode token, with requests joining and leaving between steps. A request is
// admitted only when the KV blocks for its prompt plus max_tokens are free (worst-case reservation, as
// TGI does), so a running sequence never waits for memory and the engine cannot deadlock. Blocks go
// back to the pool as each sequence finishes. `tandem run` and the benchmarks drive it; the prefill
// and decode daemons reuse Model and KvCache with their own queues.
//
// Thread safety: one thread.
#ifndef TANDEM_MODEL_GENERATOR_H_
#define TANDEM_MODEL_GENERATOR_H_

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/sampler.h"

namespace tandem {

enum class FinishReason { kLength, kStopToken, kStopped };
std::string_view FinishReasonName(FinishReason reason);  // "length", "stop", "stopped"

// For an engine whose sequence just emitted `token` as its `generated`-th token (the first counts):
// "stop" for one of `stop_token_ids`, "length" once `generated` reaches `max_tokens`, else "" (it goes on).
std::string_view FinishReasonAfter(int32_t token, int32_t generated, int32_t max_tokens,
                                   const std::vector<int32_t>& stop_token_ids);

struct GenerationRequest {
  std::vector<int32_t> prompt;          // token ids, >= 1
  SamplingParams sampling;
  int32_t max_tokens = 16;              // >= 1
  std::vector<int32_t> stop_token_ids;  // generation ends after emitting one of these
};

struct GenerationOutput {
  std::vector<int32_t> tokens;  // generated ids (a stop token, when hit, is the last one)
  FinishReason finish = FinishReason::kLength;
};

// Called for every generated token in order; returning false stops that request (kStopped), e.g. when
// the caller found a stop string in the text.
using TokenCallback = std::function<bool(int request_index, int32_t token)>;

struct GeneratorOptions {
  int64_t max_prefill_tokens = 2048;  // prompt tokens per prefill step (a longer prompt runs alone)
  int32_t max_batch = 256;            // sequences per step
  // Optional observer, called after every step: a prefill step (`prefill`, the prompts it admitted and
  // their tokens) or a decode step (the sequences it advanced, one token each). For parity tests.
  std::function<void(bool prefill, int64_t sequences, int64_t tokens)> on_step = nullptr;
};

// InvalidArgument naming the field: empty prompt, max_tokens < 1, prompt + max_tokens over the model's
// context, token ids outside the vocabulary, bad sampling parameters.
absl::Status ValidateRequest(const Model& model, const GenerationRequest& request);

class Generator {
 public:
  Generator(Model& model, KvCache& cache, const GeneratorOptions& options = {})
      : model_(model), cache_(cache), options_(options) {}

  absl::StatusOr<std::vector<GenerationOutput>> Generate(const std::vector<GenerationRequest>& requests,
                                                         const TokenCallback& on_token = nullptr);

 private:
  Model& model_;
  KvCache& cache_;
  GeneratorOptions options_;
};

}  // namespace tandem

#endif  // TANDEM_MODEL_GENERATOR_H_
