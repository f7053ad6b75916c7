#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace tandem {
namespace {

using Json = nlohmann::json;

// A header larger than this is corrupt, not a checkpoint (the reference implementation's limit).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;
constexpr size_t kLengthPrefixBytes = 8;

// POSIX errors become Status here and nowhere else in this file.
absl::Status ErrnoError(int error, const std::string& path, std::string_view what) {
  const std::string message =
      absl::StrCat(path, ": ", absl::string_view(what.data(), what.size()), ": ", std::strerror(error));
  switch (error) {
    case ENOENT:
    case ENOTDIR: return absl::NotFoundError(message);
    case EACCES:
    case EPERM: return absl::PermissionDeniedError(message);
    case ENOMEM: return absl::ResourceExhaustedError(message);
    default: return absl::UnavailableError(message);
  }
}

// DTypeName returns std::string_view, which this abseil's StrCat does not take.
std::string SafetensorsName(DType dtype) { return std::string(DTypeName(dtype)); }

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

// Element count of `shape`, or -1 when a dimension is negative or the product overflows.
int64_t CheckedElements(const std::vector<int64_t>& shape) {
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0 || __builtin_mul_overflow(count, dim, &count)) return -1;
  }
  return count;
}

// The safetensors spellings we cannot load, named so the error says "unsupported", not "corrupt".
bool IsKnownSafetensorsDType(const std::string& name) {
  static const std::set<std::string> kKnown = {"BOOL",    "U8",  "I8",      "U16",     "I16",     "U32",
                                               "I32",     "U64", "I64",     "F64",     "F8_E4M3", "F8_E5M2",
                                               "F8_E8M0", "F4",  "F6_E2M3", "F6_E3M2", "C64"};
  return kKnown.count(name) > 0;
}

absl::StatusOr<int64_t> ReadNonNegativeInt(const Json& value, const std::string& path,
                                           const std::string& tensor, const char* field) {
  if (!value.is_number_integer() || (!value.is_number_unsigned() && value.get<int64_t>() < 0)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": tensor ", tensor, ": ", field,
                                                   " must hold non-negative integers, got ", value.dump()));
  }
  if (value.is_number_unsigned() &&
      value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": tensor ", tensor, ": ", field, " value ", value.dump(), " is out of range"));
  }
  return value.get<int64_t>();
}

// Validates one header entry against the data section [data, data + data_size).
absl::StatusOr<TensorView> ParseEntry(const std::string& path, const std::string& name, const Json& entry,
                                      const char* data, uint64_t data_size) {
  auto error = [&](std::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": tensor ", name, ": ", absl::string_view(what.data(), what.size())));
  };
  if (!entry.is_object()) return error(absl::StrCat("expected an object, got ", entry.type_name()));

  TensorView view;
  view.name = name;
  view.file = path;

  auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end() || !dtype_it->is_string()) return error("missing or non-string \"dtype\"");
  const std::string dtype_name = dtype_it->get<std::string>();
  if (dtype_name == "F32") {
    view.dtype = DType::kF32;
  } else if (dtype_name == "F16") {
    view.dtype = DType::kF16;
  } else if (dtype_name == "BF16") {
    view.dtype = DType::kBF16;
  } else if (IsKnownSafetensorsDType(dtype_name)) {
    return absl::UnimplementedError(absl::StrCat(path, ": tensor ", name, ": dtype ", dtype_name,
                                                 " is not supported (supported: F32, F16, BF16)"));
  } else {
    return error(absl::StrCat("unknown dtype '", dtype_name, "'"));
  }

  auto shape_it = entry.find("shape");
  if (shape_it == entry.end() || !shape_it->is_array()) return error("missing or non-list \"shape\"");
  for (const Json& dim : *shape_it) {
    TANDEM_ASSIGN_OR_RETURN(int64_t value, ReadNonNegativeInt(dim, path, name, "shape"));
    view.shape.push_back(value);
  }

  auto offsets_it = entry.find("data_offsets");
  if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
    return error("\"data_offsets\" must be a list [begin, end]");
  }
  TANDEM_ASSIGN_OR_RETURN(int64_t begin, ReadNonNegativeInt((*offsets_it)[0], path, name, "data_offsets"));
  TANDEM_ASSIGN_OR_RETURN(int64_t end, ReadNonNegativeInt((*offsets_it)[1], path, name, "data_offsets"));
  if (begin > end) return error(absl::StrCat("data_offsets [", begin, ",", end, "] run backwards"));
  if (static_cast<uint64_t>(end) > data_size) {
    return error(absl::StrCat("data_offsets [", begin, ",", end, "] run past the end of the data (",
                              data_size, " bytes; file truncated?)"));
  }
  const int64_t elements = CheckedElements(view.shape);
  int64_t expected_bytes = 0;
  if (elements < 0 || __builtin_mul_overflow(elements, int64_t{DTypeSize(view.dtype)}, &expected_bytes)) {
    return error(absl::StrCat("shape ", ShapeString(view.shape), " is too large"));
  }
  if (end - begin != expected_bytes) {
    return error(absl::StrCat("data_offsets [", begin, ",", end, "] hold ", end - begin, " bytes, but shape ",
                              ShapeString(view.shape), " of ", dtype_name, " needs ", expected_bytes));
  }
  view.data = data + begin;
  view.num_bytes = expected_bytes;
  return view;
}

bool FileExists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, path, "open");
  std::string text;
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      return ErrnoError(error, path, "read");
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

// Shard names come from the index file; refuse ones that would leave the checkpoint directory.
bool IsSafeShardName(const std::string& name) {
  if (name.empty() || name[0] == '/') return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    if (slash == std::string::npos) slash = name.size();
    if (name.compare(start, slash - start, "..") == 0 && slash - start == 2) return false;
    start = slash + 1;
  }
  return true;
}

absl::Status WriteAll(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, path, "write");
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

int64_t TensorView::num_elements() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  return count;
}

void ReleasePages(const TensorView& view) {
  if (view.data == nullptr || view.num_bytes <= 0) return;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(view.data) / page * page;
  const uintptr_t end = reinterpret_cast<uintptr_t>(view.data) + static_cast<uintptr_t>(view.num_bytes);
  // Advice only: a failure leaves the pages resident, which costs memory, not correctness.
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, path, "open");
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    return ErrnoError(error, path, "fstat");
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  const uint64_t file_size = static_cast<uint64_t>(info.st_size);
  if (file_size < kLengthPrefixBytes) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", file_size == 0 ? "empty file" : absl::StrCat("file is ", file_size, " bytes"),
        ", too short for a safetensors file (8-byte header length, header, data)"));
  }

  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  void* mapping = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_error = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (mapping == MAP_FAILED) return ErrnoError(map_error, path, "mmap");
  file->mapping_ = mapping;
  file->mapping_size_ = file_size;  // from here on the destructor unmaps, on every error path too

  const unsigned char* bytes = static_cast<const unsigned char*>(mapping);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | bytes[i];
  if (header_size > file_size - kLengthPrefixBytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": header length ", header_size,
                                                   " runs past the end of the file (", file_size,
                                                   " bytes); truncated or not a safetensors file"));
  }
  if (header_size > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": header length ", header_size,
                                                   " exceeds the limit of ", kMaxHeaderBytes, " bytes"));
  }
  const char* header_begin = reinterpret_cast<const char*>(bytes + kLengthPrefixBytes);
  const char* data = header_begin + header_size;
  const uint64_t data_size = file_size - kLengthPrefixBytes - header_size;

  Json header;
  try {
    header = Json::parse(header_begin, data);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": header is not valid JSON: ", e.what()));
  }
  if (!header.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": header must be a JSON object, got ", header.type_name()));
  }
  try {
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") continue;
      TANDEM_ASSIGN_OR_RETURN(TensorView view, ParseEntry(path, it.key(), it.value(), data, data_size));
      file->tensors_.emplace(it.key(), std::move(view));
    }
  } catch (const Json::exception& e) {
    // ParseEntry checks types before reading them; this only keeps exceptions inside the library.
    return absl::InternalError(absl::StrCat(path, ": ", e.what()));
  }
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
}

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& model_dir) {
  std::unique_ptr<Checkpoint> checkpoint(new Checkpoint());
  checkpoint->dir_ = model_dir;
  const std::string index_path = absl::StrCat(model_dir, "/model.safetensors.index.json");
  const std::string single_path = absl::StrCat(model_dir, "/model.safetensors");

  if (!FileExists(index_path)) {
    if (!FileExists(single_path)) {
      return absl::NotFoundError(
          absl::StrCat(model_dir, ": no model.safetensors or model.safetensors.index.json"));
    }
    TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(single_path));
    for (const auto& [name, view] : file->tensors()) checkpoint->index_.emplace(name, &view);
    checkpoint->files_.push_back(std::move(file));
    return checkpoint;
  }

  TANDEM_ASSIGN_OR_RETURN(std::string index_text, ReadSmallFile(index_path));
  // tensor name -> shard file name, as the index lists it
  std::map<std::string, std::string> weight_map;
  try {
    const Json index = Json::parse(index_text);
    if (!index.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": expected a JSON object, got ", index.type_name()));
    }
    auto map_it = index.find("weight_map");
    if (map_it == index.end() || !map_it->is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(index_path, ": missing or non-object \"weight_map\""));
    }
    for (auto it = map_it->begin(); it != map_it->end(); ++it) {
      if (!it.value().is_string() || !IsSafeShardName(it.value().get<std::string>())) {
        return absl::InvalidArgumentError(absl::StrCat(index_path, ": weight_map entry for ", it.key(),
                                                       " must be a file name in ", model_dir, ", got ",
                                                       it.value().dump()));
      }
      weight_map.emplace(it.key(), it.value().get<std::string>());
    }
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": invalid JSON: ", e.what()));
  }
  if (weight_map.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": \"weight_map\" is empty"));
  }

  std::set<std::string> shard_names;
  for (const auto& [tensor, shard] : weight_map) shard_names.insert(shard);
  std::map<std::string, const SafetensorsFile*> shards;  // shard file name -> opened file
  for (const std::string& shard : shard_names) {
    const std::string shard_path = absl::StrCat(model_dir, "/", shard);
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(shard_path);
    if (!file.ok()) {
      if (absl::IsNotFound(file.status())) {
        return absl::NotFoundError(absl::StrCat(shard_path, ": shard listed in ", index_path, " not found"));
      }
      return file.status();
    }
    for (const auto& [name, view] : (*file)->tensors()) {
      auto [it, inserted] = checkpoint->index_.emplace(name, &view);
      if (!inserted) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": tensor appears in both ", it->second->file, " and ", shard_path));
      }
    }
    shards.emplace(shard, file->get());
    checkpoint->files_.push_back(*std::move(file));
  }
  for (const auto& [tensor, shard] : weight_map) {
    if (shards.at(shard)->tensors().count(tensor) == 0) {
      return absl::NotFoundError(absl::StrCat(tensor, ": listed in ", index_path, " as in ", shard, ", but ",
                                              model_dir, "/", shard, " has no such tensor"));
    }
  }
  return checkpoint;
}

absl::StatusOr<TensorView> Checkpoint::Find(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    return absl::NotFoundError(absl::StrCat(name, ": no such tensor in checkpoint ", dir_));
  }
  return *it->second;
}

absl::StatusOr<TensorView> Checkpoint::FindWithShape(const std::string& name,
                                                     const std::vector<int64_t>& shape) const {
  TANDEM_ASSIGN_OR_RETURN(TensorView view, Find(name));
  if (view.shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": shape ", ShapeString(view.shape),
                                                   ", config wants ", ShapeString(shape), " (in ", view.file,
                                                   ")"));
  }
  return view;
}

bool Checkpoint::Has(const std::string& name) const { return index_.count(name) > 0; }

std::vector<std::string> Checkpoint::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto& [name, view] : index_) names.push_back(name);
  return names;
}

absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  std::set<std::string> seen;
  int64_t offset = 0;
  for (const TensorToWrite& tensor : tensors) {
    if (tensor.name.empty() || tensor.name == "__metadata__" || !seen.insert(tensor.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor name '", tensor.name, "' is empty, reserved or repeated"));
    }
    const int64_t elements = CheckedElements(tensor.shape);
    int64_t expected = 0;
    if (elements < 0 || __builtin_mul_overflow(elements, int64_t{DTypeSize(tensor.dtype)}, &expected)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor ", tensor.name, ": invalid shape ", ShapeString(tensor.shape)));
    }
    if (static_cast<int64_t>(tensor.bytes.size()) != expected) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": tensor ", tensor.name, ": ", tensor.bytes.size(), " bytes given, but shape ",
          ShapeString(tensor.shape), " of ", SafetensorsName(tensor.dtype), " needs ", expected));
    }
    header[tensor.name] = {{"dtype", SafetensorsName(tensor.dtype)},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + expected}}};
    offset += expected;
  }
  std::string header_text = header.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  // Padding keeps the data section 8-byte aligned, as the reference writer does.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');

  char prefix[kLengthPrefixBytes];
  uint64_t length = header_text.size();
  for (size_t i = 0; i < kLengthPrefixBytes; ++i) prefix[i] = static_cast<char>((length >> (8 * i)) & 0xff);

  const std::string tmp_path = absl::StrCat(path, ".tmp");
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, tmp_path, "open");
  absl::Status status = WriteAll(fd, prefix, sizeof(prefix), tmp_path);
  if (status.ok()) status = WriteAll(fd, header_text.data(), header_text.size(), tmp_path);
  for (const TensorToWrite& tensor : tensors) {
    if (!status.ok()) break;
    status = WriteAll(fd, tensor.bytes.data(), tensor.bytes.size(), tmp_path);
  }
  if (::close(fd) != 0 && status.ok()) status = ErrnoError(errno, tmp_path, "close");
  if (status.ok() && ::rename(tmp_path.c_str(), path.c_str()) != 0) {
    status = ErrnoError(errno, path, "rename");
  }
  if (!status.ok()) ::unlink(tmp_path.c_str());
  return status;
}

}  // namespace tandem
