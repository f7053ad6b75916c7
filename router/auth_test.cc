// The router's public-API security (issue 11): API keys on gRPC and on the OpenAI HTTP routes (401 in
// OpenAI's error shape, health and metrics open, refusals counted), and TLS (and mutual TLS) on the gRPC
// and HTTP ports with certificates openssl makes at test time (skipped where openssl or curl is absent).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/metrics_http.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "model/config.h"
#include "model/random_model.h"
#include "nlohmann/json.hpp"
#include "proto/tandem.grpc.pb.h"
#include "router/router_server.h"
#include "router/testing/fake_workers.h"
#include "router/testing/http_client.h"
#include "tokenizer/make_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace tandem::router {
namespace {

using ::tandem::router::testing::ConnectLoopback;
using ::tandem::router::testing::FakeDecodeWorker;
using ::tandem::router::testing::FakePrefillWorker;
using ::tandem::router::testing::HttpResult;
using ::tandem::router::testing::ParseHttpResponse;
using ::tandem::router::testing::ReadAll;
using ::tandem::router::testing::SendAll;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKey[] = "sk-tandem-test-0123456789abcdef";
constexpr char kOtherKey[] = "sk-tandem-other-0123456789abcdef";

std::string Dir() {
  static const std::string dir = [] {
    const std::string path = absl::StrCat(::testing::TempDir(), "/router_auth_test_", getpid());
    testing::WriteTinyRouterModel(path + "/model");
    std::ofstream(path + "/keys") << "# keys of the test\n" << kKey << "\n" << kOtherKey << "\n";
    return path;
  }();
  return dir;
}

HttpResult Http(int port, const std::string& method, const std::string& path, const std::string& authorization,
                const std::string& body = "") {
  const int fd = ConnectLoopback(port);
  std::string request = absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n",
                                     "Connection: close\r\nContent-Length: ", body.size(), "\r\n");
  if (!authorization.empty()) absl::StrAppend(&request, "Authorization: ", authorization, "\r\n");
  absl::StrAppend(&request, "\r\n", body);
  SendAll(fd, request);
  HttpResult result = ParseHttpResponse(ReadAll(fd));
  close(fd);
  return result;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

class RouterAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prefill_ = FakePrefillWorker::Start();
    decode_ = FakeDecodeWorker::Start();
    options_.model_dir = Dir() + "/model";
    options_.prefill_addresses = {prefill_->address()};
    options_.decode_addresses = {decode_->address()};
    options_.api_keys_path = Dir() + "/keys";
    options_.http_port = 0;
  }
  void TearDown() override {
    if (router_) router_->Shutdown(absl::Seconds(1));
  }
  void Start() {
    absl::StatusOr<std::unique_ptr<RouterServer>> router = RouterServer::Start(options_);
    ASSERT_TRUE(router.ok()) << router.status();
    router_ = *std::move(router);
  }
  // Starts the router with TLS on both public ports from `dir`'s cert.pem and key.pem (and, with
  // `client_ca`, client certificates required from ca1.pem), no API keys; returns what it was given.
  ServerTls StartWithTls(const std::string& dir, bool client_ca) {
    ServerTls tls;
    tls.cert_chain_pem = ReadFile(dir + "/cert.pem");
    tls.private_key_pem = ReadFile(dir + "/key.pem");
    if (client_ca) tls.client_ca_pem = ReadFile(dir + "/ca1.pem");
    options_.tls = tls;
    options_.api_keys_path.clear();
    Start();
    return tls;
  }
  int HttpPort() const { return std::stoi(router_->http_address().substr(router_->http_address().rfind(':') + 1)); }

  grpc::Status Generate(const std::shared_ptr<grpc::Channel>& channel, const std::string& authorization) {
    auto stub = v1::Tandem::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    v1::GenerateRequest request;
    request.set_prompt("Hello");
    request.set_max_tokens(3);
    auto reader = stub->Generate(&context, request);
    v1::GenerateResponse response;
    while (reader->Read(&response)) {
    }
    return reader->Finish();
  }

  RouterOptions options_;
  std::unique_ptr<FakePrefillWorker> prefill_;
  std::unique_ptr<FakeDecodeWorker> decode_;
  std::unique_ptr<RouterServer> router_;
};

TEST_F(RouterAuthTest, GrpcNeedsTheKeyHealthDoesNot) {
  Start();
  auto channel = grpc::CreateChannel(router_->address(), grpc::InsecureChannelCredentials());
  grpc::Status none = Generate(channel, "");
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(none.error_message(), HasSubstr("Authorization: Bearer"));
  EXPECT_EQ(Generate(channel, "Bearer sk-wrong-0123456789abcdef").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status ok = Generate(channel, absl::StrCat("Bearer ", kKey));
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  {
    grpc::ClientContext context;
    v1::TokenizeResponse response;
    v1::TokenizeRequest request;
    request.set_text("hi");
    EXPECT_EQ(v1::Tandem::NewStub(channel)->Tokenize(&context, request, &response).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext context;
    v1::ListModelsResponse response;
    EXPECT_EQ(v1::Tandem::NewStub(channel)->ListModels(&context, {}, &response).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  // The two refused Generate calls are rejections with their reason.
  absl::StatusOr<std::map<std::string, double>> samples = ParseMetricsText(router_->metrics().Render());
  ASSERT_TRUE(samples.ok());
  EXPECT_EQ(samples->at("tandem_rejections_total{reason=\"unauthenticated\"}"), 2);
  EXPECT_EQ(samples->at("tandem_requests_total{outcome=\"ok\"}"), 1);
}

TEST_F(RouterAuthTest, HttpAnswers401InOpenAiShapeAndKeepsHealthOpen) {
  Start();
  const std::string body = R"({"prompt": "Hello", "max_tokens": 3})";
  HttpResult none = Http(HttpPort(), "POST", "/v1/completions", "", body);
  EXPECT_EQ(none.status, 401) << none.body;
  const nlohmann::json error = nlohmann::json::parse(none.body, nullptr, false);
  ASSERT_TRUE(error.contains("error")) << none.body;
  EXPECT_EQ(error["error"]["code"], "invalid_api_key");
  EXPECT_EQ(error["error"]["type"], "invalid_request_error");
  EXPECT_EQ(Http(HttpPort(), "POST", "/v1/chat/completions", "Bearer nope-nope-nope-nope", body).status, 401);
  EXPECT_EQ(Http(HttpPort(), "GET", "/v1/models", "").status, 401);
  HttpResult ok = Http(HttpPort(), "POST", "/v1/completions", absl::StrCat("Bearer ", kKey), body);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Http(HttpPort(), "GET", "/v1/models", absl::StrCat("Bearer ", kKey)).status, 200);
  EXPECT_EQ(Http(HttpPort(), "GET", "/health", "").status, 200);
}

TEST_F(RouterAuthTest, BadKeyFileIsRefusedAtStart) {
  std::ofstream(Dir() + "/short-keys") << "short\n";
  options_.api_keys_path = Dir() + "/short-keys";
  absl::StatusOr<std::unique_ptr<RouterServer>> router = RouterServer::Start(options_);
  ASSERT_FALSE(router.ok());
  EXPECT_THAT(router.status().message(), HasSubstr("--api-keys-file"));
}

// S6: one client (one API key) may not hold more than --max-in-flight-per-client calls; another key is
// not affected, and the slot comes back when the call ends.
TEST_F(RouterAuthTest, PerClientBoundIsPerKey) {
  testing::FakeDecodeOptions slow;
  slow.token_delay = absl::Milliseconds(150);
  decode_->set_options(slow);
  options_.max_in_flight_per_client = 1;
  Start();
  auto channel = grpc::CreateChannel(router_->address(), grpc::InsecureChannelCredentials());
  grpc::Status first;
  std::thread holder([&] { first = Generate(channel, absl::StrCat("Bearer ", kKey)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the first call is streaming
  const grpc::Status second = Generate(channel, absl::StrCat("Bearer ", kKey));
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << second.error_message();
  EXPECT_THAT(second.error_message(), HasSubstr("api-key-1"));
  EXPECT_THAT(second.error_message(), Not(HasSubstr("0123456789")));
  const grpc::Status other = Generate(channel, absl::StrCat("Bearer ", kOtherKey));
  EXPECT_TRUE(other.ok()) << other.error_message();
  holder.join();
  EXPECT_TRUE(first.ok()) << first.error_message();
  const grpc::Status again = Generate(channel, absl::StrCat("Bearer ", kKey));
  EXPECT_TRUE(again.ok()) << again.error_message();
}

// In `dir`: a server certificate for 127.0.0.1 (cert.pem, key.pem), and two CAs (ca1.pem, ca2.pem) each
// signing one client certificate (caN-client.pem, caN-client.key). False when openssl failed.
bool MakeCertificates(const std::string& dir) {
  std::string script = absl::StrCat(
      "cd ", dir, " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -addext "
      "subjectAltName=IP:127.0.0.1,DNS:localhost -keyout key.pem -out cert.pem");
  for (const char* ca : {"ca1", "ca2"}) {
    absl::StrAppend(&script, " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=", ca, " -keyout ", ca,
                    ".key -out ", ca, ".pem && openssl req -newkey rsa:2048 -nodes -subj /CN=client-of-", ca,
                    " -keyout ", ca, "-client.key -out ", ca, "-client.csr && openssl x509 -req -days 2 -in ", ca,
                    "-client.csr -CA ", ca, ".pem -CAkey ", ca, ".key -CAcreateserial -out ", ca, "-client.pem");
  }
  absl::StrAppend(&script, " >/dev/null 2>&1");
  return std::system(script.c_str()) == 0;
}

struct CurlResult {
  int exit_code = -1;  // curl's: 0 with an HTTP answer; 35 a failed TLS handshake, 52/56 no answer
  std::string out;     // the body (-s), then "HTTP <status>" (-w)
};

// curl (a real HTTPS client) against the router; `args` are appended to the common ones.
CurlResult Curl(const std::string& args) {
  const std::string command = absl::StrCat("curl -s --max-time 20 -w '\nHTTP %{http_code}' ", args, " 2>/dev/null");
  CurlResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.out.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

bool HaveCurl() { return std::system("command -v curl >/dev/null 2>&1") == 0; }

TEST_F(RouterAuthTest, GrpcOverTls) {
  const std::string dir = Dir();
  const std::string command = absl::StrCat(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -addext "
      "subjectAltName=IP:127.0.0.1,DNS:localhost -keyout ",
      dir, "/key.pem -out ", dir, "/cert.pem >/dev/null 2>&1");
  if (std::system(command.c_str()) != 0) GTEST_SKIP() << "openssl could not make a test certificate";
  const ServerTls tls = StartWithTls(dir, /*client_ca=*/false);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = tls.cert_chain_pem;
  const grpc::Status secure =
      Generate(grpc::CreateChannel(router_->address(), grpc::SslCredentials(ssl)), "");
  EXPECT_TRUE(secure.ok()) << secure.error_message();
  // A plaintext client cannot talk to the TLS port.
  const grpc::Status plain =
      Generate(grpc::CreateChannel(router_->address(), grpc::InsecureChannelCredentials()), "");
  EXPECT_EQ(plain.error_code(), grpc::StatusCode::UNAVAILABLE) << plain.error_message();
}

// S1 with mutual TLS (--tls-client-ca-file): a client presenting a certificate signed by that CA is
// served; one presenting none, or one signed by another CA, fails the handshake (UNAVAILABLE) and no
// request reaches a worker.
TEST_F(RouterAuthTest, MutualTlsRefusesClientsWithoutACertificateFromTheCa) {
  const std::string dir = Dir();
  if (!MakeCertificates(dir)) GTEST_SKIP() << "openssl could not make the test certificates";
  const ServerTls tls = StartWithTls(dir, /*client_ca=*/true);
  const auto client = [&](const std::string& cert, const std::string& key) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = tls.cert_chain_pem;
    if (!cert.empty()) {
      ssl.pem_cert_chain = ReadFile(dir + "/" + cert);
      ssl.pem_private_key = ReadFile(dir + "/" + key);
    }
    return grpc::CreateChannel(router_->address(), grpc::SslCredentials(ssl));
  };
  const grpc::Status trusted = Generate(client("ca1-client.pem", "ca1-client.key"), "");
  EXPECT_TRUE(trusted.ok()) << trusted.error_message();
  const size_t served = decode_->decode_requests().size();
  const grpc::Status anonymous = Generate(client("", ""), "");
  EXPECT_EQ(anonymous.error_code(), grpc::StatusCode::UNAVAILABLE) << anonymous.error_message();
  const grpc::Status stranger = Generate(client("ca2-client.pem", "ca2-client.key"), "");
  EXPECT_EQ(stranger.error_code(), grpc::StatusCode::UNAVAILABLE) << stranger.error_message();
  EXPECT_EQ(decode_->decode_requests().size(), served);
}

// The HTTP API over TLS (the certificate of --tls-cert-file, as on the gRPC port), with curl: completions
// whole and streamed, health; a plaintext client gets no HTTP answer; a client that hangs up over TLS
// still cancels its decode (the hang-up watch cannot read TLS records, it asks the kernel for the FIN).
TEST_F(RouterAuthTest, HttpsServesTheApiAndPlaintextGetsNoAnswer) {
  if (!HaveCurl()) GTEST_SKIP() << "curl not found";
  const std::string dir = Dir();
  if (!MakeCertificates(dir)) GTEST_SKIP() << "openssl could not make the test certificates";
  StartWithTls(dir, /*client_ca=*/false);
  const std::string url = absl::StrCat("https://127.0.0.1:", HttpPort());
  const std::string common = absl::StrCat("--cacert ", dir, "/cert.pem -H 'Content-Type: application/json' ");

  CurlResult whole = Curl(absl::StrCat(common, "-d '{\"prompt\": \"Hello\", \"max_tokens\": 3}' ", url,
                                       "/v1/completions"));
  EXPECT_EQ(whole.exit_code, 0) << whole.out;
  EXPECT_THAT(whole.out, HasSubstr("\"object\":\"text_completion\""));
  EXPECT_THAT(whole.out, HasSubstr("HTTP 200"));
  CurlResult streamed = Curl(absl::StrCat(common, "-N -d '{\"prompt\": \"Hello\", \"max_tokens\": 3, \"stream\": true}' ",
                                          url, "/v1/completions"));
  EXPECT_EQ(streamed.exit_code, 0) << streamed.out;
  EXPECT_THAT(streamed.out, HasSubstr("data: [DONE]"));
  CurlResult health = Curl(absl::StrCat(common, url, "/health"));
  EXPECT_THAT(health.out, HasSubstr("HTTP 200"));

  // Plaintext to the TLS port: the handshake fails, no HTTP answer, no request reaches a worker.
  const size_t served = decode_->decode_requests().size();
  const HttpResult plain = Http(HttpPort(), "POST", "/v1/completions", "", R"({"prompt": "Hello", "max_tokens": 3})");
  EXPECT_EQ(plain.status, 0) << plain.body;
  CurlResult plain_curl = Curl(absl::StrCat("http://127.0.0.1:", HttpPort(), "/health"));
  EXPECT_NE(plain_curl.exit_code, 0) << plain_curl.out;
  EXPECT_EQ(decode_->decode_requests().size(), served);

  // A client that gives up (curl --max-time 1) on a 20 s generation: its decode is cancelled.
  testing::FakeDecodeOptions slow;
  slow.token_delay = absl::Milliseconds(50);
  decode_->set_options(slow);
  for (const bool stream : {true, false}) {
    const int before = decode_->cancellations();
    const CurlResult gave_up = Curl(absl::StrCat(
        common, "--max-time 1 -d '{\"prompt\": \"Hi\", \"max_tokens\": 400, \"stream\": ", stream ? "true" : "false",
        "}' ", url, "/v1/completions"));
    EXPECT_EQ(gave_up.exit_code, 28) << gave_up.out;  // curl: operation timed out
    EXPECT_TRUE(testing::WaitFor([&] { return decode_->cancellations() == before + 1; }, absl::Seconds(5)))
        << (stream ? "streaming" : "whole response");
  }
}

// --tls-client-ca-file on the HTTP API: a client certificate from that CA is served; none, or one from
// another CA, fails the handshake and no request reaches a worker.
TEST_F(RouterAuthTest, HttpsWithAClientCaRefusesClientsWithoutACertificateFromIt) {
  if (!HaveCurl()) GTEST_SKIP() << "curl not found";
  const std::string dir = Dir();
  if (!MakeCertificates(dir)) GTEST_SKIP() << "openssl could not make the test certificates";
  StartWithTls(dir, /*client_ca=*/true);
  const auto complete = [&](const std::string& client) {
    std::string args = absl::StrCat("--cacert ", dir, "/cert.pem -H 'Content-Type: application/json' ");
    if (!client.empty()) absl::StrAppend(&args, "--cert ", dir, "/", client, ".pem --key ", dir, "/", client, ".key ");
    absl::StrAppend(&args, "-d '{\"prompt\": \"Hello\", \"max_tokens\": 3}' https://127.0.0.1:", HttpPort(),
                    "/v1/completions");
    return Curl(args);
  };
  const CurlResult trusted = complete("ca1-client");
  EXPECT_EQ(trusted.exit_code, 0) << trusted.out;
  EXPECT_THAT(trusted.out, HasSubstr("HTTP 200"));
  const size_t served = decode_->decode_requests().size();
  const CurlResult anonymous = complete("");
  EXPECT_NE(anonymous.exit_code, 0) << anonymous.out;
  EXPECT_THAT(anonymous.out, Not(HasSubstr("HTTP 200")));
  const CurlResult stranger = complete("ca2-client");
  EXPECT_NE(stranger.exit_code, 0) << stranger.out;
  EXPECT_THAT(stranger.out, Not(HasSubstr("HTTP 200")));
  EXPECT_EQ(decode_->decode_requests().size(), served);
}

// A certificate OpenSSL cannot read stops the router at start, naming it.
TEST_F(RouterAuthTest, AnUnreadableCertificateIsRefusedAtStart) {
  ServerTls tls;
  tls.cert_chain_pem = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  tls.private_key_pem = "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n";
  options_.tls = tls;
  const absl::StatusOr<std::unique_ptr<RouterServer>> router = RouterServer::Start(options_);
  ASSERT_FALSE(router.ok());
  EXPECT_EQ(router.status().code(), absl::StatusCode::kInvalidArgument) << router.status();
  EXPECT_THAT(router.status().message(), HasSubstr("certificate chain"));
}

}  // namespace
}  // namespace tandem::router
