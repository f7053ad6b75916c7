#include "router/health_client.h"

#include <cstdint>
#include <future>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/stub_options.h"
#include "proto/grpc_status.h"

namespace tandem::router {
namespace {

constexpr char kCheckMethod[] = "/grpc.health.v1.Health/Check";
constexpr int kServing = 1;

// Reads a base-128 varint at *pos; false on truncation or overflow.
bool ReadVarint(const std::string& bytes, size_t* pos, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= bytes.size()) return false;
    const uint8_t byte = static_cast<uint8_t>(bytes[(*pos)++]);
    *value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

const char* StatusName(int status) {
  switch (status) {
    case 0: return "UNKNOWN";
    case 1: return "SERVING";
    case 2: return "NOT_SERVING";
    case 3: return "SERVICE_UNKNOWN";
    default: return "unrecognised";
  }
}

// Owns what one asynchronous check needs until its completion callback has run.
struct PendingCheck {
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
};

}  // namespace

bool IsNotServing(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable &&
         absl::EndsWith(status.message(), ": health status NOT_SERVING");
}

std::string EncodeHealthCheckRequest(const std::string& service) {
  if (service.empty()) return "";  // proto3 omits the default value
  std::string out;
  out.push_back(0x0a);  // field 1, length-delimited
  uint64_t length = service.size();
  while (length >= 0x80) {
    out.push_back(static_cast<char>((length & 0x7f) | 0x80));
    length >>= 7;
  }
  out.push_back(static_cast<char>(length));
  out += service;
  return out;
}

absl::StatusOr<int> DecodeHealthCheckResponse(const std::string& bytes) {
  const absl::Status malformed =
      absl::InvalidArgumentError("malformed grpc.health.v1.HealthCheckResponse");
  int status = 0;
  size_t pos = 0;
  while (pos < bytes.size()) {
    uint64_t key;
    uint64_t value;
    if (!ReadVarint(bytes, &pos, &key)) return malformed;
    switch (key & 7) {
      case 0:  // varint
        if (!ReadVarint(bytes, &pos, &value)) return malformed;
        if ((key >> 3) == 1) status = static_cast<int>(value);
        break;
      case 1:  // 64-bit
        if (bytes.size() - pos < 8) return malformed;
        pos += 8;
        break;
      case 2:  // length-delimited
        if (!ReadVarint(bytes, &pos, &value) || value > bytes.size() - pos) return malformed;
        pos += value;
        break;
      case 5:  // 32-bit
        if (bytes.size() - pos < 4) return malformed;
        pos += 4;
        break;
      default:
        return malformed;
    }
  }
  return status;
}

HealthClient::HealthClient(std::shared_ptr<grpc::Channel> channel, std::string address)
    : channel_(std::move(channel)), address_(std::move(address)), stub_(channel_) {}

void HealthClient::Check(const std::string& service, absl::Duration timeout,
                         std::function<void(absl::Status)> done) {
  auto* pending = new PendingCheck;
  pending->context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  const std::string encoded = EncodeHealthCheckRequest(service);
  grpc::Slice slice(encoded);
  pending->request = grpc::ByteBuffer(&slice, 1);
  stub_.UnaryCall(&pending->context, kCheckMethod, grpc::StubOptions(), &pending->request,
                  &pending->response,
                  [this, pending, done = std::move(done)](grpc::Status status) {
                    absl::Status result = FromGrpcStatus(status);
                    if (result.ok()) {
                      std::vector<grpc::Slice> slices;
                      std::string bytes;
                      if (pending->response.Dump(&slices).ok()) {
                        for (const grpc::Slice& s : slices) {
                          bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
                        }
                      }
                      absl::StatusOr<int> serving = DecodeHealthCheckResponse(bytes);
                      if (!serving.ok()) {
                        result = absl::UnavailableError(
                            absl::StrCat(address_, ": ", serving.status().message()));
                      } else if (*serving != kServing) {
                        result = absl::UnavailableError(
                            absl::StrCat(address_, ": health status ", StatusName(*serving)));
                      }
                    }
                    delete pending;
                    done(std::move(result));
                  });
}

absl::Status HealthClient::CheckNow(const std::string& service, absl::Duration timeout) {
  std::promise<absl::Status> promise;
  std::future<absl::Status> future = promise.get_future();
  Check(service, timeout, [&promise](absl::Status status) { promise.set_value(std::move(status)); });
  return future.get();
}

}  // namespace tandem::router
