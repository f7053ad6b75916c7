#include "common/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <chrono>

namespace tandem {

ThreadPool::ThreadPool(int num_threads) {
  for (int i = 1; i < std::max(1, num_threads); ++i) {
    workers_.emplace_back([this, i] { WorkerLoop(i); });
  }
}

namespace {

// How long a worker (or the caller) spins before sleeping: longer than the gap between two loops of one
// decode step, much shorter than the gap between steps of an idle engine.
constexpr auto kSpin = std::chrono::microseconds(100);

// sched_yield, not a pause loop: where threads outnumber free cores (workers of several processes on
// one machine, or a busy machine) a pause loop holds the core the thread it waits for needs; yielding
// hands it over, and costs about a microsecond when nothing else wants the core.
inline void CpuRelax() { sched_yield(); }

// Spins until done() or kSpin passes; true when done() held.
template <typename Done>
bool SpinUntil(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (done()) return true;
    CpuRelax();
    if ((i & 7) == 7 && std::chrono::steady_clock::now() >= deadline) return done();
  }
}

}  // namespace

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

static void RunShare(const std::function<void(int64_t, int64_t)>& fn, int64_t n, int index, int parts) {
  const int64_t begin = n * index / parts;
  const int64_t end = n * (index + 1) / parts;
  if (begin < end) fn(begin, end);
}

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    fn(0, n);
    return;
  }
  fn_ = &fn;
  n_ = n;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    // Under the lock, so that a worker about to sleep sees either the old generation and is woken, or
    // the new one and does not sleep.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  work_cv_.notify_all();  // no system call when every worker is spinning
  RunShare(fn, n, 0, num_threads());
  if (!SpinUntil([this] { return pending_.load(std::memory_order_acquire) == 0; })) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
  }
  fn_ = nullptr;
}

void ThreadPool::ParallelForDynamic(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t chunks = (n + grain - 1) / grain;
  if (workers_.empty() || chunks == 1) {
    fn(0, n);
    return;
  }
  std::atomic<int64_t> next{0};
  ParallelFor(num_threads(), [&](int64_t, int64_t) {
    for (int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < chunks;
         c = next.fetch_add(1, std::memory_order_relaxed)) {
      fn(c * grain, std::min(n, (c + 1) * grain));
    }
  });
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto woken = [&] { return stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen; };
    if (!SpinUntil(woken)) {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, woken);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);
    RunShare(*fn_, n_, index, num_threads());
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // The caller may be asleep on done_cv_: take the lock so the notification cannot fall between its
      // check and its wait.
      std::lock_guard<std::mutex> lock(mu_);
      done_cv_.notify_one();
    }
  }
}

int DefaultThreadCount() { return std::max(1u, std::thread::hardware_concurrency()); }

}  // namespace tandem
