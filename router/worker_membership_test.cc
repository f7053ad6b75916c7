// Dynamic membership: dns:NAME:PORT worker entries re-resolved by the registry (issue 16). Workers a
// name lists join the pool once healthy, ones it stops listing leave it (their slots stay), a failed
// resolution keeps the last answer, and the router serves and exports metrics for workers that joined
// after it started. The resolver is injected; one test resolves a numeric name for real.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics_http.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "model/config.h"
#include "model/random_model.h"
#include "proto/tandem.grpc.pb.h"
#include "router/router_server.h"
#include "router/testing/fake_workers.h"
#include "router/worker_registry.h"
#include "tokenizer/make_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace tandem::router {
namespace {

using ::tandem::router::testing::FakeDecodeWorker;
using ::tandem::router::testing::FakePrefillWorker;
using ::tandem::router::testing::WaitFor;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// What a name resolves to, changed by the test while the registry runs.
class FakeDns {
 public:
  void Set(const std::string& host, std::vector<std::string> addresses) {
    absl::MutexLock lock(&mu_);
    answers_[host] = std::move(addresses);
  }
  void Fail(const std::string& host) {
    absl::MutexLock lock(&mu_);
    answers_.erase(host);
  }
  WorkerResolver resolver() {
    // Answers hold whole addresses: fake workers listen on ports of their own, where a real name
    // lists one port for every replica.
    return [this](const std::string& host, int) -> absl::StatusOr<std::vector<std::string>> {
      absl::MutexLock lock(&mu_);
      ++lookups_;
      auto it = answers_.find(host);
      if (it == answers_.end()) return absl::NotFoundError(absl::StrCat("cannot resolve '", host, "'"));
      return it->second;
    };
  }
  int lookups() {
    absl::MutexLock lock(&mu_);
    return lookups_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::vector<std::string>> answers_;
  int lookups_ = 0;
};

int PortOf(const std::string& address) { return std::stoi(address.substr(address.rfind(':') + 1)); }

TEST(WorkerMembershipTest, DnsTargetsJoinLeaveAndComeBack) {
  auto prefill = FakePrefillWorker::Start();
  auto decode_a = FakeDecodeWorker::Start();
  auto decode_b = FakeDecodeWorker::Start();
  ASSERT_NE(decode_b, nullptr);
  FakeDns dns;
  dns.Set("decode", {decode_a->address()});
  WorkerRegistryOptions options;
  options.prefill_addresses = {prefill->address()};
  options.decode_addresses = {absl::StrCat("dns:decode:", PortOf(decode_a->address()))};
  options.resolver = dns.resolver();
  options.resolve_interval = absl::Hours(1);  // rounds run by hand below
  options.health_interval = absl::Hours(1);
  options.load_interval = absl::Hours(1);
  absl::StatusOr<std::unique_ptr<WorkerRegistry>> created = WorkerRegistry::Create(options);
  ASSERT_TRUE(created.ok()) << created.status();
  WorkerRegistry& registry = **created;
  registry.Start();
  std::vector<std::string> added;
  registry.SetWorkerAdded([&](WorkerRole role, int index) {
    added.push_back(absl::StrCat(role == WorkerRole::kPrefill ? "prefill/" : "decode/", index));
  });
  EXPECT_THAT(added, ElementsAre("prefill/0", "decode/0"));
  ASSERT_EQ(registry.num_workers(WorkerRole::kDecode), 1);
  EXPECT_EQ(registry.address(WorkerRole::kDecode, 0), decode_a->address());
  EXPECT_TRUE(registry.healthy(WorkerRole::kDecode, 0));

  // Scale up: b joins as slot 1, in the pool after its first passing check.
  dns.Set("decode", {decode_a->address(), decode_b->address()});
  registry.ResolveNow();
  ASSERT_EQ(registry.num_workers(WorkerRole::kDecode), 2);
  EXPECT_EQ(registry.address(WorkerRole::kDecode, 1), decode_b->address());
  EXPECT_FALSE(registry.healthy(WorkerRole::kDecode, 1));
  EXPECT_THAT(added, ElementsAre("prefill/0", "decode/0", "decode/1"));
  registry.CheckHealthNow();
  EXPECT_TRUE(registry.healthy(WorkerRole::kDecode, 1));

  // Scale down: a leaves the pool at once (healthy or not); its slot stays.
  dns.Set("decode", {decode_b->address()});
  registry.ResolveNow();
  EXPECT_FALSE(registry.member(WorkerRole::kDecode, 0));
  EXPECT_FALSE(registry.healthy(WorkerRole::kDecode, 0));
  registry.CheckHealthNow();  // a is still up, but no longer listed: it stays out
  EXPECT_FALSE(registry.healthy(WorkerRole::kDecode, 0));
  policy::ClusterSnapshot snapshot = registry.Snapshot();
  ASSERT_EQ(snapshot.decode.size(), 2u);
  EXPECT_FALSE(snapshot.decode[0].healthy);
  EXPECT_TRUE(snapshot.decode[1].healthy);

  // A failed resolution keeps the last answer.
  dns.Fail("decode");
  registry.ResolveNow();
  EXPECT_TRUE(registry.member(WorkerRole::kDecode, 1));
  registry.CheckHealthNow();
  EXPECT_TRUE(registry.healthy(WorkerRole::kDecode, 1));

  // a comes back into its old slot; no new slot, no new metrics.
  dns.Set("decode", {decode_a->address(), decode_b->address()});
  registry.ResolveNow();
  EXPECT_EQ(registry.num_workers(WorkerRole::kDecode), 2);
  EXPECT_TRUE(registry.member(WorkerRole::kDecode, 0));
  registry.CheckHealthNow();
  EXPECT_TRUE(registry.healthy(WorkerRole::kDecode, 0));
  EXPECT_EQ(added.size(), 3u);
  registry.Shutdown();
}

// A draining worker answers NOT_SERVING while it still takes calls: one health round takes it out
// (a failed check takes three), so a scale-down's replicas leave before their ports close.
TEST(WorkerMembershipTest, NotServingLeavesThePoolAtTheFirstCheck) {
  auto prefill = FakePrefillWorker::Start();
  auto decode = FakeDecodeWorker::Start();
  WorkerRegistryOptions options;
  options.prefill_addresses = {prefill->address()};
  options.decode_addresses = {decode->address()};
  options.health_interval = absl::Hours(1);
  options.load_interval = absl::Hours(1);
  options.unhealthy_after_failures = 3;
  absl::StatusOr<std::unique_ptr<WorkerRegistry>> registry = WorkerRegistry::Create(options);
  ASSERT_TRUE(registry.ok());
  (*registry)->Start();
  EXPECT_TRUE((*registry)->healthy(WorkerRole::kDecode, 0));
  decode->SetServing(false);
  (*registry)->CheckHealthNow();
  EXPECT_FALSE((*registry)->healthy(WorkerRole::kDecode, 0));
  decode->SetServing(true);
  (*registry)->CheckHealthNow();
  EXPECT_TRUE((*registry)->healthy(WorkerRole::kDecode, 0));
  (*registry)->Shutdown();
}

// RELIABILITY / issue 11 item 6: a worker serving another model answers health checks, but every
// request placed there would fail; its load report gives it away and it stays out of the pool.
TEST(WorkerMembershipTest, AWorkerServingAnotherModelStaysOutOfThePool) {
  auto prefill = FakePrefillWorker::Start();
  auto decode = FakeDecodeWorker::Start();
  worker::v1::LoadReport other;
  other.set_vocab_size(32000);
  other.mutable_layout()->set_num_layers(22);
  decode->set_load_report(other);
  WorkerRegistryOptions options;
  options.prefill_addresses = {prefill->address()};
  options.decode_addresses = {decode->address()};
  options.health_interval = absl::Hours(1);
  options.load_interval = absl::Hours(1);
  options.expected_model = {.num_layers = 2, .num_kv_heads = 0, .head_dim = 0, .vocab_size = 512};
  absl::StatusOr<std::unique_ptr<WorkerRegistry>> registry = WorkerRegistry::Create(options);
  ASSERT_TRUE(registry.ok());
  (*registry)->Start();
  (*registry)->CheckHealthNow();  // health says SERVING, the report says another model
  EXPECT_FALSE((*registry)->healthy(WorkerRole::kDecode, 0));
  EXPECT_TRUE((*registry)->healthy(WorkerRole::kPrefill, 0));  // its report is the idle default
  worker::v1::LoadReport right;
  right.set_vocab_size(512);
  right.mutable_layout()->set_num_layers(2);
  decode->set_load_report(right);
  (*registry)->PollLoadNow();
  (*registry)->CheckHealthNow();
  EXPECT_TRUE((*registry)->healthy(WorkerRole::kDecode, 0));
  (*registry)->Shutdown();
}

TEST(WorkerMembershipTest, ATargetThatResolvesToNothingYetStartsEmpty) {
  FakeDns dns;
  WorkerRegistryOptions options;
  options.prefill_addresses = {"dns:prefill:7001"};
  options.decode_addresses = {"dns:decode:7002"};
  options.resolver = dns.resolver();
  absl::StatusOr<std::unique_ptr<WorkerRegistry>> registry = WorkerRegistry::Create(options);
  ASSERT_TRUE(registry.ok()) << registry.status();
  (*registry)->Start();
  EXPECT_EQ((*registry)->num_workers(WorkerRole::kPrefill), 0);
  EXPECT_EQ((*registry)->num_workers(WorkerRole::kDecode), 0);
  EXPECT_GE(dns.lookups(), 2);
  EXPECT_TRUE((*registry)->Snapshot().prefill.empty());
}

TEST(WorkerMembershipTest, MalformedDnsEntriesAreRefused) {
  EXPECT_THAT(ParseWorkerAddresses("--decode", "dns:decode").status().message(), HasSubstr("--decode"));
  EXPECT_FALSE(ParseWorkerAddresses("--decode", "dns::7002").ok());
  absl::StatusOr<std::vector<std::string>> ok = ParseWorkerAddresses("--decode", "dns:decode:7002,10.0.0.1:7002");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_THAT(*ok, ElementsAre("dns:decode:7002", "10.0.0.1:7002"));
}

// config.json of the "tiny" preset and a byte-level tokenizer.json (the router reads no weights).
std::string MakeModelDir() {
  static const std::string dir =
      testing::WriteTinyRouterModel(absl::StrCat(::testing::TempDir(), "/worker_membership_test_", getpid(), "/tiny"));
  return dir;
}

grpc::Status Generate(const std::string& router, std::string* decode_worker) {
  auto stub = v1::Tandem::NewStub(grpc::CreateChannel(router, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  v1::GenerateRequest request;
  request.set_prompt("Hello");
  request.set_max_tokens(4);
  auto reader = stub->Generate(&context, request);
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
    if (response.has_final()) *decode_worker = response.final().decode_worker();
  }
  return reader->Finish();
}

// The router itself: NOT_SERVING-free start with an empty decode name, requests once a worker joins,
// and per-worker gauges for a worker that joined after start.
TEST(WorkerMembershipTest, RouterServesWorkersThatJoinLater) {
  auto prefill = FakePrefillWorker::Start();
  auto decode = FakeDecodeWorker::Start();
  FakeDns dns;
  dns.Set("prefill", {prefill->address()});
  RouterOptions options;
  options.model_dir = MakeModelDir();
  options.prefill_addresses = {absl::StrCat("dns:prefill:", PortOf(prefill->address()))};
  options.decode_addresses = {absl::StrCat("dns:decode:", PortOf(decode->address()))};
  options.resolver = dns.resolver();
  options.resolve_interval = absl::Milliseconds(100);
  options.health_interval = absl::Milliseconds(100);
  absl::StatusOr<std::unique_ptr<RouterServer>> router = RouterServer::Start(options);
  ASSERT_TRUE(router.ok()) << router.status();
  std::string used;
  EXPECT_EQ(Generate((*router)->address(), &used).error_code(), grpc::StatusCode::UNAVAILABLE);

  dns.Set("decode", {decode->address()});
  ASSERT_TRUE(WaitFor([&] { return Generate((*router)->address(), &used).ok(); }));
  EXPECT_EQ(used, decode->address());
  absl::StatusOr<std::map<std::string, double>> samples = ParseMetricsText((*router)->metrics().Render());
  ASSERT_TRUE(samples.ok()) << samples.status();
  const std::string series =
      absl::StrCat("tandem_worker_healthy{role=\"decode\",worker=\"", decode->address(), "\"}");
  ASSERT_TRUE(samples->count(series)) << series;
  EXPECT_EQ(samples->at(series), 1);

  // Gone from DNS: out of the pool.
  dns.Set("decode", {});
  EXPECT_TRUE(WaitFor([&] { return Generate((*router)->address(), &used).error_code() == grpc::StatusCode::UNAVAILABLE; }));
  (*router)->Shutdown(absl::Seconds(1));
}

// A numeric name through the real resolver (getaddrinfo): no DNS server needed.
TEST(WorkerMembershipTest, RealResolverWithANumericName) {
  auto prefill = FakePrefillWorker::Start();
  auto decode = FakeDecodeWorker::Start();
  RouterOptions options;
  options.model_dir = MakeModelDir();
  options.prefill_addresses = {absl::StrCat("dns:127.0.0.1:", PortOf(prefill->address()))};
  options.decode_addresses = {absl::StrCat("dns:127.0.0.1:", PortOf(decode->address()))};
  absl::StatusOr<std::unique_ptr<RouterServer>> router = RouterServer::Start(options);
  ASSERT_TRUE(router.ok()) << router.status();
  std::string used;
  const grpc::Status status = Generate((*router)->address(), &used);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(used, absl::StrCat("127.0.0.1:", PortOf(decode->address())));
  (*router)->Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace tandem::router
