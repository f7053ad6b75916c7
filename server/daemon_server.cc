#include "server/daemon_server.h"

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "grpcpp/health_check_service_interface.h"

namespace tandem {

absl::StatusOr<std::unique_ptr<DaemonServer>> DaemonServer::Start(const DaemonServerOptions& options,
                                                                 const std::vector<grpc::Service*>& services,
                                                                 const MetricsRegistry* metrics) {
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--port must be in [0, 65535], got ", options.port));
  }
  if (options.metrics_port < -1 || options.metrics_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-port must be -1 (off) or in [0, 65535], got ", options.metrics_port));
  }
  std::unique_ptr<DaemonServer> server(new DaemonServer);
  if (options.metrics_port >= 0) {
    if (metrics == nullptr) return absl::InvalidArgumentError("a metrics port without a metrics registry");
    server->metrics_http_ = std::make_unique<MetricsHttpServer>(*metrics);
    TANDEM_RETURN_IF_ERROR(server->metrics_http_->Start(options.host, options.metrics_port).status());
  }
  absl::StatusOr<BuiltServer> built =
      BuildAndStartServer(options.host, options.port, services, options.tls ? &*options.tls : nullptr);
  if (!built.ok()) {
    if (server->metrics_http_ != nullptr) server->metrics_http_->Stop();
    return built.status();
  }
  server->built_ = *std::move(built);
  return server;
}

DaemonServer::~DaemonServer() {
  Shutdown(absl::ZeroDuration());
  StopMetrics();
}

std::string DaemonServer::metrics_address() const {
  return metrics_http_ == nullptr ? "" : metrics_http_->address();
}

void DaemonServer::SetServing(bool serving) {
  {
    std::lock_guard<std::mutex> lock(serving_mu_);
    serving_ = serving;
  }
  ApplyServing();
}

void DaemonServer::ApplyServing() {
  std::lock_guard<std::mutex> lock(serving_mu_);
  if (built_.server == nullptr || shut_down_) return;
  if (grpc::HealthCheckServiceInterface* health = built_.server->GetHealthCheckService()) {
    health->SetServingStatus(serving_ && !stalled_.load());
  }
}

void DaemonServer::WatchProgress(std::function<absl::Time()> heartbeat, absl::Duration stall_timeout,
                                 std::string name) {
  if (stall_timeout <= absl::ZeroDuration() || watchdog_.joinable()) return;
  const absl::Duration interval = std::min(stall_timeout / 4, absl::Milliseconds(250));
  watchdog_ = std::thread([this, heartbeat = std::move(heartbeat), stall_timeout, interval, name = std::move(name)] {
    while (!stop_watchdog_.load()) {
      const absl::Duration idle = absl::Now() - heartbeat();
      const bool stalled = idle > stall_timeout;
      if (stalled != stalled_.load()) {
        stalled_.store(stalled);
        if (stalled) {
          TANDEM_LOG(ERROR, name.c_str()) << "the engine has not moved for " << absl::FormatDuration(idle)
                                  << " (stall timeout " << absl::FormatDuration(stall_timeout)
                                  << "): health NOT_SERVING until it does";
        } else {
          TANDEM_LOG(WARNING, name.c_str()) << "the engine moves again; health back to what it was";
        }
        ApplyServing();
      }
      absl::SleepFor(interval);
    }
  });
}

void DaemonServer::Shutdown(absl::Duration grace) {
  stop_watchdog_.store(true);
  if (watchdog_.joinable()) watchdog_.join();
  {
    std::lock_guard<std::mutex> lock(serving_mu_);
    if (shut_down_ || built_.server == nullptr) return;
    shut_down_ = true;
  }
  StopServer(*built_.server, grace);
}

void DaemonServer::StopMetrics() {
  if (metrics_http_ != nullptr) metrics_http_->Stop();
}

}  // namespace tandem
