// The CPU's activation arena: the model's layout (core/activations.h) carved from one
// host allocation per batch size, with the attention backward's scratch sized as one
// N×N tile per thread.
#pragma once

#include <cstdint>

#include "../core/activations.h"

namespace spdfq::cpu {

using spdfq::BlockActs;
using spdfq::head_inputs;
using spdfq::TapGrads;
using spdfq::VitActs;
using spdfq::VitGrads;

// Plans the arena for `batch`: with arena == nullptr only counts; returns floats needed.
// quant adds the quantized copies (attention probabilities; post-norm block inputs).
int64_t plan_activations(const VitConfig& c, int batch, int threads, bool quant, float* arena, VitActs* acts,
                         VitGrads* grads);

}  // namespace spdfq::cpu
