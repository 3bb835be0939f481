// Pooling, the classification head and the token sequence on the CPU: the class (and
// distillation) token(s) or the mean of the patch tokens (or of all tokens); logits = scale·Σ_h feat_h·W_hᵀ +
// scale·Σ_h b_h with scale ½ for a distilled DeiT (its two heads averaged); the prefix
// tokens and the position embedding in front of the patch projections.
#include <cstring>

#include "../core/activations.h"
#include "exec.h"
#include "ops.h"

namespace spdfq::cpu {

void pool_forward(float* pooled, const float* tokens, int B, const VitConfig& c, const Exec& ex) {
  const int N = c.tokens(), D = c.dim, hin = head_inputs(c), pre = c.pool_start();
  for (int b = 0; b < B; ++b) {
    float* out = pooled + int64_t(b) * hin * D;
    const float* img = tokens + int64_t(b) * N * D;
    if (c.pooling == Pooling::Token) {
      std::memcpy(out, img, sizeof(float) * size_t(hin) * D);  // class (and distillation) token
    } else {
      std::memset(out, 0, sizeof(float) * size_t(D));
      for (int n = pre; n < N; ++n)
        for (int i = 0; i < D; ++i) out[i] += img[int64_t(n) * D + i];
      const float inv = 1.0f / float(N - pre);
      for (int i = 0; i < D; ++i) out[i] *= inv;
    }
  }
}

void pool_backward(float* dtokens, const float* dpool, int B, const VitConfig& c, const Exec& ex) {
  const int N = c.tokens(), D = c.dim, hin = head_inputs(c), pre = c.pool_start();
  std::memset(dtokens, 0, sizeof(float) * size_t(int64_t(B) * N * D));
  for (int b = 0; b < B; ++b) {
    const float* src = dpool + int64_t(b) * hin * D;
    float* img = dtokens + int64_t(b) * N * D;
    if (c.pooling == Pooling::Token) {
      for (int i = 0; i < hin * D; ++i) img[i] += src[i];
    } else {
      const float inv = 1.0f / float(N - pre);
      for (int n = pre; n < N; ++n)
        for (int i = 0; i < D; ++i) img[int64_t(n) * D + i] += src[i] * inv;
    }
  }
}

void head_forward(float* logits, const float* feat, const float* w, const float* b, const float* w_dist,
                  const float* b_dist, int B, const VitConfig& c, const Exec& ex) {
  const int D = c.dim, K = c.num_classes, hin = head_inputs(c);
  const float scale = c.dist_token ? 0.5f : 1.0f;
  for (int h = 0; h < hin; ++h) {
    GemmArgs g;
    g.transB = true;
    g.M = B;
    g.N = K;
    g.K = D;
    g.alpha = scale;
    g.A = feat + int64_t(h) * D;
    g.lda = hin * D;
    g.B = h == 0 ? w : w_dist;
    g.ldb = D;
    g.beta = h == 0 ? 0.0f : 1.0f;
    g.C = logits;
    g.ldc = K;
    gemm_parallel(ex, g);
  }
  for (int i = 0; i < B; ++i)
    for (int k = 0; k < K; ++k) logits[int64_t(i) * K + k] += scale * (b[k] + (c.dist_token ? b_dist[k] : 0.0f));
}

void head_backward(float* dfeat, float* dw, float* db, float* dw_dist, float* db_dist, const float* dlogits,
                   const float* feat, const float* w, const float* w_dist, int B, const VitConfig& c,
                   const Exec& ex) {
  const int D = c.dim, K = c.num_classes, hin = head_inputs(c);
  const float scale = c.dist_token ? 0.5f : 1.0f;
  std::memset(dfeat, 0, sizeof(float) * size_t(int64_t(B) * hin * D));
  for (int h = 0; h < hin; ++h) {
    GemmArgs g;  // dfeat[:, h] += scale · dlogits · W
    g.M = B;
    g.N = D;
    g.K = K;
    g.alpha = scale;
    g.A = dlogits;
    g.lda = K;
    g.B = h == 0 ? w : w_dist;
    g.ldb = D;
    g.beta = 1.0f;
    g.C = dfeat + int64_t(h) * D;
    g.ldc = hin * D;
    gemm_parallel(ex, g);
    float* dW = h == 0 ? dw : dw_dist;
    float* dB = h == 0 ? db : db_dist;
    if (dW) {
      GemmArgs gw;  // dW += scale · dlogitsᵀ · feat[:, h]
      gw.transA = true;
      gw.M = K;
      gw.N = D;
      gw.K = B;
      gw.alpha = scale;
      gw.A = dlogits;
      gw.lda = K;
      gw.B = feat + int64_t(h) * D;
      gw.ldb = hin * D;
      gw.beta = 1.0f;
      gw.C = dW;
      gw.ldc = D;
      gemm_parallel(ex, gw);
    }
    if (dB)
      for (int i = 0; i < B; ++i)
        for (int k = 0; k < K; ++k) dB[k] += scale * dlogits[int64_t(i) * K + k];
  }
}

void embed_tokens(float* x0, const float* proj, const float* cls, const float* dist, const float* pos, int B,
                  const VitConfig& c, const Exec& ex) {
  const int N = c.tokens(), D = c.dim, P = c.patches(), pre = c.prefix();
  for (int b = 0; b < B; ++b)
    for (int n = 0; n < N; ++n) {
      const float* src = n == 0 && c.class_token ? cls : n == 1 && c.dist_token ? dist : proj + (int64_t(b) * P + (n - pre)) * D;
      float* dst = x0 + (int64_t(b) * N + n) * D;
      const float* p = pos + int64_t(n) * D;
      for (int i = 0; i < D; ++i) dst[i] = src[i] + p[i];
    }
}

void embed_tokens_backward(float* dproj, float* dpos, float* dcls, float* ddist, const float* dx0, int B,
                           const VitConfig& c, const Exec& ex) {
  const int N = c.tokens(), D = c.dim, P = c.patches(), pre = c.prefix();
  for (int b = 0; b < B; ++b)
    for (int n = 0; n < N; ++n) {
      const float* d = dx0 + (int64_t(b) * N + n) * D;
      if (dpos) {
        float* dp = dpos + int64_t(n) * D;
        for (int i = 0; i < D; ++i) dp[i] += d[i];
      }
      float* dtok = n == 0 && c.class_token ? dcls : n == 1 && c.dist_token ? ddist : nullptr;
      if (dtok)
        for (int i = 0; i < D; ++i) dtok[i] += d[i];
    }
  // The patch tokens' gradients gathered into contiguous rows [B·P, D].
  for (int b = 0; b < B; ++b)
    std::memcpy(dproj + int64_t(b) * P * D, dx0 + (int64_t(b) * N + pre) * D, sizeof(float) * size_t(P) * D);
}

}  // namespace spdfq::cpu
