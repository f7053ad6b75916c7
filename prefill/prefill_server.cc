#include "prefill/prefill_server.h"

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "prefill/prefill_metrics.h"
#include "prefill/prefill_service.h"
#include "server/daemon_server.h"

namespace tandem {

struct PrefillServer::State {
  MetricsRegistry metrics;  // first: outlives the engine, whose observers feed it
  WorkerModel worker;
  std::unique_ptr<PrefillEngine> engine;
  std::unique_ptr<PrefillService> service;
  std::unique_ptr<DaemonServer> server;
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
  state->service = std::make_unique<PrefillService>(*state->engine, options.worker_id, w.model->max_context(),
                                                    w.model->vocab_size(), w.cache->spec().block_size);
  TANDEM_ASSIGN_OR_RETURN(state->server,
                          DaemonServer::Start({options.host, options.port, options.metrics_port},
                                              {state->service.get()}, &state->metrics));
  state->service->set_address(state->server->address());
  WatchEngine(*state->server, *state->engine, *state->service, options.stall_timeout, "prefill");
  TANDEM_LOG(INFO, "prefill") << "serving " << options.model.model_dir << " on " << state->server->address() << " ("
                              << w.cache->spec().num_blocks << " KV blocks of " << w.cache->spec().block_size
                              << " tokens, backend " << w.backend->name() << ")"
                              << (state->server->metrics_address().empty()
                                      ? ""
                                      : absl::StrCat("; metrics on http://", state->server->metrics_address(),
                                                     "/metrics"));
  return std::unique_ptr<PrefillServer>(new PrefillServer(std::move(state)));
}

int PrefillServer::port() const { return state_->server->port(); }
std::string PrefillServer::address() const { return state_->server->address(); }
const MetricsRegistry& PrefillServer::metrics() const { return state_->metrics; }
std::string PrefillServer::metrics_address() const { return state_->server->metrics_address(); }
PrefillEngine& PrefillServer::engine() { return *state_->engine; }

void PrefillServer::SetNotServing() { state_->server->SetServing(false); }

void PrefillServer::Shutdown(absl::Duration grace) {
  if (state_->stopped) return;
  state_->stopped = true;
  state_->server->Shutdown(grace);
  state_->engine->Shutdown();
  state_->server->StopMetrics();
}

}  // namespace tandem
