// Multi-head self-attention core on the GPU, as native/cpu/attention.cc's fast path: per
// (image, head) products run as one strided-batched GEMM each, reading q/k/v in place in
// the [tokens, 3D] rows; the probabilities P are materialized (backward needs them, and
// they are the tap the attention-prior loss reads). Softmax uses core/fast_math.h's exp,
// as the CPU fast path does.
#include <cmath>

#include "fast_math_cuda.h"  // first: see there
#include "cuda_check.h"
#include "launch.cuh"
#include "ops.h"

namespace spdfq::cuda {

namespace {

constexpr int kRowsPerBlock = kBlock / 32;

__global__ void k_softmax_rows(float* s, float* s_q, int64_t rows, int n, quant::TensorQuant q) {
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  const int lane = int(threadIdx.x % 32);
  if (r >= rows) return;
  float* x = s + r * n;
  float mx = -INFINITY;
  for (int j = lane; j < n; j += 32) mx = fmaxf(mx, x[j]);
  mx = warp_max(mx);
  float sum = 0.0f;
  for (int j = lane; j < n; j += 32) {
    const float e = fast_exp(x[j] - mx);
    x[j] = e;
    sum += e;
  }
  const float inv = 1.0f / warp_sum(sum);
  const bool quantize = s_q != nullptr && q.kind != quant::QuantKind::None;
  const float levels = float(int64_t(1) << q.bits);
  float* xq = quantize ? s_q + r * n : nullptr;
  for (int j = lane; j < n; j += 32) {
    const float p = x[j] * inv;
    x[j] = p;
    if (quantize)
      xq[j] = q.kind == quant::QuantKind::Uniform ? quant::fake_quant_uniform(p, q.scale, q.zero, q.qmin, q.qmax)
                                                  : quant::fake_quant_log2(p, q.scale, levels);
  }
}

__global__ void k_softmax_rows_backward(float* dp, const float* p, int64_t rows, int n) {
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  const int lane = int(threadIdx.x % 32);
  if (r >= rows) return;
  float* d = dp + r * n;
  const float* pr = p + r * n;
  float dot = 0.0f;
  for (int j = lane; j < n; j += 32) dot += pr[j] * d[j];
  dot = warp_sum(dot);
  for (int j = lane; j < n; j += 32) d[j] = pr[j] * (d[j] - dot);
}

// Batch strides of the three layouts attention reads and writes, batch index = (b, h).
void in_qkv(int64_t N, int64_t D, int64_t hd, int64_t* outer, int64_t* inner) {
  *outer = N * 3 * D;
  *inner = hd;
}
void in_merged(int64_t N, int64_t D, int64_t hd, int64_t* outer, int64_t* inner) {
  *outer = N * D;
  *inner = hd;
}
void in_probs(int64_t N, int64_t H, int64_t* outer, int64_t* inner) {
  *outer = H * N * N;
  *inner = N * N;
}

}  // namespace

void softmax_rows(float* s, float* s_q, int64_t rows, int n, const quant::TensorQuant* q, const Ctx& ctx) {
  if (rows <= 0 || n <= 0) return;
  const quant::TensorQuant none{};
  k_softmax_rows<<<unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock), kBlock, 0, ctx.stream>>>(
      s, q ? s_q : nullptr, rows, n, q ? *q : none);
  CUDA_CHECK_LAUNCH("k_softmax_rows");
}

void softmax_rows_backward(float* dp, const float* p, int64_t rows, int n, const Ctx& ctx) {
  if (rows <= 0 || n <= 0) return;
  k_softmax_rows_backward<<<unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock), kBlock, 0, ctx.stream>>>(dp, p,
                                                                                                          rows, n);
  CUDA_CHECK_LAUNCH("k_softmax_rows_backward");
}

void attention_forward(float* av, float* att, const float* qkv, int B, int N, int H, int hd, const Ctx& ctx,
                       const quant::TensorQuant* probs_q, float* att_q) {
  const int D = H * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  const bool quantize = probs_q && probs_q->kind != quant::QuantKind::None;
  if (quantize && !att_q) fail("E_CUDA", "attention_forward: quantized probabilities need att_q (internal error)");

  GemmArgs s;  // S = scale · Q·Kᵀ, per (image, head)
  s.transB = true;
  s.M = N;
  s.N = N;
  s.K = hd;
  s.alpha = scale;
  s.A = qkv;
  s.lda = 3 * D;
  s.B = qkv + D;
  s.ldb = 3 * D;
  s.C = att;
  s.ldc = N;
  s.batch_outer = B;
  s.batch_inner = H;
  in_qkv(N, D, hd, &s.strideA_outer, &s.strideA_inner);
  in_qkv(N, D, hd, &s.strideB_outer, &s.strideB_inner);
  in_probs(N, H, &s.strideC_outer, &s.strideC_inner);
  gemm(s, ctx.math, ctx.stream);

  softmax_rows(att, quantize ? att_q : nullptr, int64_t(B) * H * N, N, quantize ? probs_q : nullptr, ctx);

  GemmArgs o;  // O = P·V into the merged-heads layout
  o.M = N;
  o.N = hd;
  o.K = N;
  o.A = quantize ? att_q : att;
  o.lda = N;
  o.B = qkv + 2 * D;
  o.ldb = 3 * D;
  o.C = av;
  o.ldc = D;
  o.batch_outer = B;
  o.batch_inner = H;
  in_probs(N, H, &o.strideA_outer, &o.strideA_inner);
  in_qkv(N, D, hd, &o.strideB_outer, &o.strideB_inner);
  in_merged(N, D, hd, &o.strideC_outer, &o.strideC_inner);
  gemm(o, ctx.math, ctx.stream);
}

void attention_backward(float* dqkv, const float* dav, const float* datt_extra, const float* att,
                        const float* att_pv, const float* qkv, int B, int N, int H, int hd, float* dscratch,
                        const Ctx& ctx) {
  const int D = H * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  const int64_t probs = int64_t(B) * H * N * N;

  GemmArgs g1;  // dP = dO·Vᵀ (+ the injected tap gradient)
  g1.transB = true;
  g1.M = N;
  g1.N = N;
  g1.K = hd;
  g1.A = dav;
  g1.lda = D;
  g1.B = qkv + 2 * D;
  g1.ldb = 3 * D;
  g1.C = dscratch;
  g1.ldc = N;
  if (datt_extra) {
    CUDA_CHECK(cudaMemcpyAsync(dscratch, datt_extra, size_t(probs) * sizeof(float), cudaMemcpyDeviceToDevice,
                               ctx.stream));
    g1.beta = 1.0f;
  }
  g1.batch_outer = B;
  g1.batch_inner = H;
  in_merged(N, D, hd, &g1.strideA_outer, &g1.strideA_inner);
  in_qkv(N, D, hd, &g1.strideB_outer, &g1.strideB_inner);
  in_probs(N, H, &g1.strideC_outer, &g1.strideC_inner);
  gemm(g1, ctx.math, ctx.stream);

  GemmArgs g2;  // dV += P̂ᵀ·dO (P̂: the probabilities P·v read)
  g2.transA = true;
  g2.M = N;
  g2.N = hd;
  g2.K = N;
  g2.A = att_pv;
  g2.lda = N;
  g2.B = dav;
  g2.ldb = D;
  g2.beta = 1.0f;
  g2.C = dqkv + 2 * D;
  g2.ldc = 3 * D;
  g2.batch_outer = B;
  g2.batch_inner = H;
  in_probs(N, H, &g2.strideA_outer, &g2.strideA_inner);
  in_merged(N, D, hd, &g2.strideB_outer, &g2.strideB_inner);
  in_qkv(N, D, hd, &g2.strideC_outer, &g2.strideC_inner);
  gemm(g2, ctx.math, ctx.stream);

  softmax_rows_backward(dscratch, att, int64_t(B) * H * N, N, ctx);  // dS in place

  GemmArgs g3;  // dQ += scale · dS·K
  g3.M = N;
  g3.N = hd;
  g3.K = N;
  g3.alpha = scale;
  g3.A = dscratch;
  g3.lda = N;
  g3.B = qkv + D;
  g3.ldb = 3 * D;
  g3.beta = 1.0f;
  g3.C = dqkv;
  g3.ldc = 3 * D;
  g3.batch_outer = B;
  g3.batch_inner = H;
  in_probs(N, H, &g3.strideA_outer, &g3.strideA_inner);
  in_qkv(N, D, hd, &g3.strideB_outer, &g3.strideB_inner);
  in_qkv(N, D, hd, &g3.strideC_outer, &g3.strideC_inner);
  gemm(g3, ctx.math, ctx.stream);

  GemmArgs g4 = g3;  // dK += scale · dSᵀ·Q
  g4.transA = true;
  g4.B = qkv;
  g4.C = dqkv + D;
  gemm(g4, ctx.math, ctx.stream);
}

}  // namespace spdfq::cuda
