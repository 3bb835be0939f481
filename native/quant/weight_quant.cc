#include "weight_quant.h"

#include <cstring>

namespace spdfq::quant {

void apply_weight_quant(const WeightQuant& w, const float* params, float* qparams) {
  for (int64_t r = 0; r < w.rows; ++r) {
    const int64_t at = w.offset + r * w.cols;
    std::memcpy(qparams + at, params + at, sizeof(float) * size_t(w.cols));
    fake_quant_tensor(qparams + at, w.cols, w.channels[size_t(r)]);
  }
}

}  // namespace spdfq::quant
