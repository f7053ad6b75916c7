// Fuzzes the public gRPC API's request handling: the input is the bytes a client puts on the wire for
// Tandem/Generate. They are parsed as the service parses them (ParseRequestNamingTheField: what protobuf
// refuses must come back as a short InvalidArgument naming a field or the request); what parses goes
// through PrepareGenerateRequest under the checks of request_checks.h.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/strings/match.h"
#include "fuzz/fuzz_support.h"
#include "fuzz/request_checks.h"
#include "google/protobuf/stubs/logging.h"
#include "proto/tandem.pb.h"
#include "router/request_validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // protobuf logs every string that is not UTF-8; the status says it already.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  tandem::v1::GenerateRequest request;
  const absl::Status parsed = tandem::router::ParseRequestNamingTheField(
      std::string_view(reinterpret_cast<const char*>(data), size), &request);
  if (!parsed.ok()) {
    tandem::fuzz::CheckRequestError(parsed);
    TANDEM_FUZZ_CHECK(absl::IsInvalidArgument(parsed), parsed.ToString());
    TANDEM_FUZZ_CHECK(absl::StrContains(parsed.message(), ": not valid UTF-8") ||
                          absl::StrContains(parsed.message(), ": not a valid tandem.v1."),
                      parsed.ToString());
    return 0;
  }
  tandem::fuzz::CheckPrepared(request);
  return 0;
}
