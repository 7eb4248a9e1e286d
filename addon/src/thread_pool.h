// A small fork-join pool for the forward pass. The caller thread takes part in every
// job. Workers spin briefly between jobs (a decode step issues hundreds of short jobs,
// and waking a sleeping thread costs more than most of them) and sleep when idle.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rs {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  int size() const { return n_threads_; }

  // Runs fn(task, thread) for every task in [0, n_tasks), tasks handed out in order
  // to whichever thread is free; returns when all are done. Which thread runs a task
  // must not change results: kernels write disjoint outputs per task.
  void run(int n_tasks, const std::function<void(int task, int thread)> &fn);

 private:
  void worker(int id);
  void work(int id);

  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> next_task_{0};
  std::atomic<int> busy_{0};
  std::atomic<bool> stop_{false};
  int n_tasks_ = 0;
  const std::function<void(int, int)> *fn_ = nullptr;
};

// Number of cores to use when the caller says 0.
int default_thread_count();

}  // namespace rs
