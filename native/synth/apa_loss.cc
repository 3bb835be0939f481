// APA loss and its attention-tap gradient (derivation in apa_loss.h). Sums in double:
// the map entries are ~1/P and their squared errors ~1/P², far below float's resolution
// of a running sum over many images.
#include "apa_loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace spdfq::synth {

namespace {
// c_j for one (image, head): the attention mass each patch column receives from Q.
void column_mass(double* c, const float* att_bh, int N, int prefix, ApaQuery q) {
  const int P = N - prefix;
  for (int j = 0; j < P; ++j) c[j] = 0.0;
  const int i_end = q == ApaQuery::Class ? 1 : N;
  for (int i = 0; i < i_end; ++i) {
    const float* row = att_bh + int64_t(i) * N + prefix;
    for (int j = 0; j < P; ++j) c[j] += row[j];
  }
}
// Smallest map entry the KL form divides by: a softmax probability that underflowed to 0
// would otherwise give an infinite loss and gradient (the priors are strictly positive).
constexpr double kKlFloor = 1e-30;

// ℓ(a, p) over one map, with g_j = dℓ/da_j written to g (see apa_loss.h).
double map_loss(double* g, const double* a, const float* p, int P, ApaLoss form) {
  double loss = 0.0;
  switch (form) {
    case ApaLoss::Mse:
      for (int j = 0; j < P; ++j) {
        const double d = a[j] - double(p[j]);
        loss += d * d;
        g[j] = 2.0 * d / P;
      }
      return loss / P;
    case ApaLoss::RelativeMse: {
      double pp = 0.0;
      for (int j = 0; j < P; ++j) pp += double(p[j]) * p[j];
      const double inv = pp > 0.0 ? 1.0 / pp : 0.0;
      for (int j = 0; j < P; ++j) {
        const double d = a[j] - double(p[j]);
        loss += d * d;
        g[j] = 2.0 * d * inv;
      }
      return loss * inv;
    }
    case ApaLoss::Kl:
      for (int j = 0; j < P; ++j) {
        const double pj = p[j];
        const double aj = std::max(a[j], kKlFloor);
        if (pj > 0.0) loss += pj * std::log(pj / aj);
        g[j] = -pj / aj;
      }
      return loss;
  }
  return 0.0;
}
}  // namespace

void apa_attention_maps(float* maps, const float* att, int B, int H, int N, int prefix, ApaQuery q) {
  const int P = N - prefix;
  std::vector<double> c(P);
  for (int64_t bh = 0; bh < int64_t(B) * H; ++bh) {
    column_mass(c.data(), att + bh * N * N, N, prefix, q);
    double s = 0.0;
    for (int j = 0; j < P; ++j) s += c[j];
    const double inv = s > 0.0 ? 1.0 / s : 0.0;
    for (int j = 0; j < P; ++j) maps[bh * P + j] = float(c[j] * inv);
  }
}

double apa_loss(float* datt, const float* att, const float* priors, int64_t prior_image_stride, int B, int H, int N,
                int prefix, ApaQuery q, ApaLoss form, double scale) {
  const int P = N - prefix;
  std::vector<double> c(P), a(P), g(P);
  double loss = 0.0;
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      const int64_t bh = int64_t(b) * H + h;
      const float* prior = priors + b * prior_image_stride + int64_t(h) * P;
      column_mass(c.data(), att + bh * N * N, N, prefix, q);
      double s = 0.0;
      for (int j = 0; j < P; ++j) s += c[j];
      // Softmax rows are positive, so s > 0 unless every probability underflowed to 0.
      const double inv = s > 0.0 ? 1.0 / s : 0.0;
      for (int j = 0; j < P; ++j) a[j] = c[j] * inv;
      loss += map_loss(g.data(), a.data(), prior, P, form);
      if (!datt) continue;
      double ga = 0.0;
      for (int j = 0; j < P; ++j) ga += g[j] * a[j];
      const int i_end = q == ApaQuery::Class ? 1 : N;
      for (int i = 0; i < i_end; ++i) {
        float* drow = datt + (bh * N + i) * N + prefix;
        for (int j = 0; j < P; ++j) drow[j] += float(scale * (g[j] - ga) * inv);
      }
    }
  return loss;
}

double window_apa_loss(float* datt, const float* att, const float* prior_maps, int64_t prior_image_stride, int B,
                       int H, int nW, int N, const int32_t* slots, int grid_tokens, ApaLoss form, double scale) {
  std::vector<int> rows(N);  // the window's real rows (= its real columns)
  std::vector<double> c(N), a(N), g(N);
  std::vector<float> p(N);
  const double per_window = 1.0 / nW;
  double loss = 0.0;
  for (int w = 0; w < nW; ++w) {
    const int32_t* src = slots + int64_t(w) * N;
    int n = 0;
    for (int t = 0; t < N; ++t)
      if (src[t] >= 0) rows[n++] = t;
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < H; ++h) {
        const float* map = prior_maps + b * prior_image_stride + int64_t(h) * grid_tokens;
        double ps = 0.0;
        for (int j = 0; j < n; ++j) ps += map[src[rows[j]]];
        // A window that sits where the prior underflowed to 0 gets the uniform map.
        for (int j = 0; j < n; ++j) p[j] = ps > 0.0 ? float(map[src[rows[j]]] / ps) : float(1.0 / n);
        const int64_t bwh = (int64_t(b) * nW + w) * H + h;
        const float* att_bwh = att + bwh * N * N;
        for (int j = 0; j < n; ++j) c[j] = 0.0;
        for (int i = 0; i < n; ++i) {
          const float* row = att_bwh + int64_t(rows[i]) * N;
          for (int j = 0; j < n; ++j) c[j] += row[rows[j]];
        }
        double s = 0.0;
        for (int j = 0; j < n; ++j) s += c[j];
        const double inv = s > 0.0 ? 1.0 / s : 0.0;
        for (int j = 0; j < n; ++j) a[j] = c[j] * inv;
        loss += per_window * map_loss(g.data(), a.data(), p.data(), n, form);
        if (!datt) continue;
        double ga = 0.0;
        for (int j = 0; j < n; ++j) ga += g[j] * a[j];
        float* d_bwh = datt + bwh * N * N;
        for (int i = 0; i < n; ++i) {
          float* drow = d_bwh + int64_t(rows[i]) * N;
          for (int j = 0; j < n; ++j) drow[rows[j]] += float(scale * per_window * (g[j] - ga) * inv);
        }
      }
  }
  return loss;
}

}  // namespace spdfq::synth
