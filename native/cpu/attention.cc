// Multi-head self-attention core: probabilities P = softmax(q·kᵀ/√hd) per (image, head),
// then P·v. The fast path runs each (image, head) pair as its own task with two small
// single-threaded GEMMs reading q/k/v in place inside the [tokens, 3D] qkv rows (strided,
// no copies); the reference path is the textbook triple loop. P is always materialized:
// backward needs it, and it is the tap the attention-prior (APA) loss reads.
#include <cmath>
#include <vector>

#include "../core/fast_math.h"
#include "head_gemms.h"
#include "ops.h"
#include "row_kernels.h"

namespace spdfq::cpu {

namespace {

void attention_forward_ref(float* av, float* att, const float* qkv, int B, int N, int H, int hd,
                           const quant::TensorQuant* probs_q, float* att_q) {
  const int D = H * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < N; ++i) {
        const float* q = qkv + (int64_t(b) * N + i) * 3 * D + h * hd;
        float* p = att + ((int64_t(b) * H + h) * N + i) * N;
        double mx = -INFINITY;
        std::vector<double> s(N);
        for (int j = 0; j < N; ++j) {
          const float* k = qkv + (int64_t(b) * N + j) * 3 * D + D + h * hd;
          double dot = 0.0;
          for (int d = 0; d < hd; ++d) dot += double(q[d]) * k[d];
          s[j] = dot * scale;
          mx = s[j] > mx ? s[j] : mx;
        }
        double sum = 0.0;
        for (int j = 0; j < N; ++j) sum += (s[j] = std::exp(s[j] - mx));
        for (int j = 0; j < N; ++j) p[j] = float(s[j] / sum);
        if (probs_q) {
          float* pq = att_q + ((int64_t(b) * H + h) * N + i) * N;
          for (int j = 0; j < N; ++j) pq[j] = p[j];
          quant::fake_quant_tensor(pq, N, *probs_q);
          p = pq;
        }
        float* o = av + (int64_t(b) * N + i) * D + h * hd;
        for (int d = 0; d < hd; ++d) {
          double acc = 0.0;
          for (int j = 0; j < N; ++j) acc += double(p[j]) * qkv[(int64_t(b) * N + j) * 3 * D + 2 * D + h * hd + d];
          o[d] = float(acc);
        }
      }
}

void attention_backward_ref(float* dqkv, const float* dav, const float* datt_extra, const float* att,
                            const float* att_pv, const float* qkv, int B, int N, int H, int hd) {
  const int D = H * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  std::vector<double> dp(N), ds(N);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < N; ++i) {
        const float* p = att + ((int64_t(b) * H + h) * N + i) * N;
        const float* ppv = att_pv + ((int64_t(b) * H + h) * N + i) * N;
        const float* go = dav + (int64_t(b) * N + i) * D + h * hd;
        double dot = 0.0;
        for (int j = 0; j < N; ++j) {
          const float* v = qkv + (int64_t(b) * N + j) * 3 * D + 2 * D + h * hd;
          float* dv = dqkv + (int64_t(b) * N + j) * 3 * D + 2 * D + h * hd;
          double acc = 0.0;
          for (int d = 0; d < hd; ++d) {
            acc += double(go[d]) * v[d];
            dv[d] += ppv[j] * go[d];
          }
          if (datt_extra) acc += datt_extra[((int64_t(b) * H + h) * N + i) * N + j];
          dp[j] = acc;
          dot += acc * p[j];
        }
        for (int j = 0; j < N; ++j) ds[j] = p[j] * (dp[j] - dot) * scale;
        const float* q = qkv + (int64_t(b) * N + i) * 3 * D + h * hd;
        float* dq = dqkv + (int64_t(b) * N + i) * 3 * D + h * hd;
        for (int j = 0; j < N; ++j) {
          const float* k = qkv + (int64_t(b) * N + j) * 3 * D + D + h * hd;
          float* dk = dqkv + (int64_t(b) * N + j) * 3 * D + D + h * hd;
          for (int d = 0; d < hd; ++d) {
            dq[d] += float(ds[j] * k[d]);
            dk[d] += float(ds[j] * q[d]);
          }
        }
      }
}

}  // namespace

void attention_forward(float* av, float* att, const float* qkv, int B, int N, int H, int hd, const Exec& ex,
                       const quant::TensorQuant* probs_q, float* att_q) {
  if (ex.reference) {
    attention_forward_ref(av, att, qkv, B, N, H, hd, probs_q, att_q);
    return;
  }
  const int D = H * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  ex.parallel(int64_t(B) * H, [&](int64_t t, int) {
    const int64_t b = t / H, h = t % H;
    const float* base = qkv + b * N * 3 * D + h * hd;
    float* P = att + t * N * N;
    head_scores(P, base, N, hd, D, scale, ex.gemm);
    row_kernels().softmax_rows(P, N, N);
    const float* Ppv = P;
    if (probs_q) {
      float* Q = att_q + t * N * N;
      for (int64_t i = 0; i < int64_t(N) * N; ++i) Q[i] = P[i];
      quant::fake_quant_tensor(Q, int64_t(N) * N, *probs_q);
      Ppv = Q;
    }
    head_values(av + b * N * D + h * hd, Ppv, base, N, hd, D, ex.gemm);
  });
}

int64_t attention_scratch_floats(int N, int threads) { return int64_t(threads) * N * N; }

void attention_backward(float* dqkv, const float* dav, const float* datt_extra, const float* att, const float* att_pv,
                        const float* qkv, int B, int N, int H, int hd, float* scratch, const Exec& ex) {
  if (ex.reference) {
    attention_backward_ref(dqkv, dav, datt_extra, att, att_pv, qkv, B, N, H, hd);
    return;
  }
  const int D = H * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  ex.parallel(int64_t(B) * H, [&](int64_t t, int worker) {
    const int64_t b = t / H, h = t % H;
    const float* base = qkv + b * N * 3 * D + h * hd;
    float* dbase = dqkv + b * N * 3 * D + h * hd;
    const float* P = att + t * N * N;
    const float* dO = dav + b * N * D + h * hd;
    float* dP = scratch + int64_t(worker) * N * N;

    GemmArgs g1;  // dP = dO·Vᵀ (+ the injected tap gradient)
    g1.transB = true;
    g1.M = N;
    g1.N = N;
    g1.K = hd;
    g1.A = dO;
    g1.lda = D;
    g1.B = base + 2 * D;
    g1.ldb = 3 * D;
    g1.C = dP;
    g1.ldc = N;
    if (datt_extra) {
      const float* e = datt_extra + t * N * N;
      for (int64_t i = 0; i < int64_t(N) * N; ++i) dP[i] = e[i];
      g1.beta = 1.0f;
    }
    gemm(g1, ex.gemm);

    GemmArgs g2;  // dV += P̂ᵀ·dO (P̂: the probabilities P·v used)
    g2.transA = true;
    g2.M = N;
    g2.N = hd;
    g2.K = N;
    g2.A = att_pv + t * N * N;
    g2.lda = N;
    g2.B = dO;
    g2.ldb = D;
    g2.C = dbase + 2 * D;
    g2.ldc = 3 * D;
    g2.beta = 1.0f;
    gemm(g2, ex.gemm);

    // Softmax backward in place: dS = P ⊙ (dP − Σ_j P·dP).
    row_kernels().softmax_backward_rows(dP, P, N, N);

    GemmArgs g3;  // dQ += scale · dS·K
    g3.M = N;
    g3.N = hd;
    g3.K = N;
    g3.alpha = scale;
    g3.A = dP;
    g3.lda = N;
    g3.B = base + D;
    g3.ldb = 3 * D;
    g3.C = dbase;
    g3.ldc = 3 * D;
    g3.beta = 1.0f;
    gemm(g3, ex.gemm);

    GemmArgs g4;  // dK += scale · dSᵀ·Q
    g4.transA = true;
    g4.M = N;
    g4.N = hd;
    g4.K = N;
    g4.alpha = scale;
    g4.A = dP;
    g4.lda = N;
    g4.B = base;
    g4.ldb = 3 * D;
    g4.C = dbase + D;
    g4.ldc = 3 * D;
    g4.beta = 1.0f;
    gemm(g4, ex.gemm);
  });
}

}  // namespace spdfq::cpu
