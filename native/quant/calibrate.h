// Choosing quantizer parameters from data: MinMax, and RepQ-ViT's percentile search —
// candidate ranges (quantile(1−p), quantile(p)) for p in {0.999, 0.9999, 0.99999}, the
// one with the lowest mean squared quantization error wins — for uniform quantizers
// (per tensor or per channel, asymmetric or symmetric) and for log√2 (its Δ).
#pragma once

#include <cstdint>
#include <vector>

#include "../core/quantizer.h"

namespace spdfq::quant {

enum class RangeMethod : int32_t { MinMax = 0, PercentileMse = 1 };

// Set by the binding from lib/quant/quant-config.ts (the defaults and their sources live there).
struct SearchSpec {
  QuantKind kind{};
  int bits{};
  bool symmetric{};  // zero point 0 on the signed grid (TensorRT); else asymmetric unsigned
  RangeMethod method{};
  // Candidate percentiles (RepQ-ViT's 0.999, 0.9999, 0.99999 by default); MinMax is always a candidate too.
  std::vector<double> percentiles;
};

// Quantile with linear interpolation between order statistics (numpy/torch 'linear'):
// position p·(n−1) in the sorted values. `values` is reordered (nth_element).
double quantile_inplace(std::vector<float>& values, double p);

// Best quantizer for one set of values (all of a tensor, or one channel).
TensorQuant search_quantizer(std::vector<float> values, const SearchSpec& spec);

// Mean squared error of fake-quantizing `values` with q.
double quant_mse(const std::vector<float>& values, const TensorQuant& q);

// Per-channel search over a [rows, cols] matrix: channel = row (axis 0, weights [out, in])
// or column (axis 1, activations [tokens, features]).
std::vector<TensorQuant> search_per_channel(const float* data, int64_t rows, int64_t cols, int axis,
                                            const SearchSpec& spec);

}  // namespace spdfq::quant
