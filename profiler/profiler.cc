#include "profiler/profiler.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "backend/registry.h"
#include "common/status_macros.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "nlohmann/json.hpp"

namespace tandem::profiler {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// 16, 32, 64, ... up to `limit`, and `limit` itself.
std::vector<int64_t> PowersOfTwoUpTo(int64_t first, int64_t limit) {
  std::vector<int64_t> out;
  for (int64_t v = first; v < limit; v *= 2) out.push_back(v);
  out.push_back(limit);
  return out;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// One batch of sequences laid out in a shared KV cache: sequence i owns a contiguous range of blocks.
class BatchLayout {
 public:
  BatchLayout(int64_t num_sequences, int64_t tokens_per_sequence, int32_t block_size, int32_t vocab)
      : block_table_(num_sequences), tokens_(num_sequences) {
    const int32_t blocks_each = BlocksForTokens(tokens_per_sequence, block_size);
    int32_t next = 0;
    for (int64_t i = 0; i < num_sequences; ++i) {
      for (int32_t b = 0; b < blocks_each; ++b) block_table_[i].push_back(next++);
    }
    for (int64_t i = 0; i < num_sequences; ++i) {
      tokens_[i].resize(static_cast<size_t>(tokens_per_sequence));
      for (int64_t j = 0; j < tokens_per_sequence; ++j) {
        tokens_[i][j] = static_cast<int32_t>((i * 7919 + j * 104729 + 13) % vocab);
      }
    }
  }

  // Prefill: every token of every sequence is new.
  std::vector<SequenceStep> PrefillSteps() const {
    std::vector<SequenceStep> steps;
    for (size_t i = 0; i < tokens_.size(); ++i) steps.push_back({tokens_[i], 0, block_table_[i]});
    return steps;
  }
  // Decode: the last token is new, the ones before it are already cached.
  std::vector<SequenceStep> DecodeSteps() const {
    std::vector<SequenceStep> steps;
    for (size_t i = 0; i < tokens_.size(); ++i) {
      const std::span<const int32_t> all(tokens_[i]);
      steps.push_back({all.last(1), static_cast<int64_t>(all.size()) - 1, block_table_[i]});
    }
    return steps;
  }

 private:
  std::vector<std::vector<int32_t>> block_table_;
  std::vector<std::vector<int32_t>> tokens_;
};

absl::StatusOr<double> TimeSteps(Model& model, KvCache& cache, const std::vector<SequenceStep>& steps, int repeats) {
  TANDEM_RETURN_IF_ERROR(model.Forward(steps, cache).status());  // warm-up (and workspace growth)
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    const Clock::time_point start = Clock::now();
    TANDEM_RETURN_IF_ERROR(model.Forward(steps, cache).status());
    times.push_back(MsSince(start));
  }
  return Median(std::move(times));
}

absl::Status ZeroKvCache(Backend& backend, KvCache& cache) {
  const KvCacheSpec& spec = cache.spec();
  const int64_t bytes = spec.bytes_per_block_per_layer() * spec.num_blocks;
  const std::vector<char> zeros(static_cast<size_t>(std::min<int64_t>(bytes, 16 << 20)), 0);
  for (int layer = 0; layer < spec.num_layers; ++layer) {
    for (void* base : {cache.layer(layer).k.data, cache.layer(layer).v.data}) {
      for (int64_t offset = 0; offset < bytes; offset += static_cast<int64_t>(zeros.size())) {
        const int64_t n = std::min<int64_t>(static_cast<int64_t>(zeros.size()), bytes - offset);
        TANDEM_RETURN_IF_ERROR(backend.CopyHostToDevice(static_cast<char*>(base) + offset, zeros.data(), n));
      }
    }
  }
  return backend.Synchronize();
}

// Host memcpy bandwidth (bytes/s) over a 64 MiB buffer: the in-process cost of staging KV.
double MeasureMemcpyBandwidth() {
  constexpr size_t kBytes = 64 << 20;
  constexpr int kCopies = 4;
  std::vector<char> src(kBytes, 1), dst(kBytes, 0);
  std::memcpy(dst.data(), src.data(), kBytes);  // fault the pages in
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < kCopies; ++i) {
    src[static_cast<size_t>(i)] = static_cast<char>(i);  // keep the copies from being merged
    std::memcpy(dst.data(), src.data(), kBytes);
  }
  const double seconds = MsSince(start) / 1e3;
  volatile char sink = dst[kBytes / 2];
  (void)sink;
  return seconds > 0 ? static_cast<double>(kBytes) * kCopies / seconds : 0.0;
}

std::string Basename(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

nlohmann::json QualityJson(const FitQuality& q) {
  return {{"max_rel_err", q.max_rel_err}, {"mean_rel_err", q.mean_rel_err}, {"samples", q.num_samples}};
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> PrefillGrid(int64_t max_prompt) {
  std::vector<std::pair<int64_t, int64_t>> grid;
  const std::vector<int64_t> lengths = PowersOfTwoUpTo(std::min<int64_t>(16, max_prompt), max_prompt);
  for (int64_t len : lengths) grid.push_back({1, len});
  // Batches of equal prompts: the same sum(l) as a single prompt with a smaller sum(l^2).
  for (int64_t sequences : {2, 4, 8}) {
    for (int64_t len : lengths) {
      if (len < 32 || sequences * len > 2 * max_prompt || (len & (len - 1)) != 0) continue;
      if (len != 32 && len != 128 && len != 512 && len * sequences != 2 * max_prompt) continue;
      grid.push_back({sequences, len});
    }
  }
  return grid;
}

std::vector<std::pair<int64_t, int64_t>> DecodeGrid(int64_t max_batch, int64_t max_context) {
  std::vector<std::pair<int64_t, int64_t>> grid;
  std::vector<int64_t> contexts;
  for (int64_t c = std::min<int64_t>(16, max_context); c < max_context; c *= 4) contexts.push_back(c);
  contexts.push_back(max_context);
  for (int64_t batch : PowersOfTwoUpTo(1, max_batch)) {
    for (int64_t context : contexts) grid.push_back({batch, context});
  }
  return grid;
}

absl::StatusOr<ProfileResult> Profile(const ProfileOptions& options,
                                      const std::function<void(const std::string&)>& progress) {
  const Clock::time_point begin = Clock::now();
  if (options.model_dir.empty()) return absl::InvalidArgumentError("--model: a model directory is required");
  if (options.max_prompt < 16) {
    return absl::InvalidArgumentError(absl::StrCat("--max-prompt: ", options.max_prompt, " must be >= 16"));
  }
  if (options.max_batch < 2) {
    return absl::InvalidArgumentError(absl::StrCat("--max-batch: ", options.max_batch, " must be >= 2"));
  }
  if (options.repeats < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--repeats: ", options.repeats, " must be >= 1"));
  }
  if (options.kv_bandwidth_bytes_per_s < 0) {
    return absl::InvalidArgumentError("--kv-bandwidth-gbps: must be >= 0");
  }
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };

  const auto prefill_grid = PrefillGrid(options.max_prompt);
  const auto decode_grid = DecodeGrid(options.max_batch, options.max_prompt);
  BackendOptions backend_options;
  backend_options.name = options.backend;
  backend_options.num_threads = options.num_threads;
  backend_options.device = options.device;
  backend_options.dtype = options.dtype;
  TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, MakeBackend(backend_options));
  // Workspaces for the largest step of the grids, so that every point runs as one step.
  ModelLoadOptions load;
  load.max_batch_tokens = 1;
  load.max_seqs = 1;
  for (const auto& [sequences, len] : prefill_grid) {
    load.max_batch_tokens = std::max<int64_t>(load.max_batch_tokens, sequences * len);
    load.max_seqs = std::max<int32_t>(load.max_seqs, static_cast<int32_t>(sequences));
  }
  for (const auto& [batch, context] : decode_grid) {
    load.max_batch_tokens = std::max<int64_t>(load.max_batch_tokens, batch);
    load.max_seqs = std::max<int32_t>(load.max_seqs, static_cast<int32_t>(batch));
  }
  TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load(options.model_dir, *backend, load));
  if (options.max_prompt + 1 > model->max_context()) {
    return absl::InvalidArgumentError(absl::StrCat("--max-prompt: ", options.max_prompt, " + 1 exceeds the model's ",
                                                   model->max_context(), "-token context"));
  }
  int64_t max_blocks = 0;
  for (const auto& [sequences, len] : prefill_grid) {
    max_blocks = std::max<int64_t>(max_blocks, sequences * BlocksForTokens(len, options.block_size));
  }
  for (const auto& [batch, context] : decode_grid) {
    max_blocks = std::max<int64_t>(max_blocks, batch * BlocksForTokens(context + 1, options.block_size));
  }
  TANDEM_ASSIGN_OR_RETURN(
      std::unique_ptr<KvCache> cache,
      KvCache::Create(*backend, model->MakeKvSpec(options.block_size, static_cast<int32_t>(max_blocks))));
  TANDEM_RETURN_IF_ERROR(ZeroKvCache(*backend, *cache));
  const int32_t vocab = static_cast<int32_t>(model->vocab_size());

  std::vector<PrefillSample> prefill;
  for (size_t i = 0; i < prefill_grid.size(); ++i) {
    const auto [sequences, len] = prefill_grid[i];
    BatchLayout layout(sequences, len, options.block_size, vocab);
    TANDEM_ASSIGN_OR_RETURN(double ms, TimeSteps(*model, *cache, layout.PrefillSteps(), options.repeats));
    prefill.push_back({.num_sequences = sequences,
                       .sum_len = sequences * len,
                       .sum_len_squared = static_cast<double>(sequences) * static_cast<double>(len * len),
                       .ms = ms});
    say(absl::StrFormat("prefill %zu/%zu: %d x %d tokens: %.2f ms", i + 1, prefill_grid.size(), sequences, len, ms));
  }
  std::vector<DecodeSample> decode;
  for (size_t i = 0; i < decode_grid.size(); ++i) {
    const auto [batch, context] = decode_grid[i];
    BatchLayout layout(batch, context + 1, options.block_size, vocab);
    TANDEM_ASSIGN_OR_RETURN(double ms, TimeSteps(*model, *cache, layout.DecodeSteps(), options.repeats));
    decode.push_back({.batch_size = batch, .sum_context_tokens = batch * context, .ms = ms});
    say(absl::StrFormat("decode %zu/%zu: batch %d x context %d: %.2f ms", i + 1, decode_grid.size(), batch, context,
                        ms));
  }

  TANDEM_ASSIGN_OR_RETURN(PrefillFit prefill_fit, FitPrefill(prefill));
  TANDEM_ASSIGN_OR_RETURN(DecodeFit decode_fit, FitDecode(decode));
  const bool measure_bandwidth = options.kv_bandwidth_bytes_per_s <= 0;
  const double bandwidth = measure_bandwidth ? MeasureMemcpyBandwidth() : options.kv_bandwidth_bytes_per_s;

  policy::LatencyModelParams params;
  params.model = Basename(options.model_dir);
  params.gpu = options.num_threads > 0 ? absl::StrCat(options.backend, "-", options.num_threads, "threads")
                                       : options.backend;
  params.engine = "tandem";
  params.prefill = prefill_fit.coefficients;
  params.decode_small = decode_fit.small;
  params.decode_large = decode_fit.large;
  params.bs_threshold = decode_fit.bs_threshold;
  params.kv_bytes_per_token = static_cast<double>(model->MakeKvSpec(options.block_size, 1).bytes_per_token());
  params.link_bandwidth_bytes_per_s = bandwidth;
  params.link_latency_ms = options.kv_latency_ms;
  absl::StatusOr<policy::LatencyModel> fitted = policy::LatencyModel::Create(params);
  if (!fitted.ok()) {
    return absl::InternalError(absl::StrCat("the fitted latency model is invalid: ", fitted.status().message()));
  }
  ProfileResult result{.model = *std::move(fitted),
                       .prefill = prefill_fit,
                       .decode = decode_fit,
                       .prefill_samples = {},
                       .decode_samples = {},
                       .kv_bytes_per_token = params.kv_bytes_per_token,
                       .kv_bandwidth_bytes_per_s = bandwidth,
                       .kv_bandwidth_measured = measure_bandwidth,
                       .seconds = 0.0};
  for (const PrefillSample& s : prefill) {
    result.prefill_samples.push_back({s, PredictPrefill(prefill_fit.coefficients, s)});
  }
  for (const DecodeSample& s : decode) result.decode_samples.push_back({s, PredictDecode(decode_fit, s)});
  result.seconds = MsSince(begin) / 1e3;
  return result;
}

std::string ProfileJson(const ProfileResult& result, const ProfileOptions& options) {
  nlohmann::json out = nlohmann::json::parse(result.model.ToJson());
  FitQuality all = result.prefill.quality;
  const FitQuality& d = result.decode.quality;
  all.max_rel_err = std::max(all.max_rel_err, d.max_rel_err);
  all.mean_rel_err = (all.mean_rel_err * all.num_samples + d.mean_rel_err * d.num_samples) /
                     std::max(1, all.num_samples + d.num_samples);
  all.num_samples += d.num_samples;
  out["fit_stats"] = QualityJson(all);
  out["fit_stats"]["prefill"] = QualityJson(result.prefill.quality);
  out["fit_stats"]["decode"] = QualityJson(d);
  out["fit_stats"]["decode"]["two_regimes"] = result.decode.two_regimes;
  out["profiled"] = {{"backend", options.backend},
                     {"threads", options.num_threads},
                     {"max_prompt", options.max_prompt},
                     {"max_batch", options.max_batch},
                     {"repeats", options.repeats},
                     {"seconds", result.seconds},
                     {"kv_bandwidth", result.kv_bandwidth_measured ? "memcpy" : "given"}};
  return out.dump(2) + "\n";
}

}  // namespace tandem::profiler
