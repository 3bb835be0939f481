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

// S = U·Uᵀ [P, P].
void similarities(float* S, const float* U, int P, int hd) {
  if (P == 0) return;
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

// The rows compared among themselves, per group (window): group g is
// rows[start[g] … start[g+1]), row indices within one image's windows·N rows.
struct Groups {
  std::vector<int> start{0}, rows;
  int64_t pairs = 0;  // M = Σ_g n_g², the similarities of one image
};
Groups groups_of(const PatchSimilarityShape& s) {
  Groups g;
  for (int w = 0; w < s.windows; ++w) {
    for (int t = s.slots ? 0 : s.prefix; t < s.N; ++t)
      if (!s.slots || s.slots[int64_t(w) * s.N + t] >= 0) g.rows.push_back(w * s.N + t);
    const int n = int(g.rows.size()) - g.start.back();
    g.pairs += int64_t(n) * n;
    g.start.push_back(int(g.rows.size()));
  }
  return g;
}

// Unit patch features U [n, hd] of the rows `rows` of image b (av_b) and the norms of F.
void unit_features(float* U, float* norms, const float* av_b, const int* rows, int n, const PatchSimilarityShape& s) {
  const int hd = s.D / s.H;
  const float invH = 1.0f / float(s.H);
  for (int i = 0; i < n; ++i) {
    const float* row = av_b + int64_t(rows[i]) * s.D;
    float* u = U + int64_t(i) * hd;
    double n2 = 0.0;
    for (int j = 0; j < hd; ++j) {
      float f = 0.0f;
      for (int h = 0; h < s.H; ++h) f += row[h * hd + j];
      u[j] = f * invH;
      n2 += double(u[j]) * u[j];
    }
    const float nrm = std::max(float(std::sqrt(n2)), kNormEps);
    norms[i] = nrm;
    const float inv = 1.0f / nrm;
    for (int j = 0; j < hd; ++j) u[j] *= inv;
  }
}

// Every group's unit features (U, norms: the groups' rows back to back) and similarities
// (S: each group's n_g × n_g block back to back) for image b.
void image_similarities(float* U, float* norms, float* S, const float* av_b, const Groups& g,
                        const PatchSimilarityShape& s) {
  const int hd = s.D / s.H;
  int64_t off = 0;
  for (size_t k = 0; k + 1 < g.start.size(); ++k) {
    const int r0 = g.start[k], n = g.start[k + 1] - r0;
    unit_features(U + int64_t(r0) * hd, norms + r0, av_b, g.rows.data() + r0, n, s);
    similarities(S + off, U + int64_t(r0) * hd, n, hd);
    off += int64_t(n) * n;
  }
}


}  // namespace

void patch_similarity_range(float* lo, float* hi, const float* av, const PatchSimilarityShape& s,
                            cpu::ThreadPool* pool) {
  const Groups g = groups_of(s);
  const int R = int(g.rows.size()), hd = s.D / s.H;
  std::vector<float> mins(s.B), maxs(s.B);
  for_images(s.B, pool, [&](int b) {
    std::vector<float> U(static_cast<size_t>(R) * hd), norms(R), S(static_cast<size_t>(g.pairs));
    image_similarities(U.data(), norms.data(), S.data(), av + int64_t(b) * s.windows * s.N * s.D, g, s);
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
  const Groups gr = groups_of(s);
  const int R = int(gr.rows.size()), hd = s.D / s.H;
  const int64_t M = gr.pairs;
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
    const float* av_b = av + int64_t(b) * s.windows * s.N * s.D;
    std::vector<float> U(static_cast<size_t>(R) * hd), norms(R), S(static_cast<size_t>(M));
    image_similarities(U.data(), norms.data(), S.data(), av_b, gr, s);
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
    // Per group: both S_ij and S_ji depend on F_i: G' = G + Gᵀ, then through the cosine:
    // dF_i = (1/|F_i|)·(Σ_j G'_ij u_j − (Σ_j G'_ij S_ij)·u_i). The diagonal term vanishes
    // (S_ii ≡ 1), as the formula gives by itself.
    const float out_scale = float(scale / s.H);  // F is the head mean: each head gets 1/H
    int64_t off = 0;
    for (size_t k = 0; k + 1 < gr.start.size(); ++k) {
      const int r0 = gr.start[k], P = gr.start[k + 1] - r0;
      if (P == 0) continue;
      const float* Sg = S.data() + off;
      const float* Gg = G.data() + off;
      off += int64_t(P) * P;
      const float* Ug = U.data() + int64_t(r0) * hd;
      std::vector<float> Gs(static_cast<size_t>(P) * P);
      for (int i = 0; i < P; ++i)
        for (int j = 0; j < P; ++j) Gs[int64_t(i) * P + j] = Gg[int64_t(i) * P + j] + Gg[int64_t(j) * P + i];
      std::vector<float> GU(static_cast<size_t>(P) * hd);
      cpu::GemmArgs g;
      g.M = P;
      g.N = hd;
      g.K = P;
      g.A = Gs.data();
      g.lda = P;
      g.B = Ug;
      g.ldb = hd;
      g.C = GU.data();
      g.ldc = hd;
      cpu::gemm(g);
      for (int i = 0; i < P; ++i) {
        double r = 0.0;
        for (int j = 0; j < P; ++j) r += double(Gs[int64_t(i) * P + j]) * Sg[int64_t(i) * P + j];
        const float inv_n = 1.0f / norms[r0 + i];
        const float* u = Ug + int64_t(i) * hd;
        const float* gu = GU.data() + int64_t(i) * hd;
        float* drow = dav + (int64_t(b) * s.windows * s.N + gr.rows[r0 + i]) * s.D;
        for (int j = 0; j < hd; ++j) {
          const float df = (gu[j] - float(r) * u[j]) * inv_n * out_scale;
          for (int hh = 0; hh < s.H; ++hh) drow[hh * hd + j] += df;
        }
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
