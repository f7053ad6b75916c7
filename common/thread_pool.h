// A fixed pool of worker threads for data-parallel loops in the CPU backend.
//
// A decode step is ~10 parallel loops per layer, each a few tens of microseconds: waking sleeping
// workers through a condition variable for each would cost about as much as the loop. So workers (and
// the caller, waiting for them) spin for kSpin after a loop before they sleep; the next loop of the
// same step finds them awake, and an idle engine's threads sleep.
//
// Thread safety: ParallelFor may be called from one thread at a time per pool (the engine thread); it
// blocks until every chunk has run. The calling thread takes a share of the work.
#ifndef TANDEM_COMMON_THREAD_POOL_H_
#define TANDEM_COMMON_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tandem {

class ThreadPool {
 public:
  // num_threads counts the caller: 1 means run everything inline.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Splits [0, n) into num_threads() contiguous ranges and runs fn(begin, end) on each.
  void ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn);
  // Splits [0, n) into ranges of `grain` (the last may be shorter) that the threads take in turn until
  // none is left: a thread slowed down (another process on its core) takes fewer, instead of every
  // thread waiting for it at the end of the loop. fn(begin, end) runs once per range.
  void ParallelForDynamic(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void WorkerLoop(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  // Written before generation_ is bumped (release), read after it is seen (acquire).
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  std::atomic<uint64_t> generation_{0};  // bumped under mu_ for each loop
  std::atomic<int> pending_{0};          // workers still running the current loop
  std::atomic<bool> stop_{false};
};

// Threads to use by default: the hardware's count, at least 1.
int DefaultThreadCount();

}  // namespace tandem

#endif  // TANDEM_COMMON_THREAD_POOL_H_
