// A small fork-join pool for the forward pass. The caller thread takes part in every
// job, and a job ends when its tasks are done, not when every worker has checked in: on
// a machine shared with other processes a worker may not run for milliseconds, and the
// others then take its share. Workers spin briefly between jobs (a decode step issues
// hundreds of short jobs, and waking a sleeping thread costs more than most of them) and
// sleep when idle.
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
  // must not change results: kernels write disjoint outputs per task. One caller at a
  // time (the forward pass's thread). A task whose read of a model mapping faulted (the
  // file was truncated: fault_guard.h) stops there; once all tasks are over, run()
  // throws ModelFileError.
  void run(int n_tasks, const std::function<void(int task, int thread)> &fn);

 private:
  void run_job(int n_tasks, const std::function<void(int, int)> &fn);
  void run_task(const std::function<void(int, int)> &fn, int task, int id);
  void worker(int id);
  void work(uint32_t gen, int id);

  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> ticket_{0};  // see thread_pool.cpp
  std::atomic<int> done_{0};         // tasks of the current job finished
  std::atomic<bool> stop_{false};
  std::atomic<bool> faulted_{false};  // a task of the current run() faulted
  const std::function<void(int, int)> *fn_ = nullptr;
};

// Number of cores to use when the caller says 0.
int default_thread_count();

}  // namespace rs
