// A fixed pool of worker threads for data-parallel loops in the CPU backend.
//
// Thread safety: ParallelFor may be called from one thread at a time per pool (the engine thread); it
// blocks until every chunk has run. The calling thread takes a share of the work.
#ifndef TANDEM_COMMON_THREAD_POOL_H_
#define TANDEM_COMMON_THREAD_POOL_H_

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

 private:
  void WorkerLoop(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
};

// Threads to use by default: the hardware's count, at least 1.
int DefaultThreadCount();

}  // namespace tandem

#endif  // TANDEM_COMMON_THREAD_POOL_H_
