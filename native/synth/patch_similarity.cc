// Patch-similarity entropy and its gradient at the A·V tap. One task per image (each image
// owns its rows of dav, so threads never write the same memory and results do not depend
// on the thread count); the P×P products go through the engine's single-threaded GEMM.
#include "patch_similarity.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/fast_math.h"
#include "../cpu/gemm.h"

namespace spdfq::synth {

namespace {

// PyTorch's cosine_similarity guards the norms with eps = 1e-8.
constexpr float kNormEps = 1e-8f;

template <class F>
void for_images(int B, cpu::ThreadPool* pool, F&& fn) {
  if (pool && pool->threads() > 1 && B > 1)
    pool->parallel_for(B, [&](int64_t b, int) { fn(int(b)); });
  else
    for (int b = 0; b < B; ++b) fn(b);
}

// Unit patch features U [P, hd] and the norms of F for image b; returns nothing.
void unit_features(float* U, float* norms, const float* av_b, const PatchSimilarityShape& s) {
  const int P = s.N - s.prefix, hd = s.D / s.H;
  const float invH = 1.0f / float(s.H);
  for (int i = 0; i < P; ++i) {
    const float* row = av_b + int64_t(s.prefix + i) * s.D;
    float* u = U + int64_t(i) * hd;
    double n2 = 0.0;
    for (int j = 0; j < hd; ++j) {
      float f = 0.0f;
      for (int h = 0; h < s.H; ++h) f += row[h * hd + j];
      u[j] = f * invH;
      n2 += double(u[j]) * u[j];
    }
    const float n = std::max(float(std::sqrt(n2)), kNormEps);
    norms[i] = n;
    const float inv = 1.0f / n;
    for (int j = 0; j < hd; ++j) u[j] *= inv;
  }
}

// S = U·Uᵀ [P, P].
void similarities(float* S, const float* U, int P, int hd) {
  cpu::GemmArgs g;
  g.transB = true;
  g.M = P;
  g.N = P;
  g.K = hd;
  g.A = U;
  g.lda = hd;
  g.B = U;
  g.ldb = hd;
  g.C = S;
  g.ldc = P;
  cpu::gemm(g);
}

}  // namespace

void patch_similarity_range(float* lo, float* hi, const float* av, const PatchSimilarityShape& s,
                            cpu::ThreadPool* pool) {
  const int P = s.N - s.prefix, hd = s.D / s.H;
  std::vector<float> mins(s.B), maxs(s.B);
  for_images(s.B, pool, [&](int b) {
    std::vector<float> U(static_cast<size_t>(P) * hd), norms(P), S(static_cast<size_t>(P) * P);
    unit_features(U.data(), norms.data(), av + int64_t(b) * s.N * s.D, s);
    similarities(S.data(), U.data(), P, hd);
    const auto mm = std::minmax_element(S.begin(), S.end());
    mins[b] = *mm.first;
    maxs[b] = *mm.second;
  });
  *lo = *std::min_element(mins.begin(), mins.end());
  *hi = *std::max_element(maxs.begin(), maxs.end());
}

double patch_similarity_entropy(float* dav, double* per_image, const float* av, const PatchSimilarityShape& s,
                                float bandwidth, int points, float lo, float hi, double scale,
                                cpu::ThreadPool* pool) {
  const int P = s.N - s.prefix, hd = s.D / s.H;
  const int64_t M = int64_t(P) * P;
  const double h = bandwidth;
  const float inv2h2 = float(1.0 / (2.0 * h * h));
  const double coef = 1.0 / (h * std::sqrt(2.0 * 3.141592653589793));
  // torch.linspace(lo, hi, points) and the trapezoid weights for that grid.
  std::vector<float> t(points);
  std::vector<double> w(points);
  const double step = (double(hi) - double(lo)) / (points - 1);
  for (int k = 0; k < points; ++k) {
    t[k] = float(double(lo) + step * k);
    w[k] = (k == 0 || k == points - 1) ? 0.5 * step : step;
  }
  std::vector<double> H(s.B);
  for_images(s.B, pool, [&](int b) {
    std::vector<float> U(static_cast<size_t>(P) * hd), norms(P), S(static_cast<size_t>(M));
    unit_features(U.data(), norms.data(), av + int64_t(b) * s.N * s.D, s);
    similarities(S.data(), U.data(), P, hd);
    // Densities p_k.
    std::vector<double> p(points);
    for (int k = 0; k < points; ++k) {
      float acc = 0.0f;
      double total = 0.0;
      // Blocks of 1024 terms summed in float, then in double: vectorizes, stays accurate.
      for (int64_t m0 = 0; m0 < M; m0 += 1024) {
        const int64_t m1 = std::min(M, m0 + 1024);
        acc = 0.0f;
        for (int64_t m = m0; m < m1; ++m) {
          const float d = t[k] - S[m];
          acc += fast_exp(-d * d * inv2h2);
        }
        total += acc;
      }
      p[k] = coef * total / double(M);
    }
    double ent = 0.0;
    std::vector<float> c(points);  // dH/dp_k · coef / M / h²: folds every constant of dp_k/ds_m
    for (int k = 0; k < points; ++k) {
      const double q = p[k] + kEntropyDensityOffset;
      ent += w[k] * (-q * std::log(q));
      c[k] = float(w[k] * (-(std::log(q) + 1.0)) * coef / double(M) / (h * h));
    }
    H[b] = ent;
    if (!dav) return;
    // G_m = Σ_k c_k · exp(−(t_k − s_m)²/2h²) · (t_k − s_m) = dH/ds_m (the exponentials are
    // recomputed rather than stored: points × P² floats per image would dominate memory).
    std::vector<float> G(static_cast<size_t>(M), 0.0f);
    for (int k = 0; k < points; ++k) {
      const float ck = c[k], tk = t[k];
      for (int64_t m = 0; m < M; ++m) {
        const float d = tk - S[m];
        G[m] += ck * fast_exp(-d * d * inv2h2) * d;
      }
    }
    // Both S_ij and S_ji depend on F_i: G' = G + Gᵀ, then through the cosine:
    // dF_i = (1/|F_i|)·(Σ_j G'_ij u_j − (Σ_j G'_ij S_ij)·u_i). The diagonal term vanishes
    // (S_ii ≡ 1), as the formula gives by itself.
    std::vector<float> Gs(static_cast<size_t>(M));
    for (int i = 0; i < P; ++i)
      for (int j = 0; j < P; ++j) Gs[int64_t(i) * P + j] = G[int64_t(i) * P + j] + G[int64_t(j) * P + i];
    std::vector<float> GU(static_cast<size_t>(P) * hd);
    cpu::GemmArgs g;
    g.M = P;
    g.N = hd;
    g.K = P;
    g.A = Gs.data();
    g.lda = P;
    g.B = U.data();
    g.ldb = hd;
    g.C = GU.data();
    g.ldc = hd;
    cpu::gemm(g);
    const float out_scale = float(scale / s.H);  // F is the head mean: each head gets 1/H
    for (int i = 0; i < P; ++i) {
      double r = 0.0;
      for (int j = 0; j < P; ++j) r += double(Gs[int64_t(i) * P + j]) * S[int64_t(i) * P + j];
      const float inv_n = 1.0f / norms[i];
      const float* u = U.data() + int64_t(i) * hd;
      const float* gu = GU.data() + int64_t(i) * hd;
      float* drow = dav + (int64_t(b) * s.N + s.prefix + i) * s.D;
      for (int j = 0; j < hd; ++j) {
        const float df = (gu[j] - float(r) * u[j]) * inv_n * out_scale;
        for (int hh = 0; hh < s.H; ++hh) drow[hh * hd + j] += df;
      }
    }
  });
  double sum = 0.0;
  for (int b = 0; b < s.B; ++b) {
    sum += H[b];
    if (per_image) per_image[b] = H[b];
  }
  return sum;
}

}  // namespace spdfq::synth
