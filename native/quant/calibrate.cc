#include "calibrate.h"

#include <algorithm>
#include <cmath>

#include "../core/errors.h"

namespace spdfq::quant {

double quantile_inplace(std::vector<float>& v, double p) {
  const size_t n = v.size();
  if (n == 0) return 0.0;
  const double pos = p * double(n - 1);
  const size_t lo = size_t(std::floor(pos));
  const size_t hi = std::min(lo + 1, n - 1);
  std::nth_element(v.begin(), v.begin() + lo, v.end());
  const double a = v[lo];
  if (hi == lo) return a;
  // The next order statistic is the minimum of the part above lo.
  const double b = *std::min_element(v.begin() + lo + 1, v.end());
  return a + (b - a) * (pos - double(lo));
}

double quant_mse(const std::vector<float>& values, const TensorQuant& q) {
  if (values.empty()) return 0.0;
  double err = 0.0;
  const float levels = float(int64_t(1) << q.bits);
  for (float x : values) {
    const float y = q.kind == QuantKind::Log2 ? fake_quant_log2(x, q.scale, levels)
                                              : fake_quant_uniform(x, q.scale, q.zero, q.qmin, q.qmax);
    const double d = double(y) - x;
    err += d * d;
  }
  return err / double(values.size());
}

namespace {

TensorQuant log2_quantizer(float delta, int bits) {
  TensorQuant q;
  q.kind = QuantKind::Log2;
  q.bits = bits;
  q.scale = delta > 1e-12f ? delta : 1e-12f;
  q.zero = 0.0f;
  q.qmin = 0.0f;
  q.qmax = float((int64_t(1) << bits) - 1);
  return q;
}

}  // namespace

TensorQuant search_quantizer(std::vector<float> values, const SearchSpec& spec) {
  if (spec.bits < 2 || spec.bits > 16) fail("E_CONFIG", "quantizer bits must be in [2, 16], received " + std::to_string(spec.bits));
  for (float x : values)
    if (!std::isfinite(x)) fail("E_NUMERIC", "the values to quantize hold a NaN or Inf");
  if (values.empty()) return spec.kind == QuantKind::Log2 ? log2_quantizer(1.0f, spec.bits) : uniform_from_range(0, 0, spec.bits);

  // Candidate ranges: min/max first, then each percentile; ties keep the earlier (wider) one.
  std::vector<std::pair<double, double>> ranges;
  std::vector<float> work = values;
  const auto mm = std::minmax_element(values.begin(), values.end());
  ranges.emplace_back(*mm.first, *mm.second);
  if (spec.method == RangeMethod::PercentileMse) {
    for (double p : spec.percentiles) {
      if (spec.symmetric || spec.kind == QuantKind::Log2) {
        for (size_t i = 0; i < work.size(); ++i) work[i] = std::fabs(values[i]);
        const double a = quantile_inplace(work, p);
        ranges.emplace_back(-a, a);
      } else {
        work = values;
        const double lo = quantile_inplace(work, 1.0 - p);
        const double hi = quantile_inplace(work, p);
        ranges.emplace_back(lo, hi);
      }
    }
  }
  TensorQuant best;
  double best_err = INFINITY;
  for (const auto& r : ranges) {
    TensorQuant q;
    if (spec.kind == QuantKind::Log2) {
      q = log2_quantizer(float(std::max(std::fabs(r.first), std::fabs(r.second))), spec.bits);
    } else if (spec.symmetric) {
      q = symmetric_from_absmax(float(std::max(std::fabs(r.first), std::fabs(r.second))), spec.bits);
    } else {
      q = uniform_from_range(float(r.first), float(r.second), spec.bits);
    }
    const double err = quant_mse(values, q);
    if (err < best_err) {
      best_err = err;
      best = q;
    }
  }
  return best;
}

std::vector<TensorQuant> search_per_channel(const float* data, int64_t rows, int64_t cols, int axis,
                                            const SearchSpec& spec) {
  const int64_t channels = axis == 0 ? rows : cols, len = axis == 0 ? cols : rows;
  std::vector<TensorQuant> out(static_cast<size_t>(channels));
  std::vector<float> v(static_cast<size_t>(len));
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t i = 0; i < len; ++i) v[size_t(i)] = axis == 0 ? data[c * cols + i] : data[i * cols + c];
    out[size_t(c)] = search_quantizer(v, spec);
  }
  return out;
}

}  // namespace spdfq::quant
