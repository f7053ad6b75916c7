#include "kvtransfer/kv_proto.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

KvHandle Handle(DType dtype) {
  KvHandle handle;
  handle.lease_id = "lease-7";
  handle.source = "127.0.0.1:5000";
  handle.num_tokens = 33;
  handle.layout.model_fingerprint = "fp";
  handle.layout.num_layers = 3;
  handle.layout.num_kv_heads = 4;
  handle.layout.head_dim = 16;
  handle.layout.dtype = dtype;
  handle.lease_ms = 30000;
  handle.transport = "grpc";
  return handle;
}

TEST(KvProtoTest, HandleRoundTripsForEveryDtype) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    worker::v1::KvHandle proto;
    HandleToProto(Handle(dtype), &proto);
    EXPECT_EQ(proto.layout().dtype(), std::string(DTypeName(dtype)));
    auto back = HandleFromProto(proto);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->lease_id, "lease-7");
    EXPECT_EQ(back->source, "127.0.0.1:5000");
    EXPECT_EQ(back->num_tokens, 33);
    EXPECT_EQ(back->lease_ms, 30000);
    EXPECT_EQ(back->transport, "grpc");
    EXPECT_TRUE(SameLayout(back->layout, Handle(dtype).layout));
  }
}

TEST(KvProtoTest, UnknownDtypeIsInvalidArgumentNamingTheField) {
  worker::v1::KvHandle proto;
  HandleToProto(Handle(DType::kF32), &proto);
  proto.mutable_layout()->set_dtype("float32");  // the torch spelling is not the wire's
  auto handle = HandleFromProto(proto);
  EXPECT_EQ(handle.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(handle.status().message(), HasSubstr("kv.layout.dtype"));
  EXPECT_THAT(handle.status().message(), HasSubstr("'float32'"));

  auto layout = LayoutFromProto(proto.layout(), "request.layout");
  EXPECT_EQ(layout.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(layout.status().message(), HasSubstr("request.layout.dtype"));
}

TEST(KvProtoTest, BadFieldsAreInvalidArgumentNamingTheField) {
  worker::v1::KvHandle good;
  HandleToProto(Handle(DType::kF16), &good);
  struct Case {
    void (*mutate)(worker::v1::KvHandle&);
    const char* field;
  };
  const Case cases[] = {
      {[](worker::v1::KvHandle& h) { h.clear_lease_id(); }, "kv.lease_id"},
      {[](worker::v1::KvHandle& h) { h.clear_source(); }, "kv.source"},
      {[](worker::v1::KvHandle& h) { h.set_num_tokens(-1); }, "kv.num_tokens"},
      {[](worker::v1::KvHandle& h) { h.set_lease_ms(-5); }, "kv.lease_ms"},
      {[](worker::v1::KvHandle& h) { h.mutable_layout()->set_num_layers(0); }, "kv.layout.num_layers"},
      {[](worker::v1::KvHandle& h) { h.mutable_layout()->set_head_dim(-2); }, "kv.layout.head_dim"},
  };
  for (const Case& c : cases) {
    worker::v1::KvHandle proto = good;
    c.mutate(proto);
    auto handle = HandleFromProto(proto);
    EXPECT_EQ(handle.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(handle.status().message(), HasSubstr(c.field));
  }
}

TEST(KvProtoTest, EmptyTransportMeansGrpc) {
  worker::v1::KvHandle proto;
  HandleToProto(Handle(DType::kF32), &proto);
  proto.clear_transport();
  auto handle = HandleFromProto(proto);
  ASSERT_TRUE(handle.ok());
  EXPECT_EQ(handle->transport, "grpc");
}

}  // namespace
}  // namespace tandem
