// The backend flags every subcommand that runs a model takes, registered and read the same way
// (STYLE.md rule 19): --backend, --threads, --device, --dtype.
#ifndef TANDEM_CLI_BACKEND_FLAGS_H_
#define TANDEM_CLI_BACKEND_FLAGS_H_

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/registry.h"
#include "common/flags.h"

namespace tandem {

struct BackendFlags {
  std::string backend = "cpu";
  int64_t threads = 0;
  int64_t device = 0;
  std::string dtype;
  bool batch_invariant = false;

  explicit BackendFlags(int64_t default_threads = 0) : threads(default_threads) {}

  void Register(FlagParser& p) {
    p.AddString("backend", &backend, "cpu, cpu-reference or cuda");
    p.AddInt("threads", &threads, "CPU backend threads; 0 uses every hardware thread");
    p.AddInt("device", &device, "CUDA device ordinal (--backend cuda)");
    p.AddString("dtype", &dtype,
                "CUDA compute dtype: bfloat16 (default), float16, or float32 (TF32 off). CPU: the dtype "
                "weight matrices are held in, float32, bfloat16 or float16 (default: the checkpoint's; "
                "activations are float32)");
    p.AddBool("batch-invariant", &batch_invariant,
              "CPU: sum every row of a prompt exactly as a batch-1 decode step does, so a sequence's tokens never "
              "depend on the batch it runs in, and a stream resumed on another worker by re-prefilling continues "
              "bit for bit, sampled ones included; prompts run slower");
  }
  BackendOptions Options() const {
    BackendOptions o;
    o.name = backend;
    o.num_threads = static_cast<int>(threads);
    o.device = static_cast<int>(device);
    o.dtype = dtype;
    o.batch_invariant = batch_invariant;
    return o;
  }
  // The same flags, for a child process (tandem up's workers).
  std::vector<std::string> Args() const {
    std::vector<std::string> args = {"--backend", backend, "--threads", absl::StrCat(threads), "--device",
                                      absl::StrCat(device)};
    if (!dtype.empty()) args.insert(args.end(), {"--dtype", dtype});
    if (batch_invariant) args.push_back("--batch-invariant");
    return args;
  }
};

}  // namespace tandem

#endif  // TANDEM_CLI_BACKEND_FLAGS_H_
