// softmax of a vector that is zero except at a few classes, in closed form: the K − n
// zero entries share exp(0 − max) each, so no K-long exp loop is needed.
#include "soft_labels.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace spdfq::synth {

void soft_label_row(float* t, int K, const int32_t* classes, const float* logits, int n) {
  // Distinct classes with their (largest) logit.
  std::vector<std::pair<int32_t, double>> z;
  for (int i = 0; i < n; ++i) {
    auto it = std::find_if(z.begin(), z.end(), [&](const auto& e) { return e.first == classes[i]; });
    if (it == z.end())
      z.emplace_back(classes[i], double(logits[i]));
    else
      it->second = std::max(it->second, double(logits[i]));
  }
  double mx = 0.0;  // the zero logits count too
  for (const auto& e : z) mx = std::max(mx, e.second);
  const double zero_mass = std::exp(-mx);
  double sum = double(K - int(z.size())) * zero_mass;
  for (const auto& e : z) sum += std::exp(e.second - mx);
  const float base = float(zero_mass / sum);
  for (int k = 0; k < K; ++k) t[k] = base;
  for (const auto& e : z) t[e.first] = float(std::exp(e.second - mx) / sum);
}

}  // namespace spdfq::synth
