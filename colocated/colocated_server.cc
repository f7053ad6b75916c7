#include "colocated/colocated_server.h"

#include "absl/strings/str_cat.h"
#include "colocated/colocated_metrics.h"
#include "colocated/colocated_service.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "server/daemon_server.h"

namespace tandem {

struct ColocatedServer::State {
  MetricsRegistry metrics;  // first: outlives the engine, whose observer feeds it
  WorkerModel worker;
  std::unique_ptr<ColocatedEngine> engine;
  std::unique_ptr<ColocatedService> service;
  std::unique_ptr<DaemonServer> server;
  bool stopped = false;
};

ColocatedServer::ColocatedServer(std::unique_ptr<State> state) : state_(std::move(state)) {}
ColocatedServer::~ColocatedServer() { Shutdown(absl::ZeroDuration()); }

absl::StatusOr<std::unique_ptr<ColocatedServer>> ColocatedServer::Start(const ColocatedServerOptions& options) {
  if (options.engine.step_token_budget < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--step-token-budget ", options.engine.step_token_budget, " must be >= 1"));
  }
  if (options.engine.max_batch < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--max-batch ", options.engine.max_batch, " must be >= 1"));
  }
  auto state = std::make_unique<State>();
  // The largest step is the token budget (decodes plus chunks), over at most max_batch sequences.
  WorkerModelOptions model_options = options.model;
  model_options.max_batch_tokens = options.engine.step_token_budget;
  model_options.max_seqs = options.engine.max_batch;
  TANDEM_ASSIGN_OR_RETURN(state->worker, LoadWorkerModel(model_options));
  WorkerModel& w = state->worker;
  ColocatedEngineOptions engine_options = options.engine;
  TANDEM_RETURN_IF_ERROR(AddColocatedStepMetrics(state->metrics, engine_options));
  TANDEM_ASSIGN_OR_RETURN(state->engine, ColocatedEngine::Create(*w.model, *w.cache, engine_options));
  TANDEM_RETURN_IF_ERROR(AddColocatedLoadMetrics(state->metrics, *state->engine));
  state->service = std::make_unique<ColocatedService>(*state->engine, w.layout, options.worker_id,
                                                      w.model->max_context(), w.model->vocab_size(),
                                                      w.cache->spec().block_size);
  TANDEM_ASSIGN_OR_RETURN(state->server,
                          DaemonServer::Start({options.host, options.port, options.metrics_port},
                                              {state->service.get()}, &state->metrics));
  WatchEngine(*state->server, *state->engine, *state->service, options.stall_timeout, "colocated");
  TANDEM_LOG(INFO, "colocated") << "serving " << options.model.model_dir << " on " << state->server->address()
                                << " (" << w.cache->spec().num_blocks << " KV blocks of "
                                << w.cache->spec().block_size << " tokens, backend " << w.backend->name()
                                << ", step token budget " << options.engine.step_token_budget << ")"
                                << (state->server->metrics_address().empty()
                                        ? ""
                                        : absl::StrCat("; metrics on http://", state->server->metrics_address(),
                                                       "/metrics"));
  return std::unique_ptr<ColocatedServer>(new ColocatedServer(std::move(state)));
}

int ColocatedServer::port() const { return state_->server->port(); }
std::string ColocatedServer::address() const { return state_->server->address(); }
const MetricsRegistry& ColocatedServer::metrics() const { return state_->metrics; }
std::string ColocatedServer::metrics_address() const { return state_->server->metrics_address(); }
ColocatedEngine& ColocatedServer::engine() { return *state_->engine; }
void ColocatedServer::SetNotServing() { state_->server->SetServing(false); }

void ColocatedServer::Shutdown(absl::Duration grace) {
  if (state_->stopped) return;
  state_->stopped = true;
  state_->server->Shutdown(grace);
  state_->engine->Shutdown();
  state_->server->StopMetrics();
}

}  // namespace tandem
