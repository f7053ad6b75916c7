#include "prefill/prefill_server.h"

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/metrics_http.h"
#include "common/status_macros.h"
#include "prefill/prefill_metrics.h"
#include "prefill/prefill_service.h"
#include "worker/grpc_server.h"

namespace tandem {

struct PrefillServer::State {
  MetricsRegistry metrics;  // first: outlives the engine, whose observers feed it
  WorkerModel worker;
  std::unique_ptr<PrefillEngine> engine;
  std::unique_ptr<PrefillService> service;
  BuiltServer server;
  std::unique_ptr<MetricsHttpServer> metrics_http;  // null without a metrics port
  bool stopped = false;
};

PrefillServer::PrefillServer(std::unique_ptr<State> state) : state_(std::move(state)) {}
PrefillServer::~PrefillServer() { Shutdown(absl::ZeroDuration()); }

absl::StatusOr<std::unique_ptr<PrefillServer>> PrefillServer::Start(const PrefillServerOptions& options) {
  auto state = std::make_unique<State>();
  WorkerModelOptions model_options = options.model;
  model_options.max_batch_tokens = options.engine.max_batch_tokens;
  model_options.max_seqs = options.engine.max_batch;
  TANDEM_ASSIGN_OR_RETURN(state->worker, LoadWorkerModel(model_options));
  WorkerModel& w = state->worker;
  PrefillEngineOptions engine_options = options.engine;
  TANDEM_RETURN_IF_ERROR(AddPrefillStepMetrics(state->metrics, engine_options));
  state->engine = std::make_unique<PrefillEngine>(*w.model, *w.cache, w.layout, engine_options);
  TANDEM_RETURN_IF_ERROR(AddPrefillLoadMetrics(state->metrics, *state->engine));
  if (options.metrics_port != -1) {  // out of range: Start says so
    state->metrics_http = std::make_unique<MetricsHttpServer>(state->metrics);
    TANDEM_RETURN_IF_ERROR(state->metrics_http->Start(options.host, options.metrics_port).status());
  }
  state->service = std::make_unique<PrefillService>(*state->engine, options.worker_id, w.model->max_context(),
                                                    w.model->vocab_size(), w.cache->spec().block_size);
  TANDEM_ASSIGN_OR_RETURN(state->server, BuildAndStartServer(options.host, options.port, {state->service.get()}));
  state->service->set_address(state->server.address);
  TANDEM_LOG(INFO, "prefill") << "serving " << options.model.model_dir << " on " << state->server.address << " ("
                              << w.cache->spec().num_blocks << " KV blocks of " << w.cache->spec().block_size
                              << " tokens, backend " << w.backend->name() << ")"
                              << (state->metrics_http == nullptr
                                      ? ""
                                      : absl::StrCat("; metrics on http://", state->metrics_http->address(),
                                                     "/metrics"));
  return std::unique_ptr<PrefillServer>(new PrefillServer(std::move(state)));
}

int PrefillServer::port() const { return state_->server.port; }
std::string PrefillServer::address() const { return state_->server.address; }
const MetricsRegistry& PrefillServer::metrics() const { return state_->metrics; }
std::string PrefillServer::metrics_address() const {
  return state_->metrics_http == nullptr ? "" : state_->metrics_http->address();
}
PrefillEngine& PrefillServer::engine() { return *state_->engine; }

void PrefillServer::Shutdown(absl::Duration grace) {
  if (state_->stopped) return;
  state_->stopped = true;
  StopServer(*state_->server.server, grace);
  state_->engine->Shutdown();
  if (state_->metrics_http != nullptr) state_->metrics_http->Stop();
}

}  // namespace tandem
