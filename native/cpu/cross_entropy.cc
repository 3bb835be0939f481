// Cross-entropy with hard labels and with soft targets (SPDFQ's soft-label learning),
// mean over the batch (or over `mean_over` samples, ops.h). Log-softmax in double: K can
// be 1000 and losses are reported.
#include <cmath>
#include <vector>

#include "ops.h"

namespace spdfq::cpu {

namespace {
// log Σ exp(z) for one row, and softmax into p.
double log_softmax_row(const float* z, int K, double* p) {
  double mx = z[0];
  for (int k = 1; k < K; ++k) mx = z[k] > mx ? z[k] : mx;
  double s = 0.0;
  for (int k = 0; k < K; ++k) {
    p[k] = std::exp(double(z[k]) - mx);
    s += p[k];
  }
  for (int k = 0; k < K; ++k) p[k] /= s;
  return mx + std::log(s);
}
}  // namespace

double cross_entropy_hard(float* dlogits, const float* logits, const int32_t* labels, int B, int K, int mean_over) {
  const int n = mean_over > 0 ? mean_over : B;
  std::vector<double> p(K);
  double loss = 0.0;
  for (int b = 0; b < B; ++b) {
    const float* z = logits + int64_t(b) * K;
    const double lse = log_softmax_row(z, K, p.data());
    const int y = labels[b];
    loss += lse - z[y];
    if (dlogits)
      for (int k = 0; k < K; ++k) dlogits[int64_t(b) * K + k] = float((p[k] - (k == y ? 1.0 : 0.0)) / n);
  }
  return loss / n;
}

double cross_entropy_soft(float* dlogits, const float* logits, const float* targets, int B, int K, int mean_over) {
  const int n = mean_over > 0 ? mean_over : B;
  std::vector<double> p(K);
  double loss = 0.0;
  for (int b = 0; b < B; ++b) {
    const float* z = logits + int64_t(b) * K;
    const float* t = targets + int64_t(b) * K;
    const double lse = log_softmax_row(z, K, p.data());
    double tsum = 0.0;
    for (int k = 0; k < K; ++k) {
      loss -= t[k] * (double(z[k]) - lse);
      tsum += t[k];
    }
    // d/dz of −Σ t·log softmax(z) is softmax·Σt − t (Σt = 1 up to rounding).
    if (dlogits)
      for (int k = 0; k < K; ++k) dlogits[int64_t(b) * K + k] = float((p[k] * tsum - t[k]) / n);
  }
  return loss / n;
}

}  // namespace spdfq::cpu
