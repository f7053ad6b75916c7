// Reading and writing Hugging Face safetensors checkpoints.
//
// Format: 8-byte little-endian header length N, N bytes of JSON header
// {"name": {"dtype": "F32|F16|BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data; offsets are relative to the end of the header.
//
// Files are memory-mapped read-only; TensorView::data points into the mapping and lives as long as the
// SafetensorsFile (or Checkpoint) that produced it. Every malformed input — truncated file, header
// length past the end, bad JSON, unsupported dtype, offsets outside the data or disagreeing with the
// shape — is an error naming the file (and the tensor), never a crash.
//
// Thread safety: reading (Find, tensors) is safe from many threads once opened.
#ifndef TANDEM_MODEL_SAFETENSORS_H_
#define TANDEM_MODEL_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/dtype.h"

namespace tandem {

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // into the file mapping
  int64_t num_bytes = 0;
  std::string file;  // the file it came from, for messages

  int64_t num_elements() const;
};

class SafetensorsFile {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  std::map<std::string, TensorView> tensors_;
};

// A checkpoint directory: model.safetensors, or shards listed in model.safetensors.index.json
// ("weight_map": {tensor name: shard file}).
class Checkpoint {
 public:
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& model_dir);

  // NotFound naming the tensor and the directory when absent.
  absl::StatusOr<TensorView> Find(const std::string& name) const;
  // Find, then check dtype-agnostic shape; InvalidArgument "NAME: shape [a,b], config wants [c,d]".
  absl::StatusOr<TensorView> FindWithShape(const std::string& name,
                                           const std::vector<int64_t>& shape) const;
  bool Has(const std::string& name) const;
  std::vector<std::string> TensorNames() const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> index_;
};

// Drops the pages under `view` from this process's resident memory; the file still backs them, so a
// later read faults them in again. A load calls it after copying a tensor out of the mapping, so that
// the process never holds the mapped file and the copy at once.
void ReleasePages(const TensorView& view);

// Writes tensors to one safetensors file (used by `tandem mkmodel` and tests).
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::string bytes;  // raw little-endian data, size = elements * DTypeSize(dtype)
};
absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace tandem

#endif  // TANDEM_MODEL_SAFETENSORS_H_
