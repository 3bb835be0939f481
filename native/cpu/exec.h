// How a CPU op runs: on which thread pool, and whether with the scalar reference kernels
// (`reference`: gemm_ref, unfused attention, one thread — the truth the fast path is
// tested against) or the fast ones (SIMD GEMM chosen by CPU features, threads).
#pragma once

#include "gemm.h"
#include "thread_pool.h"

namespace spdfq::cpu {

struct Exec {
  ThreadPool* pool = nullptr;
  bool reference = false;
  GemmVariant gemm = GemmVariant::Auto;

  int threads() const { return reference || pool == nullptr ? 1 : pool->threads(); }
  // parallel_for that degrades to a serial loop in reference mode.
  template <class F>
  void parallel(int64_t tasks, F&& fn) const {
    if (threads() == 1) {
      for (int64_t t = 0; t < tasks; ++t) fn(t, 0);
    } else {
      pool->parallel_for(tasks, fn);
    }
  }
  // Splits [0, n) into one contiguous range per thread.
  template <class F>
  void parallel_rows(int64_t n, F&& fn) const {
    const int64_t parts = n < threads() ? (n > 0 ? n : 1) : threads();
    parallel(parts, [&](int64_t part, int worker) {
      int64_t b, e;
      split_range(n, parts, part, &b, &e);
      if (b < e) fn(b, e, worker);
    });
  }
};

// C = alpha·op(A)·op(B) + beta·C on all threads: rows of C are split across the pool (or
// columns, when C has fewer rows than threads), each part one single-threaded gemm call.
void gemm_parallel(const Exec& ex, const GemmArgs& g);

}  // namespace spdfq::cpu
