#include "server/cluster_secret.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/client_interceptor.h"

namespace tandem {
namespace {

std::string& Secret() {
  static std::string* secret = new std::string;
  return *secret;
}

class SecretInterceptor final : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace(kClusterSecretHeader, Secret());
    }
    methods->Proceed();
  }
};

class SecretInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new SecretInterceptor;
  }
};

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

absl::StatusOr<std::string> ReadClusterSecretFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read '", path, "'"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string secret(absl::StripAsciiWhitespace(buffer.str()));
  if (secret.size() < 16) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": the secret in '", path, "' is ", secret.size(), " characters; at least 16 needed"));
  }
  for (char c : secret) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": the secret in '", path, "' must be printable ASCII without spaces"));
    }
  }
  return secret;
}

absl::Status WriteRandomClusterSecret(const std::string& path) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create '", path, "'"));
  std::random_device device;  // /dev/urandom on Linux
  std::string secret;
  for (int i = 0; i < 4; ++i) absl::StrAppend(&secret, absl::Hex(device(), absl::kZeroPad8));
  const bool ok = write(fd, secret.data(), secret.size()) == static_cast<ssize_t>(secret.size());
  close(fd);
  if (!ok) return absl::InternalError(absl::StrCat("cannot write '", path, "'"));
  return absl::OkStatus();
}

void SetClusterSecret(std::string secret) { Secret() = std::move(secret); }

bool HaveClusterSecret() { return !Secret().empty(); }

grpc::Status CheckClusterSecret(const grpc::CallbackServerContext& context) {
  const std::string& secret = Secret();
  if (secret.empty()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(kClusterSecretHeader);
  if (it == metadata.end() ||
      !ConstantTimeEquals(std::string_view(it->second.data(), it->second.size()), secret)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "this is a tandem worker API: the call carries no valid cluster secret "
                        "(--cluster-secret-file)");
  }
  return grpc::Status::OK;
}

std::shared_ptr<grpc::Channel> CreateClusterChannel(const std::string& address, const grpc::ChannelArguments& args) {
  if (Secret().empty()) return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<SecretInterceptorFactory>());
  return grpc::experimental::CreateCustomChannelWithInterceptors(address, grpc::InsecureChannelCredentials(), args,
                                                                 std::move(interceptors));
}

}  // namespace tandem
