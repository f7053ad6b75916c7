// tandem generate: a client of the router. Streams the answer to stdout as it arrives, then prints the
// request's timing breakdown and SLO verdict to stderr.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <memory>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "proto/tandem.grpc.pb.h"

namespace tandem {
namespace {

struct GenerateFlags {
  std::string router;
  std::string model;
  std::string prompt;
  int64_t max_tokens = 0;
  bool max_tokens_set = false;  // unset: the router's default
  double temperature = 0.0;
  double top_p = 1.0;
  int64_t top_k = 0;
  int64_t seed = 0;
  std::string stop;
  bool ignore_eos = false;
  double ttft_slo_ms = 0.0;
  double tpot_slo_ms = 0.0;
  bool best_effort = false;
  double timeout_s = 300.0;
  std::string api_key;      // --api-key, else $TANDEM_API_KEY
  std::string tls_ca_file;  // set: TLS, trusting this CA bundle
};

const char* FinishReasonName(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_LENGTH: return "length (max_tokens)";
    case v1::FINISH_REASON_STOP_TOKEN: return "stop token";
    case v1::FINISH_REASON_STOP_STRING: return "stop string";
    default: return "unspecified";
  }
}

const char* GrpcCodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
      "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  const int index = static_cast<int>(code);
  return index >= 0 && index < 17 ? kNames[index] : "UNKNOWN";
}

void PrintFinal(const v1::Final& final) {
  const v1::Timing& t = final.timing();
  // A colocated worker is named as both (the router's final report has no third field).
  std::string text = final.prefill_worker() == final.decode_worker()
                         ? absl::StrFormat("\n[request %s: colocated %s]\n", final.request_id(), final.prefill_worker())
                         : absl::StrFormat("\n[request %s: prefill %s -> decode %s]\n", final.request_id(),
                                           final.prefill_worker(), final.decode_worker());
  text += absl::StrFormat(
      "[finish: %s; %d prompt tokens, %d generated]\n"
      "[stages: prefill queue %.1f ms | prefill compute %.1f ms | kv transfer %.1f ms | decode queue %.1f ms | "
      "decode compute %.1f ms]\n"
      "[TTFT %.1f ms | TPOT %.2f ms | E2E %.1f ms]\n",
      FinishReasonName(final.finish_reason()),
      final.prompt_tokens(), final.completion_tokens(), t.prefill_queue_ms(), t.prefill_compute_ms(),
      t.kv_transfer_ms(), t.decode_queue_ms(), t.decode_compute_ms(), t.ttft_ms(), t.tpot_ms(), t.e2e_ms());
  if (final.slo().ttft_met() && final.slo().tpot_met()) {
    text += "[SLO: met]\n";
  } else {
    absl::StrAppendFormat(&text, "[SLO: missed: %s]\n", final.slo().explanation());
  }
  std::fputs(text.c_str(), stderr);
}

int Generate(const GenerateFlags& f) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!f.tls_ca_file.empty()) {
    std::ifstream in(f.tls_ca_file, std::ios::binary);
    std::stringstream pem;
    pem << in.rdbuf();
    if (!in || pem.str().empty()) {
      std::fprintf(stderr, "tandem generate: --tls-ca-file: cannot read '%s'\n", f.tls_ca_file.c_str());
      return 2;
    }
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pem.str();
    credentials = grpc::SslCredentials(ssl);
  }
  auto channel = grpc::CreateCustomChannel(f.router, credentials, args);
  auto stub = v1::Tandem::NewStub(channel);

  v1::GenerateRequest request;
  request.set_model(f.model);
  request.set_prompt(f.prompt);
  if (f.max_tokens_set) request.set_max_tokens(static_cast<int32_t>(f.max_tokens));
  request.mutable_sampling()->set_temperature(static_cast<float>(f.temperature));
  request.mutable_sampling()->set_top_p(static_cast<float>(f.top_p));
  request.mutable_sampling()->set_top_k(static_cast<int32_t>(f.top_k));
  request.mutable_sampling()->set_seed(static_cast<uint64_t>(f.seed));
  if (!f.stop.empty()) request.add_stop(f.stop);
  request.set_ignore_eos(f.ignore_eos);
  request.mutable_slo()->set_ttft_ms(f.ttft_slo_ms);
  request.mutable_slo()->set_tpot_ms(f.tpot_slo_ms);
  request.mutable_slo()->set_best_effort(f.best_effort);

  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(f.timeout_s)));
  if (!f.api_key.empty()) context.AddMetadata("authorization", "Bearer " + f.api_key);
  auto reader = stub->Generate(&context, request);
  v1::GenerateResponse response;
  bool have_final = false;
  bool wrote_text = false;
  v1::Final final;
  while (reader->Read(&response)) {
    if (!response.text().empty()) {
      std::fwrite(response.text().data(), 1, response.text().size(), stdout);
      std::fflush(stdout);
      wrote_text = true;
    }
    if (response.has_final()) {
      final = response.final();
      have_final = true;
    }
  }
  const grpc::Status status = reader->Finish();
  if (wrote_text) {
    std::fputs("\n", stdout);
    std::fflush(stdout);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "tandem generate: %s: %s\n", GrpcCodeName(status.error_code()),
                 status.error_message().c_str());
    return 1;
  }
  if (have_final) PrintFinal(final);
  return 0;
}

}  // namespace

int GenerateCommand(const std::vector<std::string>& args) {
  GenerateFlags f;
  FlagParser parser("tandem generate --router HOST:PORT --prompt TEXT [flags]");
  parser.AddString("router", &f.router, "the router's address");
  parser.AddString("model", &f.model, "model name (empty: the cluster's only model)");
  parser.AddString("prompt", &f.prompt, "prompt text");
  parser.AddInt("max-tokens", &f.max_tokens, "tokens to generate at most (unset: the router's default)");
  parser.AddDouble("temperature", &f.temperature, "sampling temperature; 0 is greedy");
  parser.AddDouble("top-p", &f.top_p, "sample from the smallest set with this probability; 1 is off");
  parser.AddInt("top-k", &f.top_k, "sample among the k most likely tokens; 0 is off");
  parser.AddInt("seed", &f.seed, "sampling seed");
  parser.AddString("stop", &f.stop, "stop when the output contains this string");
  parser.AddBool("ignore-eos", &f.ignore_eos, "keep generating past end-of-sequence tokens");
  parser.AddDouble("ttft-slo-ms", &f.ttft_slo_ms, "time-to-first-token objective; 0 is none");
  parser.AddDouble("tpot-slo-ms", &f.tpot_slo_ms, "time-per-output-token objective; 0 is none");
  parser.AddBool("best-effort", &f.best_effort, "place the request even when the SLO looks out of reach");
  parser.AddDouble("timeout-s", &f.timeout_s, "deadline for the whole request, in seconds");
  parser.AddString("api-key", &f.api_key, "API key for a router started with --api-keys-file (default $TANDEM_API_KEY)");
  parser.AddString("tls-ca-file", &f.tls_ca_file, "connect over TLS, trusting this PEM CA bundle");
  absl::Status status = parser.Parse(args);
  if (parser.help_requested()) {
    std::fputs(parser.Usage().c_str(), stdout);
    return 0;
  }
  f.max_tokens_set = parser.WasSet("max-tokens");
  if (!parser.WasSet("api-key") && std::getenv("TANDEM_API_KEY") != nullptr) f.api_key = std::getenv("TANDEM_API_KEY");
  if (status.ok() && f.router.empty()) status = absl::InvalidArgumentError("--router is required");
  if (status.ok() && f.timeout_s <= 0) {
    status = absl::InvalidArgumentError(absl::StrFormat("--timeout-s must be > 0, got %g", f.timeout_s));
  }
  if (!status.ok()) {
    std::fprintf(stderr, "tandem generate: %s\n", status.ToString().c_str());
    return 1;
  }
  return Generate(f);
}

}  // namespace tandem
