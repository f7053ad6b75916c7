// The Decode RPC dials only the prefill workers it was given: KvHandle.source used to be dialled as
// given, by anyone who could reach the port (issue 11, item 3).
#include "decode/decode_server.h"

#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "kvtransfer/kv_proto.h"
#include "model/random_model.h"
#include "proto/worker.grpc.pb.h"

namespace tandem {
namespace {

TEST(DecodeServiceTest, AKvSourceOutsideTheClusterIsRefused) {
  const std::string dir = ::testing::TempDir() + "/decode_service_model";
  ASSERT_TRUE(WriteRandomModel(*PresetConfig("tiny"), DType::kF32, 3, dir).ok());
  DecodeServerOptions options;
  options.model.model_dir = dir;
  options.model.num_threads = 1;
  options.model.kv_cache_mb = 8;
  options.kv_sources = {"127.0.0.1:1"};
  auto server = DecodeServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = worker::v1::DecodeWorker::NewStub(
      grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));

  worker::v1::DecodeRequest request;
  request.set_request_id("r");
  request.add_prompt(5);
  request.set_first_token(6);
  request.set_max_tokens(4);
  worker::v1::KvHandle* kv = request.mutable_kv();
  kv->set_lease_id("lease-x");
  kv->set_source("10.1.2.3:5555");
  kv->set_num_tokens(1);
  kv->set_transport("grpc");
  worker::v1::KvLayout* layout = kv->mutable_layout();
  layout->set_model_fingerprint("f");
  layout->set_num_layers(2);
  layout->set_num_kv_heads(2);
  layout->set_head_dim(16);
  layout->set_dtype("F32");
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto reader = stub->Decode(&context, request);
  worker::v1::DecodeResponse response;
  while (reader->Read(&response)) {
  }
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_NE(status.error_message().find("kv.source 10.1.2.3:5555"), std::string::npos) << status.error_message();
  (*server)->Shutdown(absl::ZeroDuration());
}

}  // namespace
}  // namespace tandem
