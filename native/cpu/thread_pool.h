// A small fixed-size thread pool with one primitive, parallel_for over task indices.
// The engine's parallelism is coarse (rows of a GEMM, (image, head) pairs of attention),
// so a static split with a blocking join is all it needs; the calling thread works too.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace spdfq::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }

  // Runs fn(task, worker) for task in [0, tasks); `worker` in [0, threads()) identifies the
  // thread, for per-thread scratch. Returns when all tasks are done. The first exception a
  // task throws is rethrown here, after every worker has stopped. Not reentrant: a task
  // must not call parallel_for on the same pool (it would run serially, see below).
  void parallel_for(int64_t tasks, const std::function<void(int64_t task, int worker)>& fn);

 private:
  void worker_loop(int worker);

  int threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int64_t, int)>* job_ = nullptr;
  int64_t tasks_ = 0;
  int64_t next_task_ = 0;
  int running_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  bool busy_ = false;
  std::exception_ptr error_;
};

// Splits [0, n) into `parts` contiguous ranges of nearly equal size; range `i`.
inline void split_range(int64_t n, int64_t parts, int64_t i, int64_t* begin, int64_t* end) {
  const int64_t base = n / parts, extra = n % parts;
  *begin = i * base + (i < extra ? i : extra);
  *end = *begin + base + (i < extra ? 1 : 0);
}

}  // namespace spdfq::cpu
