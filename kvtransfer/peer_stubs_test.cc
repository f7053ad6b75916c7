#include "kvtransfer/peer_stubs.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace tandem {
namespace {

// 3000 distinct sources once meant 3000 channels kept forever (issue 11, item 3).
TEST(PrefillStubCacheTest, StaysBoundedAndKeepsTheRecentlyUsed) {
  PrefillStubCache cache(8);
  auto kept = cache.Get("127.0.0.1:1");
  for (int i = 0; i < 3000; ++i) {
    cache.Get(absl::StrCat("127.0.0.2:", 1000 + i));
    if (i % 4 == 0) {
      EXPECT_EQ(cache.Get("127.0.0.1:1"), kept) << i;  // in use: never evicted
    }
  }
  EXPECT_EQ(cache.size(), 8u);
  // Evicted entries are dialled again; a stub handed out earlier stays usable.
  auto old = cache.Get("127.0.0.2:1000");
  EXPECT_NE(old, nullptr);
  EXPECT_EQ(cache.size(), 8u);
}

}  // namespace
}  // namespace tandem
