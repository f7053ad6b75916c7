#include "decode/decode_server.h"

#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "decode/decode_metrics.h"
#include "decode/decode_service.h"
#include "grpcpp/create_channel.h"
#include "kvtransfer/peer_stubs.h"
#include "kvtransfer/registry.h"
#include "proto/worker.grpc.pb.h"
#include "server/daemon_server.h"

namespace tandem {
namespace {

// Acknowledges pulled KV to the prefill worker that holds it (ReleaseKv), without blocking the caller.
// A failed release is only logged: the lease then expires on its own.
class LeaseReleaser {
 public:
  void Release(const KvHandle& handle) {
    auto stub = stubs_.Get(handle.source);
    struct Call {
      grpc::ClientContext context;
      worker::v1::ReleaseKvRequest request;
      worker::v1::ReleaseKvResponse response;
    };
    auto* call = new Call;
    call->request.set_lease_id(handle.lease_id);
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    stub->async()->ReleaseKv(&call->context, &call->request, &call->response, [call](grpc::Status status) {
      if (!status.ok()) {
        TANDEM_LOG(WARNING, "decode") << "ReleaseKv " << call->request.lease_id() << ": " << status.error_message();
      }
      delete call;
    });
  }

 private:
  PrefillStubCache stubs_{64};
};

}  // namespace

struct DecodeServer::State {
  MetricsRegistry metrics;  // first: outlives the engine, whose observers feed it
  WorkerModel worker;
  std::unique_ptr<KvTransport> owned_transport;
  LeaseReleaser releaser;
  std::unique_ptr<DecodeEngine> engine;
  std::unique_ptr<DecodeService> service;
  std::unique_ptr<DaemonServer> server;
  bool stopped = false;
  std::atomic<bool> release_hang{false};  // fault_hang_after_steps: set at shutdown
};

DecodeServer::DecodeServer(std::unique_ptr<State> state) : state_(std::move(state)) {}
DecodeServer::~DecodeServer() { Shutdown(absl::ZeroDuration()); }

absl::StatusOr<std::unique_ptr<DecodeServer>> DecodeServer::Start(const DecodeServerOptions& options) {
  auto state = std::make_unique<State>();
  KvTransport* transport = options.transport_override;
  if (transport == nullptr) {
    TANDEM_ASSIGN_OR_RETURN(state->owned_transport, MakeKvTransport(options.kv_transport));
    transport = state->owned_transport.get();
  }
  // Decode steps bring one token per sequence.
  WorkerModelOptions model_options = options.model;
  model_options.max_batch_tokens = options.engine.max_batch;
  model_options.max_seqs = options.engine.max_batch;
  TANDEM_ASSIGN_OR_RETURN(state->worker, LoadWorkerModel(model_options));
  WorkerModel& w = state->worker;
  State* raw = state.get();
  DecodeEngineOptions engine_options = options.engine;
  TANDEM_RETURN_IF_ERROR(AddDecodeStepMetrics(state->metrics, engine_options));
  if (options.fault_hang_after_steps > 0) {
    engine_options.on_step = [raw, observe = engine_options.on_step, hang_at = options.fault_hang_after_steps,
                              steps = std::make_shared<std::atomic<int64_t>>(0)](absl::Duration step, int32_t batch) {
      if (observe) observe(step, batch);
      if (++*steps != hang_at) return;
      TANDEM_LOG(WARNING, "decode") << "--fault-hang-after-steps " << hang_at << ": the engine thread stops here";
      while (!raw->release_hang.load()) absl::SleepFor(absl::Milliseconds(10));
    };
  }
  state->engine = std::make_unique<DecodeEngine>(
      *w.model, *w.cache, w.layout, *transport, [raw](const KvHandle& handle) { raw->releaser.Release(handle); },
      engine_options);
  TANDEM_RETURN_IF_ERROR(AddDecodeLoadMetrics(state->metrics, *state->engine));
  state->service = std::make_unique<DecodeService>(*state->engine, w.layout, options.worker_id,
                                                   w.model->max_context(), w.model->vocab_size(),
                                                   w.cache->spec().block_size);
  TANDEM_ASSIGN_OR_RETURN(AddressAllowList sources, AddressAllowList::Create("--kv-sources", options.kv_sources));
  state->service->set_allowed_sources(std::move(sources));
  TANDEM_ASSIGN_OR_RETURN(state->server,
                          DaemonServer::Start({options.host, options.port, options.metrics_port},
                                              {state->service.get()}, &state->metrics));
  WatchEngine(*state->server, *state->engine, *state->service, options.stall_timeout, "decode");
  TANDEM_LOG(INFO, "decode") << "serving " << options.model.model_dir << " on " << state->server->address() << " ("
                             << w.cache->spec().num_blocks << " KV blocks of " << w.cache->spec().block_size
                             << " tokens, backend " << w.backend->name() << ", KV transport " << transport->name()
                             << ")"
                             << (state->server->metrics_address().empty()
                                     ? ""
                                     : absl::StrCat("; metrics on http://", state->server->metrics_address(),
                                                    "/metrics"));
  return std::unique_ptr<DecodeServer>(new DecodeServer(std::move(state)));
}

int DecodeServer::port() const { return state_->server->port(); }
std::string DecodeServer::address() const { return state_->server->address(); }
const MetricsRegistry& DecodeServer::metrics() const { return state_->metrics; }
std::string DecodeServer::metrics_address() const { return state_->server->metrics_address(); }
DecodeEngine& DecodeServer::engine() { return *state_->engine; }

void DecodeServer::SetNotServing() { state_->server->SetServing(false); }

void DecodeServer::Shutdown(absl::Duration grace) {
  if (state_->stopped) return;
  state_->stopped = true;
  state_->server->Shutdown(grace);
  state_->release_hang.store(true);
  state_->engine->Shutdown();
  state_->server->StopMetrics();
}

}  // namespace tandem
