#include "common/dns.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

TEST(DnsTest, ParsesTargets) {
  absl::StatusOr<DnsTarget> t = ParseDnsTarget("--decode", "dns:decode:50052");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->host, "decode");
  EXPECT_EQ(t->port, 50052);
  EXPECT_EQ(t->ToString(), "dns:decode:50052");
  EXPECT_TRUE(IsDnsTarget("dns:x:1"));
  EXPECT_FALSE(IsDnsTarget("decode:1"));
  for (const char* bad : {"dns:decode", "dns::50052", "dns:decode:0", "dns:decode:70000", "dns:decode:x",
                          "decode:50052"}) {
    absl::StatusOr<DnsTarget> r = ParseDnsTarget("--decode", bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("--decode")) << bad;
  }
}

TEST(DnsTest, ResolvesNumericAndLocalNames) {
  absl::StatusOr<std::vector<std::string>> numeric = ResolveHostPorts("127.0.0.1", 7001);
  ASSERT_TRUE(numeric.ok()) << numeric.status();
  EXPECT_EQ(*numeric, std::vector<std::string>{"127.0.0.1:7001"});
  absl::StatusOr<std::vector<std::string>> v6 = ResolveHostPorts("::1", 7001);
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(*v6, std::vector<std::string>{"[::1]:7001"});
  // localhost is in /etc/hosts on every machine this runs on.
  absl::StatusOr<std::vector<std::string>> local = ResolveHostPorts("localhost", 9);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_THAT(*local, Contains("127.0.0.1:9"));
}

TEST(DnsTest, UnknownNameIsNotFound) {
  absl::StatusOr<std::vector<std::string>> r = ResolveHostPorts("no-such-host.invalid", 1);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("no-such-host.invalid"));
}

TEST(AddressAllowListTest, FixedAndDnsEntries) {
  std::vector<std::string> answer = {"10.0.0.1:7001"};
  int lookups = 0;
  HostResolver fake = [&](const std::string& host, int port) -> absl::StatusOr<std::vector<std::string>> {
    ++lookups;
    EXPECT_EQ(host, "prefill");
    EXPECT_EQ(port, 7001);
    return answer;
  };
  absl::StatusOr<AddressAllowList> list =
      AddressAllowList::Create("--kv-sources", {"127.0.0.1:5000", "dns:prefill:7001"}, fake, absl::ZeroDuration());
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(list->Allows("127.0.0.1:5000"));
  EXPECT_EQ(lookups, 0);
  EXPECT_TRUE(list->Allows("10.0.0.1:7001"));
  EXPECT_FALSE(list->Allows("10.0.0.2:7001"));
  // A replica scaled up later is allowed once DNS lists it.
  answer.push_back("10.0.0.2:7001");
  EXPECT_TRUE(list->Allows("10.0.0.2:7001"));
  EXPECT_FALSE(list->Allows("10.0.0.9:7001"));
}

TEST(AddressAllowListTest, LookupsAreRateLimited) {
  int lookups = 0;
  HostResolver fake = [&](const std::string&, int) -> absl::StatusOr<std::vector<std::string>> {
    ++lookups;
    return std::vector<std::string>{"10.0.0.1:7001"};
  };
  absl::StatusOr<AddressAllowList> list = AddressAllowList::Create("--kv-sources", {"dns:p:7001"}, fake,
                                                                   absl::Hours(1));
  ASSERT_TRUE(list.ok());
  EXPECT_FALSE(list->Allows("10.6.6.6:7001"));
  EXPECT_FALSE(list->Allows("10.6.6.7:7001"));
  EXPECT_TRUE(list->Allows("10.0.0.1:7001"));
  EXPECT_EQ(lookups, 1);
}

TEST(AddressAllowListTest, EmptyAllowsAllAndBadEntriesAreRefused) {
  absl::StatusOr<AddressAllowList> all = AddressAllowList::Create("--kv-sources", {});
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->Allows("1.2.3.4:5"));
  absl::StatusOr<AddressAllowList> bad = AddressAllowList::Create("--kv-sources", {"dns:prefill"});
  EXPECT_THAT(bad.status().message(), HasSubstr("--kv-sources"));
}

}  // namespace
}  // namespace tandem
