// tandem convert: turns a checkpoint in another format into a Hugging Face layout directory that every
// other subcommand loads (--model DIR). Formats: llama2c (github.com/karpathy/llama2.c, model/llama2c.h).
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/status_macros.h"
#include "model/llama2c.h"

namespace tandem {
namespace {

struct ConvertFlags {
  std::string from;
  std::string checkpoint;
  std::string tokenizer;
  std::string out;
};

absl::Status Convert(const ConvertFlags& f) {
  if (f.from.empty()) return absl::InvalidArgumentError("--from is required (formats: llama2c)");
  if (f.from != "llama2c") {
    return absl::InvalidArgumentError(
        absl::StrCat("--from: '", f.from, "' is not supported (formats: llama2c)"));
  }
  if (f.checkpoint.empty()) return absl::InvalidArgumentError("--checkpoint is required");
  if (f.tokenizer.empty()) return absl::InvalidArgumentError("--tokenizer is required");
  if (f.out.empty()) return absl::InvalidArgumentError("--out is required");
  TANDEM_ASSIGN_OR_RETURN(
      const Llama2cConvertResult result,
      ConvertLlama2c({.checkpoint_path = f.checkpoint, .tokenizer_path = f.tokenizer, .out_dir = f.out}));
  std::fprintf(stderr, "wrote %s (llama2.c %s: %s; %lld tensors, %lld merges)\n", f.out.c_str(),
               f.checkpoint.c_str(), Llama2cHeaderText(result.header).c_str(),
               static_cast<long long>(result.num_tensors), static_cast<long long>(result.num_merges));
  if (result.tied_scores > 0) {
    std::fprintf(stderr,
                 "warning: %lld merged pieces share their score with another; llama2.c breaks such ties by "
                 "position, tokenizer.json by id, so text where two compete may encode differently\n",
                 static_cast<long long>(result.tied_scores));
  }
  return absl::OkStatus();
}

}  // namespace

int ConvertCommand(const std::vector<std::string>& args) {
  ConvertFlags f;
  FlagParser parser("tandem convert --from llama2c --checkpoint FILE --tokenizer FILE --out DIR");
  parser.AddString("from", &f.from, "format of the input: llama2c");
  parser.AddString("checkpoint", &f.checkpoint,
                   "the checkpoint file (llama2c: version 0 export, e.g. stories15M.bin)");
  parser.AddString("tokenizer", &f.tokenizer, "the tokenizer file (llama2c: tokenizer.bin, tok512.bin, ...)");
  parser.AddString("out", &f.out, "directory to write config.json, model.safetensors, tokenizer.json into");
  absl::Status status = parser.Parse(args);
  if (parser.help_requested()) {
    std::fputs(parser.Usage().c_str(), stdout);
    return 0;
  }
  if (status.ok() && !parser.positional().empty()) {
    status = absl::InvalidArgumentError(absl::StrCat("unexpected argument '", parser.positional()[0], "'"));
  }
  if (status.ok()) status = Convert(f);
  if (!status.ok()) {
    std::fprintf(stderr, "tandem convert: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace tandem
