// Fuzzes the public gRPC API's request validation: the input is a serialized tandem.v1.GenerateRequest,
// the bytes a client puts on the wire for Tandem/Generate; what parses goes through
// PrepareGenerateRequest under the checks of request_checks.h.
#include <cstddef>
#include <cstdint>

#include "fuzz/request_checks.h"
#include "proto/tandem.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tandem::v1::GenerateRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  tandem::fuzz::CheckPrepared(request);
  return 0;
}
