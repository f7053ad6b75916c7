// tandem up: a local cluster on one machine — N prefill and M decode worker processes, K colocated
// ones, or both, and a router, each a child process on loopback. tandem serve is the same with one
// colocated worker (the one-GPU server). Waits until all are ready, prints where the router
// listens, reports a child that dies, and stops every child on Ctrl-C or SIGTERM.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/backend_flags.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/signals.h"
#include "common/subprocess.h"
#include "server/cluster_secret.h"

namespace tandem {
namespace {

struct UpFlags {
  std::string model;
  int64_t prefill = -1;  // -1: 1, or 0 with --colocated
  int64_t decode = -1;
  int64_t colocated = 0;
  int64_t step_token_budget = 512;
  std::string host = "127.0.0.1";
  int64_t port = 8000;
  int64_t http_port = 8080;
  BackendFlags backend{1};
  int64_t kv_cache_mb = 0;
  double gpu_memory_fraction = 0;
  std::string policy = "least_loaded";
  std::string latency_model;  // passed to the router as is (the goodput policy needs one)
  std::string chat_template;  // passed to the router as is
  std::string cluster_secret_file;  // empty: a fresh random one for this cluster
  std::string api_keys_file;        // passed to the router as is
  std::string log_level = "info";
  bool metrics = false;
  int64_t metrics_port = -1;
};

// --metrics-port P: the workers get P, P+1, ... in start order and the router the next one; 0 gives
// every process a free port.
std::string NextMetricsPort(const UpFlags& f) {
  static int64_t next = 0;
  if (f.metrics_port == 0) return "0";
  return absl::StrCat(f.metrics_port + next++);
}

int Up(UpFlags f) {
  if (f.metrics && f.metrics_port < 0) f.metrics_port = 0;
  std::string model = f.model;
  if (model.empty()) {
    absl::StatusOr<std::string> made = EnsureDefaultModel();
    if (!made.ok()) {
      std::fprintf(stderr, "tandem up: %s\n", made.status().ToString().c_str());
      return 1;
    }
    model = *made;
  }
  if (f.prefill < 0) f.prefill = f.colocated > 0 ? 0 : 1;
  if (f.decode < 0) f.decode = f.colocated > 0 ? 0 : 1;
  if (f.colocated < 0 || (f.prefill == 0) != (f.decode == 0) || (f.prefill == 0 && f.colocated == 0)) {
    std::fprintf(stderr,
                 "tandem up: give --prefill N and --decode M (both >= 1), --colocated K >= 1, or both\n");
    return 2;
  }
  if (f.step_token_budget < 1) {
    std::fprintf(stderr, "tandem up: --step-token-budget must be >= 1\n");
    return 2;
  }
  BlockTerminationSignals();
  SetProcessTitle("tandem-up");
  const std::string self = SelfExecutable();
  std::vector<Subprocess> children;
  auto fail = [&](const absl::Status& status) {
    std::fprintf(stderr, "tandem up: %s\n", status.ToString().c_str());
    StopProcesses(children, absl::Seconds(15));
    return 1;
  };
  // Router and workers share a secret: no other process (or other cluster) on this machine can call
  // the workers' internal API. A fresh one per cluster, readable by this user only.
  std::string secret_file = f.cluster_secret_file;
  std::string secret_dir;
  if (secret_file.empty()) {
    std::string tmpl = absl::StrCat(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp", "/tandem-up-XXXXXX");
    if (mkdtemp(tmpl.data()) == nullptr) return fail(absl::InternalError("cannot create a directory for the cluster secret"));
    secret_dir = tmpl;
    secret_file = secret_dir + "/cluster-secret";
    if (absl::Status s = WriteRandomClusterSecret(secret_file); !s.ok()) return fail(s);
  }
  struct RemoveDir {
    std::string dir;
    ~RemoveDir() {
      if (!dir.empty()) std::filesystem::remove_all(dir);
    }
  } remove_secret_dir{secret_dir};
  std::vector<std::string> worker_flags = {"--model", model, "--host", f.host, "--kv-cache-mb",
                                          absl::StrCat(f.kv_cache_mb), "--log-level", f.log_level,
                                          "--cluster-secret-file", secret_file,
                                          // the whole cluster stops together: no router to warn
                                          "--shutdown-delay-ms", "0"};
  const std::vector<std::string> backend_args = f.backend.Args();
  worker_flags.insert(worker_flags.end(), backend_args.begin(), backend_args.end());
  // Workers sharing one GPU split it: by default each may use an equal share of 90%.
  const int64_t workers = f.prefill + f.decode + f.colocated;
  const double fraction = f.gpu_memory_fraction > 0 ? f.gpu_memory_fraction : 0.9 / static_cast<double>(workers);
  worker_flags.insert(worker_flags.end(), {"--gpu-memory-fraction", absl::StrCat(fraction)});
  std::vector<std::string> prefill_addresses, decode_addresses, colocated_addresses;
  // Prefill workers first: each decode worker is told which sources it may pull KV from.
  // Starts `count` workers of `role` (the subcommand) with `role_flags`, waits until each listens and
  // appends their addresses to `addresses`.
  auto start_role = [&](const std::string& role, int64_t count, const std::vector<std::string>& role_flags,
                        std::vector<std::string>& addresses) -> absl::Status {
    const size_t first = children.size();
    for (int64_t i = 0; i < count; ++i) {
      const std::string name = absl::StrCat(role, "-", i);
      std::vector<std::string> args = {role, "--id", name, "--port", "0"};
      args.insert(args.end(), worker_flags.begin(), worker_flags.end());
      args.insert(args.end(), role_flags.begin(), role_flags.end());
      if (f.metrics_port >= 0) args.insert(args.end(), {"--metrics-port", NextMetricsPort(f)});
      absl::StatusOr<Subprocess> child = SpawnProcess(name, self, args);
      if (!child.ok()) return child.status();
      children.push_back(std::move(*child));
    }
    for (size_t k = first; k < children.size(); ++k) {
      Subprocess& c = children[k];
      if (absl::Status s = AwaitListening(c, absl::Seconds(120)); !s.ok()) return s;
      addresses.push_back(c.address);
      const std::string metrics =
          c.metrics_address.empty() ? "" : absl::StrCat(", metrics http://", c.metrics_address, "/metrics");
      std::fprintf(stderr, "tandem up: %s ready at %s (pid %d)%s\n", c.name.c_str(), c.address.c_str(), c.pid,
                   metrics.c_str());
    }
    return absl::OkStatus();
  };
  if (absl::Status s = start_role("prefill", f.prefill, {}, prefill_addresses); !s.ok()) return fail(s);
  if (absl::Status s = start_role("decode", f.decode, {"--kv-sources", absl::StrJoin(prefill_addresses, ",")},
                                  decode_addresses);
      !s.ok()) {
    return fail(s);
  }
  if (absl::Status s = start_role("colocated", f.colocated, {"--step-token-budget", absl::StrCat(f.step_token_budget)},
                                  colocated_addresses);
      !s.ok()) {
    return fail(s);
  }
  std::vector<std::string> router_args = {
      "router", "--model", model, "--host", f.host, "--port", absl::StrCat(f.port),
      "--policy", f.policy, "--log-level", f.log_level, "--http-port", absl::StrCat(f.http_port),
      "--cluster-secret-file", secret_file};
  if (f.prefill > 0) {
    router_args.insert(router_args.end(), {"--prefill", absl::StrJoin(prefill_addresses, ","), "--decode",
                                           absl::StrJoin(decode_addresses, ",")});
  }
  if (f.colocated > 0) router_args.insert(router_args.end(), {"--colocated", absl::StrJoin(colocated_addresses, ",")});
  if (f.metrics_port >= 0) router_args.insert(router_args.end(), {"--metrics-port", NextMetricsPort(f)});
  if (!f.latency_model.empty()) router_args.insert(router_args.end(), {"--latency-model", f.latency_model});
  if (!f.chat_template.empty()) router_args.insert(router_args.end(), {"--chat-template", f.chat_template});
  if (!f.api_keys_file.empty()) router_args.insert(router_args.end(), {"--api-keys-file", f.api_keys_file});
  absl::StatusOr<Subprocess> router = SpawnProcess("router", self, router_args);
  if (!router.ok()) return fail(router.status());
  children.push_back(std::move(*router));
  if (absl::Status s = AwaitListening(children.back(), absl::Seconds(60)); !s.ok()) return fail(s);
  std::printf("tandem cluster up: router at %s (%lld prefill, %lld decode, %lld colocated, model %s)\n",
              children.back().address.c_str(), static_cast<long long>(f.prefill),
              static_cast<long long>(f.decode), static_cast<long long>(f.colocated), model.c_str());
  for (const Subprocess& c : children) {
    if (c.metrics_address.empty()) continue;
    std::printf("metrics: %s http://%s/metrics\n", c.name.c_str(), c.metrics_address.c_str());
  }
  if (!children.back().http_address.empty()) {
    std::printf("OpenAI API: http://%s/v1 (try: curl http://%s/v1/completions -d '{\"prompt\": \"Hello\", "
                "\"max_tokens\": 16}')\n",
                children.back().http_address.c_str(), children.back().http_address.c_str());
  }
  std::printf("try: tandem generate --router %s --prompt \"Hello\"\n", children.back().address.c_str());
  std::fflush(stdout);

  // Wait for Ctrl-C / SIGTERM, reporting children that die meanwhile. The router dying ends the cluster.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  const timespec tick{0, 200 * 1000 * 1000};
  int exit_code = 0;
  for (;;) {
    if (sigtimedwait(&set, nullptr, &tick) > 0) {
      std::fprintf(stderr, "tandem up: stopping\n");
      break;
    }
    bool router_gone = false;
    for (Subprocess& c : children) {
      if (!c.exited && CheckExited(c)) {
        std::fprintf(stderr, "tandem up: %s (pid %d) exited (%s)\n", c.name.c_str(), c.pid,
                     DescribeWaitStatus(c.wait_status).c_str());
        router_gone |= c.name == "router";
      }
    }
    if (router_gone) {
      exit_code = 1;
      break;
    }
  }
  StopProcesses(children, absl::Seconds(15));
  return exit_code;
}

}  // namespace

namespace {

int UpMain(const std::vector<std::string>& args, bool serve) {
  UpFlags f;
  FlagParser parser(serve ? "tandem serve [--model DIR] [--port P] [--http-port P] [flags]: a router and one colocated "
                            "worker (prefill and decode in one batch), the one-device server"
                          : "tandem up [--model DIR] [--prefill N --decode M] [--colocated K] [--port P]");
  parser.AddString("model", &f.model, "checkpoint directory; empty makes and uses the embedded default");
  if (serve) {
    f.colocated = 1;
  } else {
    parser.AddInt("prefill", &f.prefill, "prefill worker processes (default 1, or 0 with --colocated)");
    parser.AddInt("decode", &f.decode, "decode worker processes (default 1, or 0 with --colocated)");
    parser.AddInt("colocated", &f.colocated,
                  "colocated worker processes (prefill and decode in one batch); alone or beside the pairs");
  }
  parser.AddInt("step-token-budget", &f.step_token_budget,
                "colocated workers: new tokens per engine step (decodes plus prompt chunks)");
  parser.AddString("host", &f.host, "address everything binds");
  parser.AddInt("port", &f.port, "router gRPC port (workers pick free ports)");
  parser.AddInt("http-port", &f.http_port, "router's OpenAI-compatible HTTP port; 0 picks a free one, -1 is off");
  f.backend.Register(parser);
  parser.AddInt("kv-cache-mb", &f.kv_cache_mb,
                "KV cache per worker in MiB; 0: 256 on the CPU, what --gpu-memory-fraction leaves on a GPU");
  parser.AddDouble("gpu-memory-fraction", &f.gpu_memory_fraction,
                   "share of the GPU each worker may use; 0: 0.9 split evenly between the workers (all on "
                   "--device)");
  parser.AddString("policy", &f.policy, "router placement policy: round_robin, least_loaded or goodput");
  parser.AddString("api-keys-file", &f.api_keys_file,
                   "API keys (one per line) the router's public APIs require as 'Authorization: Bearer KEY'");
  parser.AddString("cluster-secret-file", &f.cluster_secret_file,
                   "secret shared by the router and the workers; empty: a fresh random one, removed on exit");
  parser.AddString("chat-template", &f.chat_template,
                   "a Jinja chat template file for the router's chat endpoint, overriding the model's");
  parser.AddString("latency-model", &f.latency_model,
                   "latency model JSON from `tandem profile`, for --policy goodput (every worker runs one backend)");
  parser.AddString("log-level", &f.log_level, "debug, info, warning or error");
  parser.AddBool("metrics", &f.metrics,
                 "serve GET /metrics (Prometheus) on a free port in every process and print the addresses");
  parser.AddInt("metrics-port", &f.metrics_port,
                "serve GET /metrics from fixed ports: the workers on this one and the next ones, then the "
                "router (0: free ports, as --metrics; -1: off)");
  absl::Status status = parser.Parse(args);
  if (parser.help_requested()) {
    std::fputs(parser.Usage().c_str(), stdout);
    return 0;
  }
  if (!status.ok()) {
    std::fprintf(stderr, "tandem %s: %s\n", serve ? "serve" : "up", status.ToString().c_str());
    return 2;
  }
  return Up(f);
}

}  // namespace

int UpCommand(const std::vector<std::string>& args) { return UpMain(args, /*serve=*/false); }
int ServeCommand(const std::vector<std::string>& args) { return UpMain(args, /*serve=*/true); }

}  // namespace tandem
