#include "kvtransfer/pull_kv_test_server.h"

#include "absl/strings/str_cat.h"
#include "kvtransfer/grpc_transport.h"
#include "proto/worker.grpc.pb.h"

namespace tandem {
namespace {

// The generated base class already answers Prefill, ReleaseKv and GetLoad with UNIMPLEMENTED.
class PullKvOnlyService : public worker::v1::PrefillWorker::CallbackService {
 public:
  explicit PullKvOnlyService(KvSource* source) : source_(source) {}

  grpc::ServerWriteReactor<worker::v1::KvChunk>* PullKv(
      grpc::CallbackServerContext* context, const worker::v1::PullKvRequest* request) override {
    return NewPullKvReactor(context, request, source_);
  }

 private:
  KvSource* source_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<PullKvTestServer>> PullKvTestServer::Start(KvSource* source) {
  std::unique_ptr<PullKvTestServer> server(new PullKvTestServer());
  server->service_ = std::make_unique<PullKvOnlyService>(source);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || port == 0) {
    return absl::UnavailableError("PullKvTestServer: could not bind 127.0.0.1:0");
  }
  server->address_ = absl::StrCat("127.0.0.1:", port);
  return server;
}

PullKvTestServer::~PullKvTestServer() { Shutdown(); }

void PullKvTestServer::Shutdown() {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
  server_.reset();
}

}  // namespace tandem
