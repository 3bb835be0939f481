// Per-output-channel weight quantizers and the fake-quantized weight arena they produce.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/quantizer.h"

namespace spdfq::quant {

// One weight tensor as a [rows = out channels, cols = in] matrix inside the parameter
// arena (the patch conv [D, C, p, p] is [D, C·p·p]); one quantizer per row.
struct WeightQuant {
  std::string name;  // timm parameter name, e.g. "blocks.0.attn.qkv.weight"
  int64_t offset = 0;
  int64_t rows = 0, cols = 0;
  std::vector<TensorQuant> channels;
};

using WeightQuantTable = std::vector<WeightQuant>;

// qparams[w] = fake_quant(params[w]) row by row, for one tensor.
void apply_weight_quant(const WeightQuant& w, const float* params, float* qparams);

}  // namespace spdfq::quant
