// tandem prefill / tandem decode / tandem colocated: the worker daemons. Flags in, a server started, "listening on
// HOST:PORT" on stdout once ready (tandem up reads it; with --metrics-port, "metrics on HOST:PORT" comes
// just before it), SIGINT/SIGTERM for a graceful stop.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/strings/str_split.h"
#include "cli/backend_flags.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/signals.h"
#include "common/subprocess.h"
#include "colocated/colocated_server.h"
#include "decode/decode_server.h"
#include "prefill/prefill_server.h"
#include "server/cluster_secret.h"

namespace tandem {
namespace {

struct CommonFlags {
  std::string host = "127.0.0.1";
  int64_t port = 0;
  int64_t metrics_port = -1;
  std::string id;
  std::string model;
  BackendFlags backend;
  int64_t block_size = 16;
  int64_t kv_cache_mb = 0;
  double gpu_memory_fraction = 0.9;
  int64_t max_context = 0;
  double shutdown_grace_s = 10;
  int64_t shutdown_delay_ms = 1500;
  int64_t stall_timeout_ms = 60000;
  std::string cluster_secret_file;
  std::string log_level = "info";

  void Register(FlagParser& p) {
    p.AddString("model", &model, "Hugging Face checkpoint directory");
    p.AddString("host", &host, "address to bind (keep workers on loopback or a private network)");
    p.AddInt("port", &port, "port to bind; 0 picks a free one");
    p.AddInt("metrics-port", &metrics_port,
             "HTTP port for GET /metrics (Prometheus); 0 picks a free one, -1 is off");
    p.AddString("id", &id, "worker name in logs and load reports");
    backend.Register(p);
    p.AddInt("block-size", &block_size, "tokens per KV block");
    p.AddInt("kv-cache-mb", &kv_cache_mb,
             "KV cache pool in MiB; 0: 256 on the CPU, what --gpu-memory-fraction leaves on a GPU");
    p.AddDouble("gpu-memory-fraction", &gpu_memory_fraction,
                "share of the GPU's memory this worker may use in all (weights, workspaces, KV pool)");
    p.AddInt("max-context", &max_context, "longest sequence served; 0 is the model's own limit");
    p.AddInt("shutdown-delay-ms", &shutdown_delay_ms,
             "on SIGINT/SIGTERM: answer health checks NOT_SERVING but keep taking calls this long, so that "
             "routers stop placing here before the port closes");
    p.AddDouble("shutdown-grace-s", &shutdown_grace_s,
                "then in-flight calls get this long to finish");
    p.AddInt("stall-timeout-ms", &stall_timeout_ms,
             "progress watchdog: when the engine has not moved (no layer of a step issued, no step finished, no "
             "idle loop pass) for this long, answer health checks NOT_SERVING and tell the router, which resumes "
             "this worker's streams elsewhere; 0 is off");
    p.AddString("cluster-secret-file", &cluster_secret_file, "file holding the secret shared by the router and its workers (16+ printable characters); every call between them carries it and workers refuse calls without it. Empty: no check (loopback only)");
    p.AddString("log-level", &log_level, "debug, info, warning or error");
  }
  bool CheckShutdown(const char* name) const {
    if (shutdown_grace_s >= 0 && shutdown_delay_ms >= 0 && stall_timeout_ms >= 0) return true;
    std::fprintf(stderr, "tandem %s: --shutdown-grace-s, --shutdown-delay-ms and --stall-timeout-ms must be >= 0\n",
                 name);
    return false;
  }
  // Reads --cluster-secret-file into the process's cluster secret; false (message printed) on error.
  bool ApplySecret(const char* name) const {
    if (cluster_secret_file.empty()) return true;
    absl::StatusOr<std::string> secret = ReadClusterSecretFile("--cluster-secret-file", cluster_secret_file);
    if (!secret.ok()) {
      std::fprintf(stderr, "tandem %s: %s\n", name, secret.status().ToString().c_str());
      return false;
    }
    SetClusterSecret(*std::move(secret));
    return true;
  }
  // The server options every worker daemon has: address, metrics port, id (default: `name`), model.
  template <typename Options>
  Options ServerOptions(const char* name) const {
    Options options;
    options.host = host;
    options.port = static_cast<int>(port);
    options.metrics_port = static_cast<int>(metrics_port);
    options.worker_id = id.empty() ? name : id;
    options.model = Model();
    options.stall_timeout = absl::Milliseconds(stall_timeout_ms);
    return options;
  }
  WorkerModelOptions Model() const {
    WorkerModelOptions o;
    o.model_dir = model;
    o.backend = backend.backend;
    o.num_threads = static_cast<int>(backend.threads);
    o.device = static_cast<int>(backend.device);
    o.dtype = backend.dtype;
    o.batch_invariant = backend.batch_invariant;
    o.block_size = static_cast<int32_t>(block_size);
    o.kv_cache_mb = kv_cache_mb;
    o.gpu_memory_fraction = gpu_memory_fraction;
    o.max_context = max_context;
    return o;
  }
};

template <typename Server>
int Serve(const char* name, absl::StatusOr<std::unique_ptr<Server>> server, int64_t delay_ms, double grace_s) {
  SetProcessTitle(absl::StrCat("tandem-", name));
  if (!server.ok()) {
    std::fprintf(stderr, "tandem %s: %s\n", name, server.status().ToString().c_str());
    return 1;
  }
  if (const std::string metrics = (*server)->metrics_address(); !metrics.empty()) {
    std::printf("metrics on %s\n", metrics.c_str());
  }
  std::printf("listening on %s\n", (*server)->address().c_str());
  std::fflush(stdout);
  const int signal = WaitForTerminationSignal();
  TANDEM_LOG(INFO, name) << "signal " << signal << ": NOT_SERVING; draining in " << delay_ms << " ms";
  (*server)->SetNotServing();
  if (delay_ms > 0) absl::SleepFor(absl::Milliseconds(delay_ms));
  (*server)->Shutdown(absl::Seconds(grace_s));
  return 0;
}

// Parses flags and applies --log-level; false (with the exit code set) when the command should stop.
bool ParseOrExit(FlagParser& parser, const std::vector<std::string>& args, const char* name,
                 const std::string& log_level, int* exit_code) {
  absl::Status status = parser.Parse(args);
  if (parser.help_requested()) {
    std::fputs(parser.Usage().c_str(), stdout);
    *exit_code = 0;
    return false;
  }
  if (status.ok()) {
    absl::StatusOr<LogLevel> level = ParseLogLevel(log_level);
    status = level.status();
    if (level.ok()) SetLogLevel(*level);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "tandem %s: %s\n", name, status.ToString().c_str());
    *exit_code = 2;
    return false;
  }
  return true;
}

}  // namespace

int PrefillCommand(const std::vector<std::string>& args) {
  BlockTerminationSignals();  // before any thread starts
  CommonFlags common;
  int64_t max_batch_tokens = 2048, lease_ms = 30000;
  FlagParser parser("tandem prefill --model DIR [--port P] [flags]");
  common.Register(parser);
  parser.AddInt("max-batch-tokens", &max_batch_tokens, "prompt tokens per forward pass");
  parser.AddInt("lease-ms", &lease_ms, "how long prompt KV waits for a decode worker to pull it");
  int exit_code = 0;
  if (!ParseOrExit(parser, args, "prefill", common.log_level, &exit_code)) return exit_code;
  if (!common.CheckShutdown("prefill")) return 2;
  if (!common.ApplySecret("prefill")) return 2;
  auto options = common.ServerOptions<PrefillServerOptions>("prefill");
  options.engine.max_batch_tokens = max_batch_tokens;
  options.engine.default_lease = absl::Milliseconds(lease_ms);
  return Serve("prefill", PrefillServer::Start(options), common.shutdown_delay_ms, common.shutdown_grace_s);
}

int DecodeCommand(const std::vector<std::string>& args) {
  BlockTerminationSignals();
  CommonFlags common;
  int64_t max_batch = 256, transfer_timeout_ms = 5000;
  std::string kv_transport = "grpc", kv_sources;
  FlagParser parser("tandem decode --model DIR [--port P] [flags]");
  common.Register(parser);
  parser.AddInt("max-batch", &max_batch, "sequences in the continuous batch at most");
  parser.AddString("kv-transport", &kv_transport, "how prompt KV arrives: grpc (cuda_ipc, nccl later)");
  parser.AddString("kv-sources", &kv_sources,
                   "the prefill workers whose KV this worker may pull: comma-separated host:port or dns:NAME:PORT (every address NAME resolves to); empty: any");
  parser.AddInt("kv-transfer-timeout-ms", &transfer_timeout_ms, "give up on a KV pull after this long");
  int64_t fault_hang_after_steps = 0;
  parser.AddInt("fault-hang-after-steps", &fault_hang_after_steps,
                "testing only: the engine thread stops after this many decode steps (a hung kernel) while the "
                "process keeps answering; 0 is off");
  int exit_code = 0;
  if (!ParseOrExit(parser, args, "decode", common.log_level, &exit_code)) return exit_code;
  if (!common.CheckShutdown("decode")) return 2;
  if (!common.ApplySecret("decode")) return 2;
  auto options = common.ServerOptions<DecodeServerOptions>("decode");
  options.engine.max_batch = static_cast<int32_t>(max_batch);
  options.engine.transfer_timeout = absl::Milliseconds(transfer_timeout_ms);
  options.fault_hang_after_steps = fault_hang_after_steps;
  options.kv_transport = kv_transport;
  for (absl::string_view source : absl::StrSplit(kv_sources, ',', absl::SkipEmpty())) {
    options.kv_sources.emplace_back(source);
  }
  return Serve("decode", DecodeServer::Start(options), common.shutdown_delay_ms, common.shutdown_grace_s);
}

int ColocatedCommand(const std::vector<std::string>& args) {
  BlockTerminationSignals();
  CommonFlags common;
  int64_t max_batch = 256, step_token_budget = 512;
  FlagParser parser("tandem colocated --model DIR [--port P] [flags]");
  common.Register(parser);
  parser.AddInt("max-batch", &max_batch, "sequences in the continuous batch at most (decoding plus prefilling)");
  parser.AddInt("step-token-budget", &step_token_budget,
                "new tokens per engine step: one per running decode plus prompt chunk tokens (a longer "
                "prompt is prefilled over several steps, so running decodes keep their pace)");
  int exit_code = 0;
  if (!ParseOrExit(parser, args, "colocated", common.log_level, &exit_code)) return exit_code;
  if (!common.CheckShutdown("colocated")) return 2;
  if (max_batch < 1 || step_token_budget < 1) {
    std::fprintf(stderr, "tandem colocated: --max-batch and --step-token-budget must be >= 1\n");
    return 2;
  }
  if (!common.ApplySecret("colocated")) return 2;
  auto options = common.ServerOptions<ColocatedServerOptions>("colocated");
  options.engine.max_batch = static_cast<int32_t>(max_batch);
  options.engine.step_token_budget = step_token_budget;
  return Serve("colocated", ColocatedServer::Start(options), common.shutdown_delay_ms, common.shutdown_grace_s);
}

}  // namespace tandem
