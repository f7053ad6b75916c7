#include "common/thread_pool.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace tandem {
namespace {

TEST(ThreadPoolTest, EveryIndexRunsExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      pool.ParallelFor(n, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) hits[i]++;
      });
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << "threads=" << threads << " i=" << i;
    }
  }
}

TEST(ThreadPoolTest, ReusableAcrossManyCalls) {
  ThreadPool pool(4);
  std::atomic<int64_t> sum{0};
  for (int round = 0; round < 200; ++round) {
    pool.ParallelFor(64, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) sum += i;
    });
  }
  EXPECT_EQ(sum.load(), 200 * (63 * 64 / 2));
}

// Loops back to back (workers still spinning) and loops after idle gaps longer than the spin (workers
// asleep on the condition variable) both run every index once; a missed wake-up would hang here.
TEST(ThreadPoolTest, WakesSpinningAndSleepingWorkers) {
  ThreadPool pool(3);
  std::atomic<int64_t> count{0};
  for (int round = 0; round < 20000; ++round) {
    pool.ParallelFor(3, [&](int64_t begin, int64_t end) { count += end - begin; });
  }
  EXPECT_EQ(count.load(), 60000);
  for (int round = 0; round < 20; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    pool.ParallelFor(3, [&](int64_t begin, int64_t end) { count += end - begin; });
  }
  EXPECT_EQ(count.load(), 60060);
}

}  // namespace
}  // namespace tandem
