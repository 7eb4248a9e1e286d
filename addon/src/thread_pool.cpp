#include "thread_pool.h"

#include "fault_guard.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define RS_PAUSE() _mm_pause()
#else
#define RS_PAUSE() std::this_thread::yield()
#endif

namespace rs {

namespace {
// A ticket packs a job's generation (high 32 bits), its task count and the next task to
// hand out (16 bits each), so a claim is one compare-and-swap that fails for a finished
// job: a thread that wakes late can never take a task of a job that has moved on.
constexpr uint64_t kMaxTasks = 0xFFFF;
constexpr uint64_t ticket(uint32_t gen, uint64_t n_tasks, uint64_t next) {
  return static_cast<uint64_t>(gen) << 32 | n_tasks << 16 | next;
}
}  // namespace

int default_thread_count() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_threads_; i++) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (std::thread &t : threads_) t.join();
}

void ThreadPool::work(uint32_t gen, int id) {
  uint64_t t = ticket_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<uint32_t>(t >> 32) != gen) return;  // that job is over
    const uint64_t n = t >> 16 & kMaxTasks, next = t & kMaxTasks;
    if (next >= n) return;  // nothing left to hand out
    if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    // The job cannot finish before this task is done, so fn_ is still this job's.
    run_task(*fn_, static_cast<int>(next), id);
    done_.fetch_add(1, std::memory_order_acq_rel);
    t = ticket_.load(std::memory_order_acquire);
  }
}

void ThreadPool::run_task(const std::function<void(int, int)> &fn, int task, int id) {
  // A task that faulted on a changed model file ends there; run() reports it.
  if (!guarded_reads([&] { fn(task, id); })) faulted_.store(true, std::memory_order_relaxed);
}

void ThreadPool::worker(int id) {
  uint64_t seen = 0;
  for (;;) {
    // Spin for a while (about 0.2 ms) before sleeping: the next job usually comes soon.
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < 20000; spin++) {
      if (spin < 4000) RS_PAUSE();
      else std::this_thread::yield();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load()) return;
    work(static_cast<uint32_t>(g), id);
  }
}

void ThreadPool::run(int n_tasks, const std::function<void(int, int)> &fn) {
  if (n_tasks <= 0) return;
  faulted_.store(false, std::memory_order_relaxed);
  run_job(n_tasks, fn);
  // Thrown here, on the caller's thread with every task over, so the pool stays usable.
  if (faulted_.load(std::memory_order_acquire)) throw ModelFileError(fault::kFaultedMessage);
}

void ThreadPool::run_job(int n_tasks, const std::function<void(int, int)> &fn) {
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int t = 0; t < n_tasks; t++) run_task(fn, t, 0);
    return;
  }
  if (static_cast<uint64_t>(n_tasks) > kMaxTasks) {  // in jobs of at most kMaxTasks, in order
    for (int t0 = 0; t0 < n_tasks; t0 += static_cast<int>(kMaxTasks)) {
      const int m = std::min<int>(static_cast<int>(kMaxTasks), n_tasks - t0);
      run_job(m, [&](int t, int th) { fn(t0 + t, th); });
    }
    return;
  }
  fn_ = &fn;
  done_.store(0, std::memory_order_relaxed);
  uint32_t gen;
  {
    // The lock orders the release with a worker that is about to sleep.
    std::lock_guard<std::mutex> lk(mu_);
    gen = static_cast<uint32_t>(generation_.load(std::memory_order_relaxed) + 1);
    ticket_.store(ticket(gen, static_cast<uint64_t>(n_tasks), 0), std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_.notify_all();
  work(gen, 0);
  // Wait for the tasks others took, not for the others: a worker the OS has not run yet
  // finds the job over when it wakes and takes nothing. On a busy machine the thread
  // finishing a task may be descheduled, so stop burning the core it needs after a short
  // spin.
  for (int spin = 0; done_.load(std::memory_order_acquire) != n_tasks; spin++) {
    if (spin < 4000) RS_PAUSE();
    else std::this_thread::yield();
  }
}

}  // namespace rs
