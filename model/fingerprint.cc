#include "model/fingerprint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tandem {
namespace {

void Mix(uint64_t& hash, const std::string& bytes) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
}

}  // namespace

absl::StatusOr<std::string> ModelFingerprint(const std::string& model_dir) {
  std::ifstream config(model_dir + "/config.json", std::ios::binary);
  if (!config) return absl::NotFoundError(absl::StrCat(model_dir, "/config.json: cannot open"));
  std::ostringstream text;
  text << config.rdbuf();
  uint64_t hash = 0xcbf29ce484222325ULL;
  Mix(hash, text.str());
  std::error_code error;
  std::vector<std::pair<std::string, uint64_t>> files;
  for (const auto& entry : std::filesystem::directory_iterator(model_dir, error)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 12 && name.substr(name.size() - 12) == ".safetensors") {
      files.emplace_back(name, entry.file_size(error));
    }
  }
  if (error) return absl::NotFoundError(absl::StrCat(model_dir, ": ", error.message()));
  std::sort(files.begin(), files.end());
  for (const auto& [name, size] : files) Mix(hash, absl::StrCat(name, ":", size, ";"));
  return absl::StrFormat("%016x", hash);
}

}  // namespace tandem
