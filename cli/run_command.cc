// tandem run: offline generation in one process, no cluster.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backend/registry.h"
#include "cli/backend_flags.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/stop_strings.h"
#include "model/generator.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace tandem {
namespace {

struct RunFlags {
  std::string model;
  std::string prompt;
  std::string tokens;
  int64_t max_tokens = 64;
  double temperature = 0.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  int64_t seed = 0;
  std::string stop;
  bool ignore_eos = false;
  bool print_ids = false;
  BackendFlags backend;
  int64_t block_size = 16;
  std::string log_level = "warning";
};

absl::StatusOr<std::vector<int32_t>> ParseTokenList(const std::string& text) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(part, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("--tokens: '", part, "' is not an integer token id"));
    }
    ids.push_back(id);
  }
  if (ids.empty()) return absl::InvalidArgumentError("--tokens: no token ids given");
  return ids;
}

absl::Status Run(const RunFlags& f) {
  if (f.model.empty()) return absl::InvalidArgumentError("--model is required");
  if (f.prompt.empty() == f.tokens.empty()) {
    return absl::InvalidArgumentError("give exactly one of --prompt and --tokens");
  }
  TANDEM_ASSIGN_OR_RETURN(LogLevel level, ParseLogLevel(f.log_level));
  SetLogLevel(level);

  // The tokenizer is needed for text prompts and text output; --tokens with --print-ids runs without.
  std::unique_ptr<Tokenizer> tokenizer;
  const std::string tokenizer_path = f.model + "/tokenizer.json";
  struct stat st;
  if (!f.prompt.empty() || (!f.print_ids && ::stat(tokenizer_path.c_str(), &st) == 0)) {
    TANDEM_ASSIGN_OR_RETURN(tokenizer, Tokenizer::FromFile(tokenizer_path));
  }

  TANDEM_ASSIGN_OR_RETURN(auto backend, MakeBackend(f.backend.Options()));
  const auto load_start = std::chrono::steady_clock::now();
  // One request: workspaces for one sequence.
  ModelLoadOptions load;
  load.max_seqs = 1;
  TANDEM_ASSIGN_OR_RETURN(auto model, Model::Load(f.model, *backend, load));
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  TANDEM_LOG(INFO, "run") << "loaded " << f.model << " in " << load_s << " s on " << backend->name();

  GenerationRequest request;
  if (!f.prompt.empty()) {
    TANDEM_ASSIGN_OR_RETURN(request.prompt, tokenizer->Encode(f.prompt, /*add_special_tokens=*/true));
  } else {
    TANDEM_ASSIGN_OR_RETURN(request.prompt, ParseTokenList(f.tokens));
  }
  if (f.max_tokens < 1 || f.max_tokens > model->max_context()) {
    return absl::InvalidArgumentError(absl::StrCat("--max-tokens must be in [1, ", model->max_context(), "], got ",
                                                   f.max_tokens));
  }
  request.max_tokens = static_cast<int32_t>(f.max_tokens);
  request.sampling.temperature = static_cast<float>(f.temperature);
  request.sampling.top_k = static_cast<int32_t>(f.top_k);
  request.sampling.top_p = static_cast<float>(f.top_p);
  request.sampling.seed = static_cast<uint64_t>(f.seed);
  if (!f.ignore_eos) {
    for (int64_t id : model->config().eos_token_ids) request.stop_token_ids.push_back(static_cast<int32_t>(id));
  }
  if (absl::Status s = ValidateRequest(*model, request); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(f.prompt.empty() ? "--tokens: " : "--prompt: ", s.message()));
  }

  if (f.block_size < 1 || f.block_size > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("--block-size must be in [1, 1024], got ", f.block_size));
  }
  const int32_t block_size = static_cast<int32_t>(f.block_size);
  const int32_t blocks = BlocksForTokens(request.prompt.size() + request.max_tokens, block_size);
  TANDEM_ASSIGN_OR_RETURN(auto cache, KvCache::Create(*backend, model->MakeKvSpec(block_size, blocks)));

  std::optional<StreamingDetokenizer> detok;
  if (tokenizer && !f.print_ids) detok.emplace(*tokenizer);
  StopStringMatcher stops(f.stop.empty() ? std::vector<std::string>{} : std::vector<std::string>{f.stop});
  absl::Status stream_status;
  const auto start = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> first_token_at;
  auto on_token = [&](int, int32_t token) {
    if (!first_token_at) first_token_at = std::chrono::steady_clock::now();
    if (f.print_ids) {
      std::printf("%d\n", token);
      return true;
    }
    absl::StatusOr<std::string> text = detok->Push(token);
    if (!text.ok()) {
      stream_status = text.status();
      return false;
    }
    std::fputs(stops.Push(*text).c_str(), stdout);
    std::fflush(stdout);
    return !stops.stopped();
  };
  Generator generator(*model, *cache);
  TANDEM_ASSIGN_OR_RETURN(auto outputs, generator.Generate({request}, on_token));
  TANDEM_RETURN_IF_ERROR(stream_status);
  if (detok) {
    std::fputs(stops.Push(detok->Flush()).c_str(), stdout);
    std::fputs(stops.Flush().c_str(), stdout);
    std::fputs("\n", stdout);
  }
  std::fflush(stdout);

  const auto end = std::chrono::steady_clock::now();
  const double ttft_ms = std::chrono::duration<double, std::milli>(*first_token_at - start).count();
  const double decode_ms = std::chrono::duration<double, std::milli>(end - *first_token_at).count();
  const size_t n = outputs[0].tokens.size();
  std::fprintf(stderr, "[%zu prompt tokens, %zu generated, finish=%s; prefill %.1f ms, decode %.2f ms/token]\n",
               request.prompt.size(), n, std::string(FinishReasonName(outputs[0].finish)).c_str(), ttft_ms,
               n > 1 ? decode_ms / static_cast<double>(n - 1) : 0.0);
  return absl::OkStatus();
}

}  // namespace

int RunCommand(const std::vector<std::string>& args) {
  RunFlags f;
  FlagParser parser("tandem run --model DIR (--prompt TEXT | --tokens 1,2,3) [flags]");
  parser.AddString("model", &f.model, "Hugging Face checkpoint directory");
  parser.AddString("prompt", &f.prompt, "prompt text (encoded with DIR/tokenizer.json)");
  parser.AddString("tokens", &f.tokens, "prompt as comma-separated token ids");
  parser.AddInt("max-tokens", &f.max_tokens, "tokens to generate at most");
  parser.AddDouble("temperature", &f.temperature, "sampling temperature; 0 is greedy");
  parser.AddInt("top-k", &f.top_k, "sample among the k most likely tokens; 0 is off");
  parser.AddDouble("top-p", &f.top_p, "sample from the smallest set with this probability; 1 is off");
  parser.AddInt("seed", &f.seed, "sampling seed: the same seed gives the same output");
  parser.AddString("stop", &f.stop, "stop when the output text contains this string");
  parser.AddBool("ignore-eos", &f.ignore_eos, "keep generating past the model's end-of-sequence tokens");
  parser.AddBool("print-ids", &f.print_ids, "print generated token ids, one per line, instead of text");
  f.backend.Register(parser);
  parser.AddInt("block-size", &f.block_size, "tokens per KV cache block");
  parser.AddString("log-level", &f.log_level, "debug, info, warning or error");
  absl::Status status = parser.Parse(args);
  if (parser.help_requested()) {
    std::fputs(parser.Usage().c_str(), stdout);
    return 0;
  }
  if (status.ok()) status = Run(f);
  if (!status.ok()) {
    std::fprintf(stderr, "tandem run: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace tandem
