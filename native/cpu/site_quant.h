// Fake quantization of one activation site on the CPU, shared by the ViT and the Swin
// models: a strided [rows, cols] view (row stride ld; q/k/v live inside the qkv rows)
// quantized in place over the thread pool.
#pragma once

#include <cstdint>

#include "../core/quantizer.h"
#include "exec.h"

namespace spdfq::cpu {

inline void fake_quant_rows(float* data, int64_t rows, int64_t cols, int64_t ld, const quant::TensorQuant& q,
                            const Exec& ex) {
  if (q.kind == quant::QuantKind::None) return;
  ex.parallel_rows(rows, [&](int64_t r0, int64_t r1, int) {
    if (ld == cols) {
      quant::fake_quant_tensor(data + r0 * ld, (r1 - r0) * cols, q);
    } else {
      for (int64_t r = r0; r < r1; ++r) quant::fake_quant_tensor(data + r * ld, cols, q);
    }
  });
}

}  // namespace spdfq::cpu
