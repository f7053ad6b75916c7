// tandem router: the router daemon. Starts RouterServer, prints "listening on HOST:PORT" once ready,
// and stops cleanly on SIGINT or SIGTERM (health NOT_SERVING first, then a graceful shutdown).
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/subprocess.h"
#include "router/router_server.h"
#include "router/worker_registry.h"
#include "server/cluster_secret.h"
#include "server/grpc_server.h"

namespace tandem {
namespace {

struct RouterFlags {
  std::string model;
  std::string prefill;
  std::string decode;
  std::string colocated;
  std::string host = "127.0.0.1";
  int64_t port = 0;
  int64_t metrics_port = -1;
  int64_t http_port = -1;
  std::string chat_template;
  std::string policy = "least_loaded";  // as tandem up
  std::string latency_model;
  std::string prefill_latency_model;
  std::string decode_latency_model;
  std::string colocated_latency_model;
  int64_t max_queue = 256;
  int64_t default_max_tokens = 64;
  int64_t health_interval_ms = 1000;
  int64_t resolve_interval_ms = 5000;
  std::string cluster_secret_file;
  std::string api_keys_file;
  int64_t max_in_flight_per_client = 0;
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
  double shutdown_grace_s = 5.0;
  std::string log_level = "info";
};

// A PEM file's contents; InvalidArgument naming the flag when unreadable or without a `kind` block.
absl::StatusOr<std::string> ReadPem(const char* flag, const std::string& path, const char* kind) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read '", path, "'"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string pem = buffer.str();
  if (pem.find(absl::StrCat("-----BEGIN ")) == std::string::npos || pem.find(kind) == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": '", path, "' holds no PEM ", kind));
  }
  return pem;
}

absl::Status Serve(const RouterFlags& f, const sigset_t& stop_signals) {
  SetProcessTitle("tandem-router");
  if (f.model.empty()) return absl::InvalidArgumentError("--model is required");
  TANDEM_ASSIGN_OR_RETURN(LogLevel level, ParseLogLevel(f.log_level));
  SetLogLevel(level);
  if (f.port < 0 || f.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--port must be in [0, 65535], got ", f.port));
  }
  if (f.metrics_port < -1 || f.metrics_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-port must be -1 (off) or in [0, 65535], got ", f.metrics_port));
  }
  if (f.resolve_interval_ms < 100) {
    return absl::InvalidArgumentError(absl::StrCat("--resolve-interval-ms must be >= 100, got ", f.resolve_interval_ms));
  }
  if (f.health_interval_ms < 10) {
    return absl::InvalidArgumentError(absl::StrCat("--health-interval-ms must be >= 10, got ", f.health_interval_ms));
  }
  if (!f.cluster_secret_file.empty()) {
    TANDEM_ASSIGN_OR_RETURN(std::string secret, ReadClusterSecretFile("--cluster-secret-file", f.cluster_secret_file));
    SetClusterSecret(std::move(secret));
  }
  router::RouterOptions options;
  options.api_keys_path = f.api_keys_file;
  if (f.max_in_flight_per_client < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-in-flight-per-client must be >= 0, got ", f.max_in_flight_per_client));
  }
  options.max_in_flight_per_client = static_cast<int>(f.max_in_flight_per_client);
  if (!f.tls_cert_file.empty() || !f.tls_key_file.empty() || !f.tls_client_ca_file.empty()) {
    if (f.tls_cert_file.empty() || f.tls_key_file.empty()) {
      return absl::InvalidArgumentError("--tls-cert-file and --tls-key-file go together");
    }
    ServerTls tls;
    TANDEM_ASSIGN_OR_RETURN(tls.cert_chain_pem, ReadPem("--tls-cert-file", f.tls_cert_file, "CERTIFICATE"));
    TANDEM_ASSIGN_OR_RETURN(tls.private_key_pem, ReadPem("--tls-key-file", f.tls_key_file, "PRIVATE KEY"));
    if (!f.tls_client_ca_file.empty()) {
      TANDEM_ASSIGN_OR_RETURN(tls.client_ca_pem, ReadPem("--tls-client-ca-file", f.tls_client_ca_file, "CERTIFICATE"));
    }
    options.tls = std::move(tls);
  }
  options.host = f.host;
  options.port = static_cast<int>(f.port);
  options.metrics_port = static_cast<int>(f.metrics_port);
  if (f.http_port < -1 || f.http_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--http-port must be -1 (off) or in [0, 65535], got ", f.http_port));
  }
  options.http_port = static_cast<int>(f.http_port);
  options.chat_template_path = f.chat_template;
  options.model_dir = f.model;
  if (f.colocated.empty() || !f.prefill.empty() || !f.decode.empty()) {
    TANDEM_ASSIGN_OR_RETURN(options.prefill_addresses, router::ParseWorkerAddresses("--prefill", f.prefill));
    TANDEM_ASSIGN_OR_RETURN(options.decode_addresses, router::ParseWorkerAddresses("--decode", f.decode));
  }
  if (!f.colocated.empty()) {
    TANDEM_ASSIGN_OR_RETURN(options.colocated_addresses, router::ParseWorkerAddresses("--colocated", f.colocated));
  }
  options.policy = f.policy;
  options.latency_model_path = f.latency_model;
  options.prefill_latency_model_path = f.prefill_latency_model;
  options.decode_latency_model_path = f.decode_latency_model;
  options.colocated_latency_model_path = f.colocated_latency_model;
  options.max_queue = static_cast<int>(f.max_queue);
  options.default_max_tokens = static_cast<int>(f.default_max_tokens);
  options.health_interval = absl::Milliseconds(f.health_interval_ms);
  options.resolve_interval = absl::Milliseconds(f.resolve_interval_ms);
  TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<router::RouterServer> server, router::RouterServer::Start(options));

  if (const std::string metrics = server->metrics_address(); !metrics.empty()) {
    std::printf("metrics on %s\n", metrics.c_str());
  }
  if (const std::string http = server->http_address(); !http.empty()) {
    std::printf("http on %s\n", http.c_str());
  }
  std::printf("listening on %s\n", server->address().c_str());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  TANDEM_LOG(INFO, "router") << "signal " << signal_number << ": NOT_SERVING, draining";
  server->SetNotServing();
  server->Shutdown(absl::Seconds(f.shutdown_grace_s));
  return absl::OkStatus();
}

}  // namespace

int RouterCommand(const std::vector<std::string>& args) {
  RouterFlags f;
  FlagParser parser(
      "tandem router --model DIR (--prefill HOST:PORT|dns:NAME:PORT[,...] --decode HOST:PORT|dns:NAME:PORT[,...] | "
      "--colocated HOST:PORT|dns:NAME:PORT[,...] | both) [flags]");
  parser.AddString("model", &f.model, "model directory (config.json, tokenizer.json); its name is the basename");
  parser.AddString("prefill", &f.prefill,
                   "prefill workers, comma-separated host:port, or dns:NAME:PORT for every address NAME resolves to "
                   "(re-resolved: replicas join and leave)");
  parser.AddString("decode", &f.decode, "decode workers, comma-separated host:port or dns:NAME:PORT");
  parser.AddString("colocated", &f.colocated,
                   "colocated workers (tandem colocated: prefill and decode in one batch), comma-separated "
                   "host:port or dns:NAME:PORT; with it, --prefill and --decode are optional (a router may mix both)");
  parser.AddString("host", &f.host, "address to listen on");
  parser.AddInt("port", &f.port, "port to listen on; 0 picks a free one");
  parser.AddInt("metrics-port", &f.metrics_port,
                "HTTP port for GET /metrics (Prometheus); 0 picks a free one, -1 is off");
  parser.AddInt("http-port", &f.http_port,
                "port of the OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /v1/models, "
                "/health, /metrics); 0 picks a free one, -1 is off");
  parser.AddString("chat-template", &f.chat_template,
                   "a Jinja chat template file overriding the model's tokenizer_config.json chat_template");
  parser.AddString("policy", &f.policy, "placement policy: round_robin, least_loaded or goodput (SLO-aware)");
  parser.AddString("latency-model", &f.latency_model,
                   "latency model JSON from `tandem profile` (required by --policy goodput)");
  parser.AddString("prefill-latency-model", &f.prefill_latency_model,
                   "latency model of every prefill worker, instead of --latency-model (devices differ by role)");
  parser.AddString("decode-latency-model", &f.decode_latency_model,
                   "latency model of every decode worker, instead of --latency-model");
  parser.AddString("colocated-latency-model", &f.colocated_latency_model,
                   "latency model of every colocated worker, instead of --latency-model");
  parser.AddInt("max-queue", &f.max_queue, "Generate calls in flight before RESOURCE_EXHAUSTED");
  parser.AddInt("default-max-tokens", &f.default_max_tokens, "max_tokens for requests that leave it 0");
  parser.AddInt("health-interval-ms", &f.health_interval_ms, "worker health check period");
  parser.AddString("cluster-secret-file", &f.cluster_secret_file, "file holding the secret shared by the router and its workers (16+ printable characters); every call between them carries it and workers refuse calls without it. Empty: no check (loopback only)");
  parser.AddString("api-keys-file", &f.api_keys_file,
                   "file of API keys, one per line: public gRPC and /v1/* HTTP calls must send "
                   "'authorization: Bearer KEY' (401/UNAUTHENTICATED otherwise); empty: no keys");
  parser.AddInt("max-in-flight-per-client", &f.max_in_flight_per_client,
                "Generate calls one client may have in flight (RESOURCE_EXHAUSTED / HTTP 429 beyond); a client "
                "is its API key, or its address without keys; 0: no per-client bound");
  parser.AddString("tls-cert-file", &f.tls_cert_file, "PEM certificate chain: serve the gRPC and HTTP APIs over TLS");
  parser.AddString("tls-key-file", &f.tls_key_file, "PEM private key of --tls-cert-file");
  parser.AddString("tls-client-ca-file", &f.tls_client_ca_file,
                   "PEM CA bundle: gRPC and HTTP clients must present a certificate it signed (mutual TLS)");
  parser.AddInt("resolve-interval-ms", &f.resolve_interval_ms, "how often dns: worker entries are re-resolved");
  parser.AddDouble("shutdown-grace-s", &f.shutdown_grace_s, "seconds in-flight calls get on SIGINT/SIGTERM");
  parser.AddString("log-level", &f.log_level, "debug, info, warning or error");
  absl::Status status = parser.Parse(args);
  if (parser.help_requested()) {
    std::fputs(parser.Usage().c_str(), stdout);
    return 0;
  }
  // Block the stop signals before any thread starts, so every gRPC thread inherits the mask and
  // sigwait() here is the only receiver.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  if (status.ok()) status = Serve(f, stop_signals);
  if (!status.ok()) {
    std::fprintf(stderr, "tandem router: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace tandem
