#include "router/router_server.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "chat/chat_template.h"
#include "common/dns.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "model/config.h"
#include "router/http_front_door.h"
#include "router/policy/placement_policy.h"
#include "router/router_metrics.h"
#include "router/router_state.h"
#include "router/tandem_service.h"
#include "router/worker_registry.h"
#include "server/daemon_server.h"
#include "tokenizer/tokenizer.h"

namespace tandem::router {
namespace {

std::string Basename(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

absl::StatusOr<ServedModel> LoadServedModel(const RouterOptions& options) {
  TANDEM_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(options.model_dir));
  ServedModel model;
  model.name = Basename(options.model_dir);
  model.max_context = config.max_position_embeddings;
  model.vocab_size = config.vocab_size;
  for (int64_t id : config.eos_token_ids) model.eos_token_ids.push_back(static_cast<int32_t>(id));
  model.default_max_tokens = options.default_max_tokens;
  if (model.max_context < 2) {
    return absl::InvalidArgumentError(absl::StrCat(options.model_dir, "/config.json: max_position_embeddings ",
                                                   model.max_context, " is too small to serve"));
  }
  return model;
}

// The chat endpoint's renderer: the model's tokenizer_config.json chat_template (or a
// chat_template.jinja beside it), or --chat-template. A model with neither has none: the chat endpoint
// then answers 400. A template that does not parse fails the start, naming the file.
absl::StatusOr<ChatRenderer> LoadChatRenderer(const RouterOptions& options) {
  ChatTemplateOptions chat_options;
  if (!options.chat_template_path.empty()) {
    std::ifstream file(options.chat_template_path, std::ios::binary);
    if (!file) return absl::InvalidArgumentError(absl::StrCat("--chat-template: cannot read ", options.chat_template_path));
    std::stringstream text;
    text << file.rdbuf();
    chat_options.template_source = text.str();
    if (chat_options.template_source.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--chat-template: ", options.chat_template_path, " is empty"));
    }
  }
  const std::string config_path = options.model_dir + "/tokenizer_config.json";
  std::error_code error;
  absl::StatusOr<ChatTemplate> chat = absl::NotFoundError("no tokenizer_config.json");
  if (std::filesystem::exists(config_path, error)) {
    chat = ChatTemplate::FromTokenizerConfigFile(config_path, chat_options);
  } else if (!chat_options.template_source.empty()) {
    chat = ChatTemplate::FromTokenizerConfig(nlohmann::ordered_json::object(), chat_options);
  }
  if (absl::IsNotFound(chat.status())) {
    TANDEM_LOG(INFO, "router") << "no chat template (" << chat.status().message()
                               << "): /v1/chat/completions answers 400";
    return ChatRenderer(nullptr);
  }
  if (!chat.ok()) return absl::InvalidArgumentError(absl::StrCat("chat template: ", chat.status().message()));
  auto shared = std::make_shared<const ChatTemplate>(*std::move(chat));
  return ChatRenderer([shared](const nlohmann::ordered_json& messages) -> absl::StatusOr<std::string> {
    absl::StatusOr<std::string> prompt =
        shared->Render(messages, /*tools=*/nullptr, /*add_generation_prompt=*/true, nlohmann::ordered_json::object());
    if (!prompt.ok() && !absl::IsInvalidArgument(prompt.status())) {
      return absl::InvalidArgumentError(prompt.status().message());
    }
    return prompt;
  });
}

}  // namespace

std::string JoinHostPort(const std::string& host, int port) {
  if (absl::StrContains(host, ":") && !absl::StartsWith(host, "[")) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<policy::PlacementPolicyOptions> LoadPolicyOptions(const RouterOptions& options) {
  const auto load = [](const char* flag, const std::string& path) -> absl::StatusOr<policy::LatencyModel> {
    absl::StatusOr<policy::LatencyModel> model = policy::LatencyModel::FromFile(path);
    if (!model.ok()) return absl::Status(model.status().code(), absl::StrCat(flag, ": ", model.status().message()));
    return model;
  };
  policy::PlacementPolicyOptions result;
  if (!options.latency_model_path.empty()) {
    TANDEM_ASSIGN_OR_RETURN(result.latency_model, load("--latency-model", options.latency_model_path));
  }
  const bool by_role = !options.prefill_latency_model_path.empty() || !options.decode_latency_model_path.empty();
  // Colocated workers take --colocated-latency-model, else --latency-model, else the decode workers'.
  if (by_role && !result.latency_model.has_value() &&
      (options.prefill_latency_model_path.empty() || options.decode_latency_model_path.empty())) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.prefill_latency_model_path.empty() ? "--prefill-latency-model" : "--decode-latency-model",
        ": missing; with one role's latency model, give the other role's or --latency-model for both"));
  }
  const auto add_role = [&](const char* flag, const std::string& path,
                            const std::vector<std::string>& addresses) -> absl::Status {
    if (path.empty()) return absl::OkStatus();
    for (const std::string& address : addresses) {
      if (IsDnsTarget(address)) {
        // Per-worker models are keyed by address; a DNS target's addresses are only known later.
        return absl::InvalidArgumentError(absl::StrCat(
            flag, ": not available with a dns: worker entry (", address, "); use --latency-model for every worker"));
      }
    }
    TANDEM_ASSIGN_OR_RETURN(policy::LatencyModel model, load(flag, path));
    if (!result.latency_model.has_value()) result.latency_model = model;
    for (const std::string& address : addresses) result.worker_latency_models.insert_or_assign(address, model);
    return absl::OkStatus();
  };
  TANDEM_RETURN_IF_ERROR(add_role("--prefill-latency-model", options.prefill_latency_model_path,
                                  options.prefill_addresses));
  TANDEM_RETURN_IF_ERROR(add_role("--decode-latency-model", options.decode_latency_model_path,
                                  options.decode_addresses));
  TANDEM_RETURN_IF_ERROR(add_role("--colocated-latency-model", options.colocated_latency_model_path,
                                  options.colocated_addresses));
  return result;
}

absl::StatusOr<std::unique_ptr<RouterServer>> RouterServer::Start(RouterOptions options) {
  if (options.model_dir.empty()) return absl::InvalidArgumentError("model_dir is required");
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port must be in [0, 65535], got ", options.port));
  }
  if (options.default_max_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("default_max_tokens must be >= 1, got ", options.default_max_tokens));
  }
  if (options.max_queue < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_queue must be >= 1, got ", options.max_queue));
  }
  if (options.metrics_port < -1 || options.metrics_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics_port must be -1 (off) or in [0, 65535], got ", options.metrics_port));
  }
  TANDEM_ASSIGN_OR_RETURN(policy::PlacementPolicyOptions policy_options, LoadPolicyOptions(options));
  TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<policy::PlacementPolicy> policy,
                          policy::MakePlacementPolicy(options.policy, policy_options));
  TANDEM_ASSIGN_OR_RETURN(ServedModel model, LoadServedModel(options));
  TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                          Tokenizer::FromFile(options.model_dir + "/tokenizer.json"));
  ApiKeys api_keys;
  if (!options.api_keys_path.empty()) {
    TANDEM_ASSIGN_OR_RETURN(api_keys, ApiKeys::FromFile("--api-keys-file", options.api_keys_path));
  }

  WorkerRegistryOptions registry_options;
  registry_options.prefill_addresses = options.prefill_addresses;
  registry_options.decode_addresses = options.decode_addresses;
  registry_options.colocated_addresses = options.colocated_addresses;
  registry_options.health_interval = options.health_interval;
  registry_options.resolve_interval = options.resolve_interval;
  {
    TANDEM_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(options.model_dir));
    registry_options.expected_model = {config.num_hidden_layers, config.num_key_value_heads, config.head_dim,
                                       config.vocab_size};
  }
  registry_options.resolver = options.resolver;
  registry_options.unhealthy_after_failures = options.unhealthy_after_failures;
  registry_options.load_interval = options.load_interval;
  std::unique_ptr<RouterServer> server(new RouterServer);
  // The server outlives the poller (Shutdown stops it first); until daemon_ is set this does nothing.
  registry_options.after_health_round = [raw = server.get()] { raw->UpdateServing(); };
  registry_options.on_unresponsive = [raw = server.get()](WorkerRole role, int index) {
    if (RouterState* state = raw->live_state_.load()) state->AbandonCallsOn(role, index);
  };
  TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<WorkerRegistry> registry,
                          WorkerRegistry::Create(std::move(registry_options)));
  registry->Start();

  server->options_ = options;
  const std::string model_name = model.name;
  server->state_ = std::make_unique<RouterState>(std::move(model), std::move(tokenizer), std::move(registry),
                                                 std::move(policy), options.max_queue);
  server->state_->set_api_keys(std::move(api_keys));
  server->state_->set_max_in_flight_per_client(options.max_in_flight_per_client);
  server->live_state_.store(server->state_.get());
  server->metrics_ = std::make_unique<MetricsRegistry>();
  RouterState* state = server->state_.get();
  TANDEM_ASSIGN_OR_RETURN(server->router_metrics_,
                          RouterMetrics::Create(*server->metrics_, state->registry(),
                                                [state] { return static_cast<double>(state->in_flight()); }));
  state->set_metrics(server->router_metrics_.get());
  server->service_ = std::make_unique<TandemService>(*server->state_);
  if (options.http_port >= 0) {
    HttpFrontDoorOptions http;
    http.host = options.host;
    http.port = options.http_port;
    http.metrics = server->metrics_.get();
    http.tls = options.tls;
    TANDEM_ASSIGN_OR_RETURN(http.render_chat, LoadChatRenderer(options));
    absl::StatusOr<std::unique_ptr<HttpFrontDoor>> front = HttpFrontDoor::Start(*server->state_, std::move(http));
    if (!front.ok()) {
      server->state_->registry().Shutdown();
      return absl::Status(front.status().code(), absl::StrCat("router: ", front.status().message()));
    }
    server->http_ = *std::move(front);
  }

  absl::StatusOr<std::unique_ptr<DaemonServer>> daemon =
      DaemonServer::Start({options.host, options.port, options.metrics_port, options.tls},
                          {server->service_.get()}, server->metrics_.get());
  if (!daemon.ok()) {
    if (server->http_ != nullptr) server->http_->Stop();
    server->state_->registry().Shutdown();
    return absl::Status(daemon.status().code(), absl::StrCat("router: ", daemon.status().message()));
  }
  server->port_ = (*daemon)->port();
  {
    absl::MutexLock lock(&server->serving_mu_);
    server->daemon_ = *std::move(daemon);
  }
  server->UpdateServing();
  TANDEM_LOG(INFO, "router") << "serving model '" << model_name << "' on " << server->address() << " with "
                             << options.prefill_addresses.size() << " prefill and "
                             << options.decode_addresses.size() << " decode and "
                             << options.colocated_addresses.size() << " colocated worker entries, policy "
                             << options.policy
                             << (server->metrics_address().empty()
                                     ? ""
                                     : absl::StrCat("; metrics on http://", server->metrics_address(), "/metrics"))
                             << (server->http_ == nullptr ? "" : absl::StrCat("; HTTP on ", options.tls.has_value() ? "https://" : "http://",
                                                                        server->http_address()));
  return server;
}

RouterServer::~RouterServer() { Shutdown(); }

std::string RouterServer::address() const { return JoinHostPort(options_.host, port_); }

const std::string& RouterServer::model_name() const { return state_->model().name; }

WorkerRegistry& RouterServer::registry() { return state_->registry(); }

std::string RouterServer::http_address() const { return http_ == nullptr ? "" : http_->address(); }

std::string RouterServer::metrics_address() const { return daemon_ == nullptr ? "" : daemon_->metrics_address(); }

void RouterServer::UpdateServing() {
  absl::MutexLock lock(&serving_mu_);
  if (daemon_ == nullptr || not_serving_forced_) return;
  const policy::ClusterSnapshot snapshot = state_->registry().Snapshot();
  bool prefill = false, decode = false, colocated = false;
  for (const auto& w : snapshot.prefill) prefill = prefill || w.healthy;
  for (const auto& w : snapshot.decode) decode = decode || w.healthy;
  for (const auto& w : snapshot.colocated) colocated = colocated || w.healthy;
  const bool serving = (prefill && decode) || colocated;
  if (serving != serving_) {
    ::tandem::LogLine(serving ? LogLevel::kInfo : LogLevel::kWarning, "router", "")
        << (serving ? (colocated ? "SERVING: a colocated worker is healthy"
                                 : "SERVING: a prefill and a decode worker are healthy")
                    : "NOT_SERVING: no healthy prefill/decode pair and no healthy colocated worker");
  }
  serving_ = serving;
  daemon_->SetServing(serving);
}

void RouterServer::SetNotServing() {
  absl::MutexLock lock(&serving_mu_);
  not_serving_forced_ = true;
  if (daemon_ != nullptr) daemon_->SetServing(false);
}

void RouterServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  SetNotServing();
  if (http_ != nullptr) http_->StopAccepting();
  if (daemon_ != nullptr) daemon_->Shutdown(grace);
  // HTTP requests in flight are cancelled with the gRPC ones below; the connections close after.
  // Server::Shutdown returns once every server-side reaction ran; worker calls (a prefill allowed to
  // finish, a ReleaseKv) may still be in flight and hold their reactors.
  if (state_ != nullptr) {
    state_->CancelAllAndWait();
    if (http_ != nullptr) http_->Stop();
    state_->registry().Shutdown();
  }
  // Last: its callbacks read the registry and the in-flight count, which stay until the destructor.
  if (daemon_ != nullptr) daemon_->StopMetrics();
  TANDEM_LOG(INFO, "router") << "stopped";
}

}  // namespace tandem::router
