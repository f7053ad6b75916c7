// tandem mkmodel: writes a random-weight model with a working tokenizer.json in the Hugging Face
// layout — the embedded default of the demo and the fixture of tests and benchmarks.
#include <cstdio>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>


#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/status_macros.h"
#include "model/demo_model.h"
#include "model/random_model.h"

namespace tandem {
namespace {

absl::Status Mkmodel(const std::string& out, const std::string& preset, int64_t seed, const std::string& dtype_name) {
  if (out.empty()) return absl::InvalidArgumentError("--out is required");
  TANDEM_ASSIGN_OR_RETURN(ModelConfig config, PresetConfig(preset));
  absl::StatusOr<DType> dtype = ParseDType(dtype_name == "f32"    ? "F32"
                                           : dtype_name == "f16"  ? "F16"
                                           : dtype_name == "bf16" ? "BF16"
                                                                  : dtype_name);
  if (!dtype.ok()) return absl::InvalidArgumentError(absl::StrCat("--dtype: ", dtype.status().message()));

  return WriteDemoModel(std::move(config), *dtype, static_cast<uint64_t>(seed), out);
}

}  // namespace

absl::StatusOr<std::string> EnsureDefaultModel() {
  std::string root;
  if (const char* env = std::getenv("TANDEM_MODEL_CACHE"); env && *env) {
    root = env;
  } else {
    const char* home = std::getenv("HOME");
    root = absl::StrCat(home && *home ? home : "/tmp", "/.cache/tandem/models");
  }
  const std::string dir = root + "/small";
  if (std::filesystem::exists(dir + "/model.safetensors") && std::filesystem::exists(dir + "/tokenizer.json")) {
    return dir;
  }
  std::error_code error;
  std::filesystem::create_directories(root, error);
  if (error) return absl::PermissionDeniedError(absl::StrCat(root, ": ", error.message()));
  // Written beside and renamed into place, so a half-written model is never picked up.
  const std::string partial = absl::StrCat(dir, ".partial.", getpid());
  TANDEM_RETURN_IF_ERROR(Mkmodel(partial, "small", 0, "f32"));
  std::filesystem::remove_all(dir, error);
  std::filesystem::rename(partial, dir, error);
  if (error) return absl::InternalError(absl::StrCat("moving ", partial, " to ", dir, ": ", error.message()));
  return dir;
}

int MkmodelCommand(const std::vector<std::string>& args) {
  std::string out, preset = "tiny", dtype = "f32";
  int64_t seed = 0;
  FlagParser parser("tandem mkmodel --out DIR [--preset NAME] [--seed S] [--dtype f32|f16|bf16]");
  parser.AddString("out", &out, "directory to write config.json, model.safetensors, tokenizer.json");
  parser.AddString("preset", &preset, "tiny, small, medium, tinyllama-1.1b, llama3.2-1b or llama3-8b");
  parser.AddInt("seed", &seed, "weights seed: the same seed writes the same bytes");
  parser.AddString("dtype", &dtype, "weight dtype on disk: f32, f16 or bf16");
  absl::Status status = parser.Parse(args);
  if (parser.help_requested()) {
    std::fputs(parser.Usage().c_str(), stdout);
    return 0;
  }
  if (status.ok()) status = Mkmodel(out, preset, seed, dtype);
  if (!status.ok()) {
    std::fprintf(stderr, "tandem mkmodel: %s\n", status.ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "wrote %s (preset %s, %s, seed %lld)\n", out.c_str(), preset.c_str(), dtype.c_str(),
               static_cast<long long>(seed));
  return 0;
}

}  // namespace tandem
