// tandem profile: measures the engine on this machine and writes the latency model (JSON) that
// `tandem router --policy goodput --latency-model FILE` and `tandem sim --profiles FILE` load.
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/backend_flags.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "profiler/profiler.h"

namespace tandem {
namespace {

struct ProfileFlags {
  std::string model;
  BackendFlags backend;
  std::string out = "latency_model.json";
  int64_t max_prompt = 1024;
  int64_t max_batch = 32;
  int64_t repeats = 3;
  double kv_bandwidth_gbps = 0.0;
  double kv_latency_ms = 0.0;
  bool quiet = false;
  std::string log_level = "warning";
};

std::string Percent(double fraction) { return absl::StrFormat("%.1f%%", 100.0 * fraction); }

void PrintTable(const profiler::ProfileResult& r) {
  std::printf("%-8s %14s %10s %14s %11s %11s %7s\n", "prefill", "seqs x len", "sum(l)", "sum(l^2)", "measured ms",
              "fitted ms", "error");
  for (const profiler::MeasuredPrefill& m : r.prefill_samples) {
    const profiler::PrefillSample& s = m.sample;
    std::printf("%-8s %14s %10lld %14.0f %11.2f %11.2f %7s\n", "",
                absl::StrCat(s.num_sequences, " x ", s.sum_len / s.num_sequences).c_str(),
                static_cast<long long>(s.sum_len), s.sum_len_squared, s.ms, m.fitted_ms,
                Percent((m.fitted_ms - s.ms) / s.ms).c_str());
  }
  std::printf("%-8s %14s %10s %14s %11s %11s %7s\n", "decode", "batch x ctx", "sum(ctx)", "", "measured ms",
              "fitted ms", "error");
  for (const profiler::MeasuredDecode& m : r.decode_samples) {
    const profiler::DecodeSample& s = m.sample;
    std::printf("%-8s %14s %10lld %14s %11.2f %11.2f %7s\n", "",
                absl::StrCat(s.batch_size, " x ", s.sum_context_tokens / s.batch_size).c_str(),
                static_cast<long long>(s.sum_context_tokens), "", s.ms, m.fitted_ms,
                Percent((m.fitted_ms - s.ms) / s.ms).c_str());
  }
  const auto& p = r.prefill.coefficients;
  std::printf("\nprefill ms = %.4g + %.4g*sum(l) + %.4g*sum(l^2)   max error %s, mean %s\n", p.a, p.b, p.c,
              Percent(r.prefill.quality.max_rel_err).c_str(), Percent(r.prefill.quality.mean_rel_err).c_str());
  const auto& d = r.decode;
  if (d.two_regimes) {
    std::printf("decode ms  = %.4g + %.4g*sum(ctx) + %.4g*B (B < %lld); %.4g + %.4g*sum(ctx) + %.4g*B (B >= %lld)",
                d.small.a, d.small.b, d.small.c, static_cast<long long>(d.bs_threshold), d.large.a, d.large.b,
                d.large.c, static_cast<long long>(d.bs_threshold));
  } else {
    std::printf("decode ms  = %.4g + %.4g*sum(ctx) + %.4g*B", d.small.a, d.small.b, d.small.c);
  }
  std::printf("   max error %s, mean %s\n", Percent(d.quality.max_rel_err).c_str(),
              Percent(d.quality.mean_rel_err).c_str());
  std::printf("KV: %.0f bytes/token, link %.2f GB/s (%s)\n", r.kv_bytes_per_token, r.kv_bandwidth_bytes_per_s / 1e9,
              r.kv_bandwidth_measured ? "in-process memcpy; pass --kv-bandwidth-gbps for a network" : "given");
}

absl::Status Profile(const ProfileFlags& f) {
  TANDEM_ASSIGN_OR_RETURN(LogLevel level, ParseLogLevel(f.log_level));
  SetLogLevel(level);
  if (f.model.empty()) return absl::InvalidArgumentError("--model is required");
  if (f.out.empty()) return absl::InvalidArgumentError("--out: must name a file");
  if (f.backend.threads < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--threads: ", f.backend.threads, " must be >= 0"));
  }
  profiler::ProfileOptions options;
  options.model_dir = f.model;
  options.backend = f.backend.backend;
  options.num_threads = static_cast<int>(f.backend.threads);
  options.device = static_cast<int>(f.backend.device);
  options.dtype = f.backend.dtype;
  options.max_prompt = f.max_prompt;
  options.max_batch = f.max_batch;
  options.repeats = static_cast<int>(f.repeats);
  options.kv_bandwidth_bytes_per_s = f.kv_bandwidth_gbps * 1e9;
  options.kv_latency_ms = f.kv_latency_ms;
  if (f.kv_latency_ms < 0) return absl::InvalidArgumentError("--kv-latency-ms: must be >= 0");
  auto progress = [&](const std::string& line) {
    if (!f.quiet) std::fprintf(stderr, "%s\n", line.c_str());
  };
  TANDEM_ASSIGN_OR_RETURN(profiler::ProfileResult result, profiler::Profile(options, progress));
  PrintTable(result);
  {
    std::ofstream out(f.out, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("--out: cannot open ", f.out, " for writing"));
    out << profiler::ProfileJson(result, options);
    if (!out) return absl::DataLossError(absl::StrCat("--out: writing ", f.out, " failed"));
  }
  // Read it back the way the router will, so a file that does not load is never left looking finished.
  TANDEM_RETURN_IF_ERROR(policy::LatencyModel::FromFile(f.out).status());
  std::printf("wrote %s (profiled in %.1f s)\n", f.out.c_str(), result.seconds);
  return absl::OkStatus();
}

}  // namespace

int ProfileCommand(const std::vector<std::string>& args) {
  ProfileFlags f;
  FlagParser parser("tandem profile --model DIR [--backend cpu] [--threads N] [--out FILE] [flags]");
  parser.AddString("model", &f.model, "model directory (config.json + safetensors) to measure");
  f.backend.Register(parser);
  parser.AddString("out", &f.out, "latency model JSON to write (for --latency-model and tandem sim)");
  parser.AddInt("max-prompt", &f.max_prompt, "longest prompt and decode context measured, tokens");
  parser.AddInt("max-batch", &f.max_batch, "largest decode batch measured");
  parser.AddInt("repeats", &f.repeats, "timed runs per grid point (median kept), after one warm-up");
  parser.AddDouble("kv-bandwidth-gbps", &f.kv_bandwidth_gbps,
                   "KV link bandwidth in GB/s (1e9 bytes/s); 0 = measure an in-process memcpy");
  parser.AddDouble("kv-latency-ms", &f.kv_latency_ms, "fixed cost of one KV transfer, ms");
  parser.AddBool("quiet", &f.quiet, "no per-point progress on stderr");
  parser.AddString("log-level", &f.log_level, "debug, info, warning or error");
  absl::Status status = parser.Parse(args);
  if (parser.help_requested()) {
    std::fputs(parser.Usage().c_str(), stdout);
    return 0;
  }
  if (status.ok()) status = Profile(f);
  if (!status.ok()) {
    std::fprintf(stderr, "tandem profile: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace tandem
