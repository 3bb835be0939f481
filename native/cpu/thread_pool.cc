// ThreadPool: workers sleep on a condition variable between jobs; tasks are handed out
// one at a time under the mutex (tasks are coarse, so the lock is not contended).
#include "thread_pool.h"

namespace spdfq::cpu {

ThreadPool::ThreadPool(int threads) : threads_(threads < 1 ? 1 : threads) {
  for (int w = 1; w < threads_; ++w) workers_.emplace_back([this, w] { worker_loop(w); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::parallel_for(int64_t tasks, const std::function<void(int64_t, int)>& fn) {
  if (tasks <= 0) return;
  std::unique_lock<std::mutex> lock(mutex_);
  // A nested or concurrent call (another model sharing this pool) runs on the caller
  // alone rather than deadlocking.
  if (threads_ == 1 || tasks == 1 || busy_) {
    lock.unlock();
    for (int64_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  busy_ = true;
  job_ = &fn;
  tasks_ = tasks;
  next_task_ = 0;
  running_ = threads_;
  error_ = nullptr;
  ++generation_;
  lock.unlock();
  start_cv_.notify_all();

  // The caller is worker 0.
  for (;;) {
    lock.lock();
    if (next_task_ >= tasks_ || error_) {
      lock.unlock();
      break;
    }
    const int64_t t = next_task_++;
    lock.unlock();
    try {
      fn(t, 0);
    } catch (...) {
      lock.lock();
      if (!error_) error_ = std::current_exception();
      lock.unlock();
    }
  }
  lock.lock();
  --running_;
  done_cv_.wait(lock, [this] { return running_ == 0; });
  job_ = nullptr;
  busy_ = false;
  std::exception_ptr err = error_;
  error_ = nullptr;
  lock.unlock();
  if (err) std::rethrow_exception(err);
}

void ThreadPool::worker_loop(int worker) {
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    start_cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
    if (stopping_) return;
    seen = generation_;
    const auto* job = job_;
    while (next_task_ < tasks_ && !error_) {
      const int64_t t = next_task_++;
      lock.unlock();
      try {
        (*job)(t, worker);
      } catch (...) {
        lock.lock();
        if (!error_) error_ = std::current_exception();
        lock.unlock();
      }
      lock.lock();
    }
    if (--running_ == 0) done_cv_.notify_all();
  }
}

}  // namespace spdfq::cpu
