// Fuzzes the safetensors reader (SafetensorsFile::Open) on the input as a whole file.
//
// The input is written to a memfd (no disk traffic) and opened through /proc/self/fd, so the reader's
// own open/fstat/mmap path runs.
// Invariants:
//   - A malformed file is a Status naming the file, never a crash and never InternalError.
//   - A file that opens has one tensor per header entry but __metadata__, each inside the data
//     section: with [begin, end) its data_offsets as the header states them, end <= data size,
//     num_bytes is elements * dtype size, and the view's bytes are the input's bytes at that place
//     (read in full, so a view outside the mapping faults); after ReleasePages they read the same.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_support.h"
#include "model/safetensors.h"
#include "nlohmann/json.hpp"

namespace tandem::fuzz {
namespace {

// One memfd, rewritten for each input.
const std::string& WriteInput(const uint8_t* data, size_t size) {
  static const int fd = ::memfd_create("safetensors_fuzzer", MFD_CLOEXEC);
  static const std::string path = absl::StrCat("/proc/self/fd/", fd);
  TANDEM_FUZZ_CHECK(fd >= 0, "memfd_create failed");
  TANDEM_FUZZ_CHECK(::ftruncate(fd, 0) == 0, "ftruncate failed");
  size_t written = 0;
  while (written < size) {
    const ssize_t n = ::pwrite(fd, data + written, size - written, static_cast<off_t>(written));
    TANDEM_FUZZ_CHECK(n > 0, "pwrite failed");
    written += static_cast<size_t>(n);
  }
  return path;
}

void CheckTensor(const TensorView& view, const nlohmann::json& entry, const uint8_t* data_section,
                 uint64_t data_size) {
  int64_t elements = 1;
  for (int64_t dim : view.shape) {
    TANDEM_FUZZ_CHECK(dim >= 0 && !__builtin_mul_overflow(elements, dim, &elements),
                      absl::StrCat(view.name, ": bad dimension ", dim));
  }
  TANDEM_FUZZ_CHECK(view.num_bytes == elements * DTypeSize(view.dtype),
                    absl::StrCat(view.name, ": ", view.num_bytes, " bytes for ", elements, " elements"));
  // The reader accepted the entry, so data_offsets is a list of two non-negative integers.
  const uint64_t begin = entry.at("data_offsets").at(0).get<uint64_t>();
  const uint64_t end = entry.at("data_offsets").at(1).get<uint64_t>();
  TANDEM_FUZZ_CHECK(begin <= end && end <= data_size && end - begin == static_cast<uint64_t>(view.num_bytes),
                    absl::StrCat(view.name, ": [", begin, ",", end, ") of ", data_size, " data bytes, ",
                                 view.num_bytes, " bytes in the view"));
  if (view.num_bytes == 0) return;
  TANDEM_FUZZ_CHECK(view.data != nullptr, view.name);
  TANDEM_FUZZ_CHECK(
      std::memcmp(view.data, data_section + begin, view.num_bytes) == 0,
      absl::StrCat(view.name, ": the view's bytes are not the file's at [", begin, ",", end, ")"));
  ReleasePages(view);
  TANDEM_FUZZ_CHECK(std::memcmp(view.data, data_section + begin, view.num_bytes) == 0,
                    absl::StrCat(view.name, ": bytes changed after ReleasePages"));
}

}  // namespace
}  // namespace tandem::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tandem::fuzz;
  const std::string& path = WriteInput(data, size);
  absl::StatusOr<std::unique_ptr<tandem::SafetensorsFile>> file = tandem::SafetensorsFile::Open(path);
  if (!file.ok()) {
    TANDEM_FUZZ_CHECK(!absl::IsInternal(file.status()), file.status().ToString());
    TANDEM_FUZZ_CHECK(absl::StartsWith(file.status().message(), path), file.status().ToString());
    return 0;
  }
  TANDEM_FUZZ_CHECK(size >= 8, absl::StrCat("opened a ", size, "-byte file"));
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | data[i];
  TANDEM_FUZZ_CHECK(header_size <= size - 8,
                    absl::StrCat("header length ", header_size, " in ", size, " bytes"));
  const uint8_t* data_section = data + 8 + header_size;
  const uint64_t data_size = size - 8 - header_size;
  const nlohmann::json header = nlohmann::json::parse(data + 8, data_section);
  const size_t entries = header.size() - header.count("__metadata__");
  TANDEM_FUZZ_CHECK(entries == (*file)->tensors().size(),
                    absl::StrCat(entries, " header entries, ", (*file)->tensors().size(), " tensors"));
  for (const auto& [name, view] : (*file)->tensors()) {
    TANDEM_FUZZ_CHECK(view.name == name && name != "__metadata__" && header.contains(name), name);
    TANDEM_FUZZ_CHECK(view.file == path, view.file);
    CheckTensor(view, header.at(name), data_section, data_size);
  }
  return 0;
}
