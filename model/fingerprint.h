// A short identifier of a checkpoint directory: two workers with the same fingerprint run the same model
// and can exchange KV caches. Hashes config.json's bytes and the names and sizes of the weight files
// (FNV-1a, 64 bits, hex); reading every weight byte would cost seconds per start for large models.
#ifndef TANDEM_MODEL_FINGERPRINT_H_
#define TANDEM_MODEL_FINGERPRINT_H_

#include <string>

#include "absl/status/statusor.h"

namespace tandem {

absl::StatusOr<std::string> ModelFingerprint(const std::string& model_dir);

}  // namespace tandem

#endif  // TANDEM_MODEL_FINGERPRINT_H_
