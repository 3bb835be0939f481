// Pooling and classification head (CpuVit::head_forward / head_backward): the class (and
// distillation) token(s) or the mean of the patch tokens (or all tokens), then logits = scale·Σ_h
// feat_h·W_hᵀ + scale·Σ_h b_h, with scale ½ for a distilled DeiT (the two heads averaged).
#include "fast_math_cuda.h"  // first: see there
#include "cuda_check.h"
#include "launch.cuh"
#include "ops.h"
#include "../core/activations.h"

namespace spdfq::cuda {

namespace {

__global__ void k_pool_forward(float* pooled, const float* tokens, int N, int D, int hin, int start, bool mean,
                               int64_t n) {
  SPDFQ_GRID_STRIDE(e, n) {
    const int64_t b = e / (int64_t(hin) * D);
    const int hi = int(e % (int64_t(hin) * D));
    const float* img = tokens + b * N * D;
    if (!mean) {
      pooled[e] = img[hi];
    } else {  // hin == 1 (a distilled model pools by token)
      float s = 0.0f;
      for (int t = start; t < N; ++t) s += img[int64_t(t) * D + hi];
      pooled[e] = s * (1.0f / float(N - start));
    }
  }
}

__global__ void k_pool_backward(float* dtokens, const float* dpool, int N, int D, int hin, int start, bool mean,
                                int64_t n) {
  SPDFQ_GRID_STRIDE(e, n) {
    const int i = int(e % D);
    const int64_t t = e / D;
    const int tok = int(t % N);
    const int64_t b = t / N;
    float v = 0.0f;
    if (!mean) {
      if (tok < hin) v = dpool[(b * hin + tok) * D + i];
    } else if (tok >= start) {
      v = dpool[b * hin * D + i] * (1.0f / float(N - start));
    }
    dtokens[e] = v;
  }
}

__global__ void k_head_bias(float* logits, const float* b, const float* b_dist, int K, float scale, int64_t n) {
  SPDFQ_GRID_STRIDE(e, n) {
    const int k = int(e % K);
    logits[e] += scale * (b[k] + (b_dist ? b_dist[k] : 0.0f));
  }
}

}  // namespace

void pool_forward(float* pooled, const float* tokens, int B, const VitConfig& c, const Ctx& ctx) {
  const int hin = head_inputs(c);
  const int64_t n = int64_t(B) * hin * c.dim;
  if (n <= 0) return;
  k_pool_forward<<<grid_for(n), kBlock, 0, ctx.stream>>>(pooled, tokens, c.tokens(), c.dim, hin, c.pool_start(),
                                                         c.pooling != Pooling::Token, n);
  CUDA_CHECK_LAUNCH("k_pool_forward");
}

void pool_backward(float* dtokens, const float* dpool, int B, const VitConfig& c, const Ctx& ctx) {
  const int64_t n = int64_t(B) * c.tokens() * c.dim;
  if (n <= 0) return;
  k_pool_backward<<<grid_for(n), kBlock, 0, ctx.stream>>>(dtokens, dpool, c.tokens(), c.dim, head_inputs(c),
                                                          c.pool_start(), c.pooling != Pooling::Token, n);
  CUDA_CHECK_LAUNCH("k_pool_backward");
}

void head_forward(float* logits, const float* feat, const float* w, const float* b, const float* w_dist,
                  const float* b_dist, int B, const VitConfig& c, const Ctx& ctx) {
  const int hin = head_inputs(c), D = c.dim, K = c.num_classes;
  const float scale = c.dist_token ? 0.5f : 1.0f;
  for (int h = 0; h < hin; ++h) {
    GemmArgs g;
    g.transB = true;
    g.M = B;
    g.N = K;
    g.K = D;
    g.alpha = scale;
    g.A = feat + int64_t(h) * D;
    g.lda = int64_t(hin) * D;
    g.B = h == 0 ? w : w_dist;
    g.ldb = D;
    g.beta = h == 0 ? 0.0f : 1.0f;
    g.C = logits;
    g.ldc = K;
    gemm(g, ctx.math, ctx.stream);
  }
  const int64_t n = int64_t(B) * K;
  k_head_bias<<<grid_for(n), kBlock, 0, ctx.stream>>>(logits, b, c.dist_token ? b_dist : nullptr, K, scale, n);
  CUDA_CHECK_LAUNCH("k_head_bias");
}

void head_backward(float* dfeat, float* dw, float* db, float* dw_dist, float* db_dist, const float* dlogits,
                   const float* feat, const float* w, const float* w_dist, int B, const VitConfig& c,
                   const Ctx& ctx) {
  const int hin = head_inputs(c), D = c.dim, K = c.num_classes;
  const float scale = c.dist_token ? 0.5f : 1.0f;
  for (int h = 0; h < hin; ++h) {
    GemmArgs g;  // dfeat[:, h] = scale · dlogits · W_h
    g.M = B;
    g.N = D;
    g.K = K;
    g.alpha = scale;
    g.A = dlogits;
    g.lda = K;
    g.B = h == 0 ? w : w_dist;
    g.ldb = D;
    g.C = dfeat + int64_t(h) * D;
    g.ldc = int64_t(hin) * D;
    gemm(g, ctx.math, ctx.stream);
    float* dW = h == 0 ? dw : dw_dist;
    float* dB = h == 0 ? db : db_dist;
    if (dW) {
      GemmArgs gw;  // dW_h += scale · dlogitsᵀ · feat[:, h]
      gw.transA = true;
      gw.M = K;
      gw.N = D;
      gw.K = B;
      gw.alpha = scale;
      gw.A = dlogits;
      gw.lda = K;
      gw.B = feat + int64_t(h) * D;
      gw.ldb = int64_t(hin) * D;
      gw.beta = 1.0f;
      gw.C = dW;
      gw.ldc = D;
      gemm(gw, ctx.math, ctx.stream);
    }
    if (dB) column_sum_accumulate(dB, dlogits, B, K, K, scale, ctx);
  }
}

}  // namespace spdfq::cuda
