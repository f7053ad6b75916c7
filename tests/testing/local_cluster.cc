#include "tests/testing/local_cluster.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "gtest/gtest.h"
#include "model/demo_model.h"
#include "model/random_model.h"

namespace tandem::test_support {

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::Start(const LocalClusterOptions& options) {
  std::unique_ptr<LocalCluster> cluster(new LocalCluster);
  cluster->model_dir_ = absl::StrCat(::testing::TempDir(), "/", options.name, "_", getpid(), "/tiny");
  std::error_code error;
  std::filesystem::create_directories(cluster->model_dir_, error);
  if (error) return absl::InternalError(absl::StrCat(cluster->model_dir_, ": ", error.message()));
  TANDEM_ASSIGN_OR_RETURN(ModelConfig config, PresetConfig("tiny"));
  TANDEM_RETURN_IF_ERROR(WriteDemoModel(config, DType::kF32, 0, cluster->model_dir_));

  const int metrics_port = options.metrics ? 0 : -1;
  WorkerModelOptions worker;
  worker.model_dir = cluster->model_dir_;
  worker.num_threads = 1;
  worker.kv_cache_mb = 16;
  PrefillServerOptions prefill_options;
  prefill_options.metrics_port = metrics_port;
  prefill_options.model = worker;
  TANDEM_ASSIGN_OR_RETURN(cluster->prefill_, PrefillServer::Start(prefill_options));
  DecodeServerOptions decode_options;
  decode_options.metrics_port = metrics_port;
  decode_options.model = worker;
  TANDEM_ASSIGN_OR_RETURN(cluster->decode_, DecodeServer::Start(decode_options));
  router::RouterOptions router_options;
  router_options.model_dir = cluster->model_dir_;
  router_options.prefill_addresses = {cluster->prefill_->address()};
  router_options.decode_addresses = {cluster->decode_->address()};
  router_options.metrics_port = metrics_port;
  TANDEM_ASSIGN_OR_RETURN(cluster->router_, router::RouterServer::Start(router_options));
  return cluster;
}

LocalCluster::~LocalCluster() {
  if (router_ != nullptr) router_->Shutdown(absl::Seconds(1));
  if (decode_ != nullptr) decode_->Shutdown(absl::Seconds(1));
  if (prefill_ != nullptr) prefill_->Shutdown(absl::Seconds(1));
}

}  // namespace tandem::test_support
