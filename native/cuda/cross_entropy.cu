// Cross-entropy (hard labels, soft targets), mean over the batch, as native/cpu/
// cross_entropy.cc: log-softmax in double (K can be 1000 and losses are reported), one
// block per row; per-row losses come back to the host and are summed there in order.
#include <cmath>
#include <vector>

#include "fast_math_cuda.h"  // first: see there
#include "cuda_check.h"
#include "launch.cuh"
#include "ops.h"

namespace spdfq::cuda {

namespace {

constexpr int kCeThreads = 128;

template <bool kMax>
__device__ double block_reduce(double v, double* shared) {
  v = kMax ? warp_max_d(v) : warp_sum_d(v);
  const int warp = int(threadIdx.x / 32), lane = int(threadIdx.x % 32);
  __syncthreads();  // `shared` may still be read by a previous reduction
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  double r = shared[0];
  for (int w = 1; w < kCeThreads / 32; ++w) r = kMax ? fmax(r, shared[w]) : r + shared[w];
  return r;
}

template <bool kSoft>
__global__ void __launch_bounds__(kCeThreads) k_cross_entropy(float* dlogits, double* loss_rows, const float* logits,
                                                              const int32_t* labels, const float* targets, int B,
                                                              int K) {
  __shared__ double red[kCeThreads / 32];
  const int64_t b = blockIdx.x;
  const float* z = logits + b * K;
  double mx = -INFINITY;
  for (int k = int(threadIdx.x); k < K; k += kCeThreads) mx = fmax(mx, double(z[k]));
  mx = block_reduce<true>(mx, red);
  double s = 0.0;
  for (int k = int(threadIdx.x); k < K; k += kCeThreads) s += exp(double(z[k]) - mx);
  s = block_reduce<false>(s, red);
  const double lse = mx + log(s);
  double loss, tsum = 1.0;
  if (kSoft) {
    const float* t = targets + b * K;
    double l = 0.0, ts = 0.0;
    for (int k = int(threadIdx.x); k < K; k += kCeThreads) {
      l -= double(t[k]) * (double(z[k]) - lse);
      ts += t[k];
    }
    loss = block_reduce<false>(l, red);
    tsum = block_reduce<false>(ts, red);
  } else {
    const int y = labels[b];
    loss = y >= 0 && y < K ? lse - double(z[y]) : NAN;
  }
  if (threadIdx.x == 0) loss_rows[b] = loss;
  if (dlogits) {
    for (int k = int(threadIdx.x); k < K; k += kCeThreads) {
      const double p = exp(double(z[k]) - mx) / s;
      const double d = kSoft ? p * tsum - double(targets[b * K + k]) : p - (k == labels[b] ? 1.0 : 0.0);
      dlogits[b * K + k] = float(d / B);
    }
  }
}

double finish(const double* loss_rows, int B, const Ctx& ctx) {
  std::vector<double> rows(static_cast<size_t>(B));
  CUDA_CHECK(cudaMemcpyAsync(rows.data(), loss_rows, sizeof(double) * size_t(B), cudaMemcpyDeviceToHost, ctx.stream));
  CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  double loss = 0.0;
  for (double r : rows) loss += r;
  return loss / B;
}

}  // namespace

double cross_entropy_hard(float* dlogits, const float* logits, const int32_t* labels, int B, int K,
                          double* loss_rows, const Ctx& ctx) {
  if (B <= 0) return 0.0;
  k_cross_entropy<false><<<unsigned(B), kCeThreads, 0, ctx.stream>>>(dlogits, loss_rows, logits, labels, nullptr, B, K);
  CUDA_CHECK_LAUNCH("k_cross_entropy<hard>");
  return finish(loss_rows, B, ctx);
}

double cross_entropy_soft(float* dlogits, const float* logits, const float* targets, int B, int K,
                          double* loss_rows, const Ctx& ctx) {
  if (B <= 0) return 0.0;
  k_cross_entropy<true><<<unsigned(B), kCeThreads, 0, ctx.stream>>>(dlogits, loss_rows, logits, nullptr, targets, B, K);
  CUDA_CHECK_LAUNCH("k_cross_entropy<soft>");
  return finish(loss_rows, B, ctx);
}

}  // namespace spdfq::cuda
