// Swin's window, merging and pooling kernels on the GPU (native/cpu/swin_window.cc and
// swin_tokens.cc are the references). Written for correctness first: window attention
// runs one block per (window, head) with a thread per query row, which suits Swin's small
// windows (N = 49 at 7×7); the probabilities are materialized, as on the CPU, for the
// backward and the attention tap. The backward reuses ViT attention's over the windows;
// the bias table's gradient reduces its dS by table row, one block per (row, head).
#include "fast_math_cuda.h"  // first: see there
#include "../core/swin_params.h"
#include "cuda_check.h"
#include "launch.cuh"
#include "swin_ops.h"

namespace spdfq::cuda {

namespace {

__global__ void k_window_gather(float* out, const float* inp, const int32_t* index, int rows_out, int rows_in, int C,
                                int64_t n) {
  SPDFQ_GRID_STRIDE(i, n) {
    const int64_t row = i / C, b = row / rows_out;
    const int32_t src = index[row % rows_out];
    out[i] = src < 0 ? 0.0f : inp[(b * rows_in + src) * C + i % C];
  }
}

// Block = one (window, head); each thread owns query rows i = tid, tid + blockDim, ….
// With att_q, P·v reads P fake-quantized by pq (core/quantizer.h, the CPU's arithmetic).
__global__ void k_window_attention(float* av, float* att, const float* qkv, const float* table,
                                   const int32_t* rel_index, const int32_t* region, int nW, int N, int H, int hd,
                                   float scale, float* att_q, quant::TensorQuant pq) {
  const int64_t t = blockIdx.x, win = t / H;
  const int h = int(t % H), w = int(win % nW), D = H * hd;
  const float* base = qkv + win * N * 3 * D + h * hd;
  for (int i = threadIdx.x; i < N; i += blockDim.x) {
    const float* q = base + int64_t(i) * 3 * D;
    float* p = att + (t * N + i) * N;
    float mx = -INFINITY;
    for (int j = 0; j < N; ++j) {
      const float* k = base + int64_t(j) * 3 * D + D;
      float dot = 0.0f;
      for (int d = 0; d < hd; ++d) dot = fmaf(q[d], k[d], dot);
      float s = dot * scale + table[int64_t(rel_index[i * N + j]) * H + h];
      if (region && region[w * N + i] != region[w * N + j]) s += kSwinMaskValue;
      p[j] = s;
      mx = fmaxf(mx, s);
    }
    float sum = 0.0f;
    for (int j = 0; j < N; ++j) sum += (p[j] = expf(p[j] - mx));
    const float inv = 1.0f / sum;
    for (int j = 0; j < N; ++j) p[j] *= inv;
    if (att_q) {
      float* pqr = att_q + (t * N + i) * N;
      const float levels = float(int64_t(1) << pq.bits);
      for (int j = 0; j < N; ++j)
        pqr[j] = pq.kind == quant::QuantKind::Log2 ? quant::fake_quant_log2(p[j], pq.scale, levels)
                                                  : quant::fake_quant_uniform(p[j], pq.scale, pq.zero, pq.qmin, pq.qmax);
      p = pqr;
    }
    float* o = av + (win * N + i) * D + h * hd;
    for (int d = 0; d < hd; ++d) {
      float acc = 0.0f;
      for (int j = 0; j < N; ++j) acc = fmaf(p[j], base[int64_t(j) * 3 * D + 2 * D + d], acc);
      o[d] = acc;
    }
  }
}

__global__ void k_patch_merge(float* cat, const float* x, int Hs, int Ws, int C, int64_t n) {
  const int Ho = (Hs + 1) / 2, Wo = (Ws + 1) / 2;
  SPDFQ_GRID_STRIDE(i, n) {
    const int64_t r = i / (4 * C);
    const int k = int(i / C % 4), ch = int(i % C);
    const int64_t b = r / (int64_t(Ho) * Wo);
    const int y = int(r / Wo % Ho), xo = int(r % Wo);
    const int sy = 2 * y + (k & 1), sx = 2 * xo + (k >> 1);  // (0,0), (1,0), (0,1), (1,1)
    cat[i] = sy < Hs && sx < Ws ? x[((b * Hs + sy) * Ws + sx) * C + ch] : 0.0f;
  }
}

__global__ void k_mean_pool(float* pooled, const float* x, int T, int C, int64_t n) {
  SPDFQ_GRID_STRIDE(i, n) {
    const int64_t b = i / C, ch = i % C;
    double acc = 0.0;
    for (int t = 0; t < T; ++t) acc += x[(b * T + t) * C + ch];
    pooled[i] = float(acc / T);
  }
}

__global__ void k_patch_merge_backward(float* dx, const float* dcat, int Hs, int Ws, int C, int64_t n) {
  const int Ho = (Hs + 1) / 2, Wo = (Ws + 1) / 2;
  SPDFQ_GRID_STRIDE(i, n) {
    const int64_t r = i / C, b = r / (int64_t(Hs) * Ws);
    const int y = int(r / Ws % Hs), x = int(r % Ws), k = (y & 1) + 2 * (x & 1);  // patch_merge's slot
    dx[i] = dcat[((b * Ho + y / 2) * Wo + x / 2) * 4 * C + k * C + i % C];
  }
}

__global__ void k_mean_pool_backward(float* dx, const float* dpooled, int T, int C, int64_t n) {
  SPDFQ_GRID_STRIDE(i, n) { dx[i] = dpooled[i / (int64_t(T) * C) * C + i % C] / float(T); }
}

// Block = one (table row, head): its threads stride over every (window, i, j) logit and
// sum those whose pair maps to the row; the block sums the partials in a fixed tree order.
constexpr int kBiasThreads = 256;
__global__ void k_bias_table_backward(float* dtable, const float* ds, const int32_t* rel_index, int windows, int N,
                                      int H) {
  const int row = int(blockIdx.x) / H, h = int(blockIdx.x) % H;
  const int64_t pairs = int64_t(N) * N, n = int64_t(windows) * pairs;
  float acc = 0.0f;
  for (int64_t e = threadIdx.x; e < n; e += blockDim.x) {
    const int64_t p = e % pairs;
    if (rel_index[p] == row) acc += ds[(e / pairs * H + h) * pairs + p];
  }
  __shared__ float part[kBiasThreads];
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int s = kBiasThreads / 2; s > 0; s >>= 1) {
    if (int(threadIdx.x) < s) part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) dtable[int64_t(row) * H + h] += part[0];
}

}  // namespace

void window_gather(float* out, const float* inp, const int32_t* index, int B, int rows_out, int rows_in, int C,
                   const Ctx& ctx) {
  const int64_t n = int64_t(B) * rows_out * C;
  k_window_gather<<<grid_for(n), kBlock, 0, ctx.stream>>>(out, inp, index, rows_out, rows_in, C, n);
  CUDA_CHECK_LAUNCH("k_window_gather");
}

void window_attention_forward(float* av, float* att, const float* qkv, const float* bias_table,
                              const int32_t* rel_index, const int32_t* region, int B, int nW, int N, int H, int hd,
                              const Ctx& ctx, const quant::TensorQuant* probs_q, float* att_q) {
  const int64_t blocks = int64_t(B) * nW * H;
  if (blocks == 0) return;
  const bool quantize = probs_q && probs_q->kind != quant::QuantKind::None;
  if (quantize && !att_q) fail("E_CUDA", "window_attention_forward: quantized probabilities need att_q (internal error)");
  const int threads = N < 64 ? 64 : 128;
  k_window_attention<<<unsigned(blocks), threads, 0, ctx.stream>>>(av, att, qkv, bias_table, rel_index, region, nW,
                                                                   N, H, hd, 1.0f / sqrtf(float(hd)),
                                                                   quantize ? att_q : nullptr,
                                                                   quantize ? *probs_q : quant::TensorQuant{});
  CUDA_CHECK_LAUNCH("k_window_attention");
}

void patch_merge(float* cat, const float* x, int B, int Hs, int Ws, int C, const Ctx& ctx) {
  const int64_t n = int64_t(B) * ((Hs + 1) / 2) * ((Ws + 1) / 2) * 4 * C;
  k_patch_merge<<<grid_for(n), kBlock, 0, ctx.stream>>>(cat, x, Hs, Ws, C, n);
  CUDA_CHECK_LAUNCH("k_patch_merge");
}

void mean_pool(float* pooled, const float* x, int B, int T, int C, const Ctx& ctx) {
  const int64_t n = int64_t(B) * C;
  k_mean_pool<<<grid_for(n), kBlock, 0, ctx.stream>>>(pooled, x, T, C, n);
  CUDA_CHECK_LAUNCH("k_mean_pool");
}

void window_attention_backward(float* dqkv, float* dtable, const float* dav, const float* datt_extra, const float* att,
                               const float* att_pv, const float* qkv, const int32_t* rel_index, int table_rows, int B,
                               int nW, int N, int H, int hd, float* dscratch, const Ctx& ctx) {
  attention_backward(dqkv, dav, datt_extra, att, att_pv, qkv, B * nW, N, H, hd, dscratch, ctx);
  if (!dtable || B * nW == 0) return;
  k_bias_table_backward<<<unsigned(table_rows * H), kBiasThreads, 0, ctx.stream>>>(dtable, dscratch, rel_index,
                                                                                   B * nW, N, H);
  CUDA_CHECK_LAUNCH("k_bias_table_backward");
}

void patch_merge_backward(float* dx, const float* dcat, int B, int Hs, int Ws, int C, const Ctx& ctx) {
  const int64_t n = int64_t(B) * Hs * Ws * C;
  k_patch_merge_backward<<<grid_for(n), kBlock, 0, ctx.stream>>>(dx, dcat, Hs, Ws, C, n);
  CUDA_CHECK_LAUNCH("k_patch_merge_backward");
}

void mean_pool_backward(float* dx, const float* dpooled, int B, int T, int C, const Ctx& ctx) {
  const int64_t n = int64_t(B) * T * C;
  k_mean_pool_backward<<<grid_for(n), kBlock, 0, ctx.stream>>>(dx, dpooled, T, C, n);
  CUDA_CHECK_LAUNCH("k_mean_pool_backward");
}

}  // namespace spdfq::cuda
