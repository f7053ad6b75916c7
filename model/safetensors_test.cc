#include "model/safetensors.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tandem {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

std::string MakeTempDir() {
  std::string dir = ::testing::TempDir() + "/safetensors_test_XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
  return dir;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A file with an explicit length prefix, header text and data, for malformed inputs.
std::string RawSafetensors(uint64_t header_length, const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header_length >> (8 * i)) & 0xff);
  return out + header + data;
}
std::string RawSafetensors(const std::string& header, const std::string& data) {
  return RawSafetensors(header.size(), header, data);
}

template <typename T>
std::string Bytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

TensorToWrite F32Tensor(const std::string& name, std::vector<int64_t> shape, float start = 0.0f) {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  std::vector<float> values(count);
  for (int64_t i = 0; i < count; ++i) values[i] = start + static_cast<float>(i);
  return {name, DType::kF32, std::move(shape), Bytes(values)};
}

// Opens `path`, expects failure, checks the message names the file, and returns the status.
absl::Status OpenFailure(const std::string& path) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  EXPECT_FALSE(file.ok());
  if (file.ok()) return absl::OkStatus();
  EXPECT_THAT(std::string(file.status().message()), HasSubstr(path));
  return file.status();
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(SafetensorsTest, WriteAndReadBackEachDType) {
  const std::string path = MakeTempDir() + "/model.safetensors";
  std::vector<TensorToWrite> tensors;
  tensors.push_back(F32Tensor("f32", {2, 3}, 1.5f));
  tensors.push_back({"f16", DType::kF16, {3}, Bytes(std::vector<uint16_t>{0x3c00, 0xc100, 0x7bff})});
  tensors.push_back({"bf16", DType::kBF16, {2, 2}, Bytes(std::vector<uint16_t>{0x3f80, 0xc020, 0, 0x8000})});
  tensors.push_back(F32Tensor("scalar", {}, 42.0f));
  tensors.push_back({"empty", DType::kBF16, {0, 5}, ""});
  ASSERT_TRUE(WriteSafetensors(path, tensors, {{"format", "pt"}}).ok());

  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->path(), path);
  ASSERT_EQ((*file)->tensors().size(), tensors.size());  // __metadata__ is not a tensor
  for (const TensorToWrite& written : tensors) {
    SCOPED_TRACE(written.name);
    auto it = (*file)->tensors().find(written.name);
    ASSERT_NE(it, (*file)->tensors().end());
    const TensorView& view = it->second;
    EXPECT_EQ(view.name, written.name);
    EXPECT_EQ(view.dtype, written.dtype);
    EXPECT_EQ(view.shape, written.shape);
    EXPECT_EQ(view.file, path);
    EXPECT_EQ(view.num_bytes, static_cast<int64_t>(written.bytes.size()));
    EXPECT_EQ(view.num_elements() * DTypeSize(view.dtype), view.num_bytes);
    EXPECT_EQ(std::string(static_cast<const char*>(view.data), view.num_bytes), written.bytes);
  }
  EXPECT_EQ((*file)->tensors().at("scalar").num_elements(), 1);
  EXPECT_EQ((*file)->tensors().at("empty").num_elements(), 0);
}

TEST(SafetensorsTest, WrittenHeaderIsPaddedJsonInGivenOrder) {
  const std::string path = MakeTempDir() + "/model.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, {F32Tensor("b", {3}), F32Tensor("a", {1})}).ok());
  const std::string bytes = ReadAll(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(header_length % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + header_length + 16);
  const Json header = Json::parse(bytes.substr(8, header_length));
  EXPECT_EQ(header["b"]["data_offsets"], Json::array({0, 12}));
  EXPECT_EQ(header["a"]["data_offsets"], Json::array({12, 16}));
  EXPECT_EQ(header["a"]["dtype"], "F32");
  EXPECT_FALSE(header.contains("__metadata__"));  // none given
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0) << "temporary file left behind";
}

TEST(SafetensorsTest, WriteRefusesWrongByteCount) {
  const std::string path = MakeTempDir() + "/model.safetensors";
  TensorToWrite tensor = F32Tensor("w", {2, 2});
  tensor.bytes.pop_back();
  const absl::Status status = WriteSafetensors(path, {tensor});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr("w"));
  EXPECT_THAT(Message(status), HasSubstr(path));
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "nothing written";
}

TEST(SafetensorsTest, WriteRefusesRepeatedNames) {
  const std::string path = MakeTempDir() + "/model.safetensors";
  const absl::Status status = WriteSafetensors(path, {F32Tensor("w", {1}), F32Tensor("w", {1})});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr("'w'"));
}

TEST(SafetensorsTest, SingleFileCheckpoint) {
  const std::string dir = MakeTempDir();
  ASSERT_TRUE(WriteSafetensors(dir + "/model.safetensors", {F32Tensor("model.embed_tokens.weight", {4, 2}),
                                                            F32Tensor("model.norm.weight", {2})})
                  .ok());
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_TRUE((*checkpoint)->Has("model.norm.weight"));
  EXPECT_FALSE((*checkpoint)->Has("lm_head.weight"));
  EXPECT_THAT((*checkpoint)->TensorNames(), ElementsAre("model.embed_tokens.weight", "model.norm.weight"));
  absl::StatusOr<TensorView> norm = (*checkpoint)->FindWithShape("model.norm.weight", {2});
  ASSERT_TRUE(norm.ok()) << norm.status();
  EXPECT_EQ(static_cast<const float*>(norm->data)[1], 1.0f);
}

// Two shards and an index in the layout transformers writes.
std::string WriteShardedCheckpoint() {
  const std::string dir = MakeTempDir();
  EXPECT_TRUE(WriteSafetensors(dir + "/model-00001-of-00002.safetensors",
                               {F32Tensor("model.embed_tokens.weight", {4, 2}, 10.0f),
                                F32Tensor("model.layers.0.mlp.up_proj.weight", {3, 2})})
                  .ok());
  EXPECT_TRUE(
      WriteSafetensors(dir + "/model-00002-of-00002.safetensors",
                       {F32Tensor("model.norm.weight", {2}, 5.0f), F32Tensor("lm_head.weight", {4, 2})})
          .ok());
  const Json index = {{"metadata", {{"total_size", 112}}},
                      {"weight_map",
                       {{"model.embed_tokens.weight", "model-00001-of-00002.safetensors"},
                        {"model.layers.0.mlp.up_proj.weight", "model-00001-of-00002.safetensors"},
                        {"model.norm.weight", "model-00002-of-00002.safetensors"},
                        {"lm_head.weight", "model-00002-of-00002.safetensors"}}}};
  std::ofstream(dir + "/model.safetensors.index.json") << index.dump(2);
  return dir;
}

TEST(SafetensorsTest, ShardedCheckpointWithIndex) {
  const std::string dir = WriteShardedCheckpoint();
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_THAT((*checkpoint)->TensorNames(),
              ElementsAre("lm_head.weight", "model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight",
                          "model.norm.weight"));
  absl::StatusOr<TensorView> embed = (*checkpoint)->Find("model.embed_tokens.weight");
  ASSERT_TRUE(embed.ok());
  EXPECT_THAT(embed->file, HasSubstr("model-00001-of-00002.safetensors"));
  EXPECT_EQ(static_cast<const float*>(embed->data)[0], 10.0f);
  absl::StatusOr<TensorView> norm = (*checkpoint)->FindWithShape("model.norm.weight", {2});
  ASSERT_TRUE(norm.ok());
  EXPECT_THAT(norm->file, HasSubstr("model-00002-of-00002.safetensors"));
  EXPECT_EQ(static_cast<const float*>(norm->data)[1], 6.0f);
}

TEST(SafetensorsTest, MissingTensorIsNotFoundNamingIt) {
  const std::string dir = WriteShardedCheckpoint();
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  absl::StatusOr<TensorView> missing = (*checkpoint)->Find("model.layers.7.self_attn.q_proj.weight");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(missing.status()), HasSubstr("model.layers.7.self_attn.q_proj.weight"));
  EXPECT_THAT(Message(missing.status()), HasSubstr(dir));
  EXPECT_EQ((*checkpoint)->FindWithShape("nope", {1}).status().code(), absl::StatusCode::kNotFound);
}

TEST(SafetensorsTest, WrongShapeMessage) {
  const std::string dir = MakeTempDir();
  ASSERT_TRUE(
      WriteSafetensors(
          dir + "/model.safetensors",
          {{"model.layers.3.mlp.up_proj.weight", DType::kBF16, {344, 128}, std::string(344 * 128 * 2, '\0')}})
          .ok());
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  absl::StatusOr<TensorView> view =
      (*checkpoint)->FindWithShape("model.layers.3.mlp.up_proj.weight", {352, 128});
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(view.status()),
              HasSubstr("model.layers.3.mlp.up_proj.weight: shape [344,128], config wants [352,128]"));
  EXPECT_THAT(Message(view.status()), HasSubstr(dir + "/model.safetensors"));
}

TEST(SafetensorsTest, TruncatedDataNamesFileAndTensor) {
  const std::string path = MakeTempDir() + "/model.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, {F32Tensor("first", {4}), F32Tensor("last", {16})}).ok());
  const std::string bytes = ReadAll(path);
  WriteBytes(path, bytes.substr(0, bytes.size() - 5));
  const absl::Status status = OpenFailure(path);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr("last"));
  EXPECT_THAT(Message(status), HasSubstr("past the end"));
}

TEST(SafetensorsTest, FileCutInsideTheHeader) {
  const std::string path = MakeTempDir() + "/model.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, {F32Tensor("w", {4})}).ok());
  WriteBytes(path, ReadAll(path).substr(0, 20));
  EXPECT_THAT(Message(OpenFailure(path)), HasSubstr("header length"));
}

TEST(SafetensorsTest, HeaderLengthPastEnd) {
  const std::string path = MakeTempDir() + "/model.safetensors";
  WriteBytes(path, RawSafetensors(1000, "{}", ""));
  const absl::Status status = OpenFailure(path);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr("header length 1000"));
  // A length near 2^64 must not wrap around any arithmetic.
  WriteBytes(path, RawSafetensors(~uint64_t{0} - 3, "{}", ""));
  EXPECT_EQ(OpenFailure(path).code(), absl::StatusCode::kInvalidArgument);
}

TEST(SafetensorsTest, HeaderLongerThanLimit) {
  const std::string path = MakeTempDir() + "/model.safetensors";
  // 101 MiB of header (spaces after "{}"): within the file, beyond the limit.
  const std::string header = "{}" + std::string((101u << 20) - 2, ' ');
  WriteBytes(path, RawSafetensors(header, ""));
  EXPECT_THAT(Message(OpenFailure(path)), HasSubstr("exceeds the limit"));
}

TEST(SafetensorsTest, HeaderInvalidJson) {
  const std::string path = MakeTempDir() + "/model.safetensors";
  WriteBytes(path, RawSafetensors(R"({"w": {"dtype": "F32", "shape": [1], )", "abcd"));
  const absl::Status status = OpenFailure(path);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr("not valid JSON"));
}

TEST(SafetensorsTest, HeaderNotAnObject) {
  const std::string path = MakeTempDir() + "/model.safetensors";
  WriteBytes(path, RawSafetensors("[1, 2, 3]", ""));
  EXPECT_THAT(Message(OpenFailure(path)), HasSubstr("must be a JSON object"));
  WriteBytes(path, RawSafetensors(R"({"w": [1, 2]})", ""));
  EXPECT_THAT(Message(OpenFailure(path)), HasSubstr("w"));
  WriteBytes(path, RawSafetensors(R"({"w": {"dtype": "F32", "shape": [1]}})", "abcd"));
  EXPECT_THAT(Message(OpenFailure(path)), HasSubstr("data_offsets"));
  WriteBytes(path,
             RawSafetensors(R"({"w": {"dtype": "F32", "shape": "1", "data_offsets": [0, 4]}})", "abcd"));
  EXPECT_THAT(Message(OpenFailure(path)), HasSubstr("shape"));
}

TEST(SafetensorsTest, UnsupportedDTypeNamesTensorFileAndDType) {
  const std::string path = MakeTempDir() + "/model.safetensors";
  for (const char* dtype : {"I64", "F8_E4M3", "BOOL"}) {
    WriteBytes(path, RawSafetensors(absl::StrCat(R"({"model.embed_tokens.weight": {"dtype": ")", dtype,
                                                 R"(", "shape": [1], "data_offsets": [0, 8]}})"),
                                    std::string(8, '\0')));
    const absl::Status status = OpenFailure(path);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented) << dtype;
    EXPECT_THAT(Message(status), HasSubstr("model.embed_tokens.weight"));
    EXPECT_THAT(Message(status), HasSubstr(dtype));
  }
  WriteBytes(path, RawSafetensors(R"({"w": {"dtype": "Q4_K", "shape": [1], "data_offsets": [0, 4]}})",
                                  std::string(4, '\0')));
  const absl::Status status = OpenFailure(path);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr("Q4_K"));
}

TEST(SafetensorsTest, OffsetsDisagreeWithShape) {
  const std::string path = MakeTempDir() + "/model.safetensors";
  const std::string data(64, '\0');
  WriteBytes(path,
             RawSafetensors(R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})", data));
  absl::Status status = OpenFailure(path);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr("w"));
  EXPECT_THAT(Message(status), HasSubstr("needs 24"));
  // Backwards offsets.
  WriteBytes(path, RawSafetensors(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", data));
  EXPECT_THAT(Message(OpenFailure(path)), HasSubstr("backwards"));
  // Negative dimension.
  WriteBytes(path,
             RawSafetensors(R"({"w": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}})", data));
  EXPECT_THAT(Message(OpenFailure(path)), HasSubstr("shape"));
  // Negative offset.
  WriteBytes(path, RawSafetensors(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", data));
  EXPECT_THAT(Message(OpenFailure(path)), HasSubstr("data_offsets"));
  // A shape whose byte count overflows int64.
  WriteBytes(
      path,
      RawSafetensors(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 16]}})",
                     data));
  EXPECT_THAT(Message(OpenFailure(path)), HasSubstr("too large"));
}

TEST(SafetensorsTest, EmptyAndShortFiles) {
  const std::string dir = MakeTempDir();
  WriteBytes(dir + "/empty.safetensors", "");
  const absl::Status empty = OpenFailure(dir + "/empty.safetensors");
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(empty), HasSubstr("empty file"));
  WriteBytes(dir + "/short.safetensors", "abcde");
  EXPECT_THAT(Message(OpenFailure(dir + "/short.safetensors")), HasSubstr("5 bytes"));
}

TEST(SafetensorsTest, MissingFileIsNotFound) {
  const std::string path = MakeTempDir() + "/absent.safetensors";
  EXPECT_EQ(OpenFailure(path).code(), absl::StatusCode::kNotFound);
}

TEST(SafetensorsTest, EmptyDirectoryHasNoCheckpoint) {
  const std::string dir = MakeTempDir();
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir);
  ASSERT_FALSE(checkpoint.ok());
  EXPECT_EQ(checkpoint.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Message(checkpoint.status()), dir + ": no model.safetensors or model.safetensors.index.json");
}

TEST(SafetensorsTest, EmptyModelFileInCheckpoint) {
  const std::string dir = MakeTempDir();
  WriteBytes(dir + "/model.safetensors", "");
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir);
  ASSERT_FALSE(checkpoint.ok());
  EXPECT_THAT(Message(checkpoint.status()), HasSubstr(dir + "/model.safetensors"));
}

TEST(SafetensorsTest, MissingShardFileIsNotFoundNamingIt) {
  const std::string dir = WriteShardedCheckpoint();
  ASSERT_EQ(unlink((dir + "/model-00002-of-00002.safetensors").c_str()), 0);
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir);
  ASSERT_FALSE(checkpoint.ok());
  EXPECT_EQ(checkpoint.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(checkpoint.status()), HasSubstr(dir + "/model-00002-of-00002.safetensors"));
  EXPECT_THAT(Message(checkpoint.status()), HasSubstr("model.safetensors.index.json"));
}

TEST(SafetensorsTest, IndexedTensorAbsentFromItsShard) {
  const std::string dir = WriteShardedCheckpoint();
  Json index = Json::parse(ReadAll(dir + "/model.safetensors.index.json"));
  index["weight_map"]["model.layers.1.mlp.up_proj.weight"] = "model-00002-of-00002.safetensors";
  std::ofstream(dir + "/model.safetensors.index.json", std::ios::trunc) << index.dump();
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir);
  ASSERT_FALSE(checkpoint.ok());
  EXPECT_THAT(Message(checkpoint.status()), HasSubstr("model.layers.1.mlp.up_proj.weight"));
  EXPECT_THAT(Message(checkpoint.status()), HasSubstr("model-00002-of-00002.safetensors"));
}

TEST(SafetensorsTest, SameTensorInTwoShards) {
  const std::string dir = WriteShardedCheckpoint();
  ASSERT_TRUE(WriteSafetensors(dir + "/model-00002-of-00002.safetensors",
                               {F32Tensor("model.norm.weight", {2}), F32Tensor("lm_head.weight", {4, 2}),
                                F32Tensor("model.embed_tokens.weight", {4, 2})})
                  .ok());
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir);
  ASSERT_FALSE(checkpoint.ok());
  EXPECT_EQ(checkpoint.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(checkpoint.status()), HasSubstr("model.embed_tokens.weight"));
  EXPECT_THAT(Message(checkpoint.status()), HasSubstr("model-00001-of-00002.safetensors"));
  EXPECT_THAT(Message(checkpoint.status()), HasSubstr("model-00002-of-00002.safetensors"));
}

TEST(SafetensorsTest, BadIndexFiles) {
  const std::string dir = WriteShardedCheckpoint();
  const std::string index_path = dir + "/model.safetensors.index.json";
  for (const char* text : {"{\"weight_map\": ", "[1]", "{\"metadata\": {}}", "{\"weight_map\": {\"w\": 3}}",
                           "{\"weight_map\": {\"w\": \"../escape.safetensors\"}}", "{\"weight_map\": {}}"}) {
    std::ofstream(index_path, std::ios::trunc) << text;
    absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir);
    ASSERT_FALSE(checkpoint.ok()) << text;
    EXPECT_EQ(checkpoint.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(Message(checkpoint.status()), HasSubstr(index_path)) << text;
  }
}

}  // namespace
}  // namespace tandem
