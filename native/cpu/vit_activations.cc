#include "vit_activations.h"

#include "ops.h"

namespace spdfq::cpu {

int64_t plan_activations(const VitConfig& c, int batch, int threads, bool quant, float* arena, VitActs* a,
                         VitGrads* g) {
  // Bump allocation over the arena; every tensor starts on a 64-byte boundary.
  int64_t used = 0;
  auto take = [&](int64_t n) {
    float* p = arena ? arena + used : nullptr;
    used += (n + 15) / 16 * 16;
    return p;
  };
  plan_model_activations(c, batch, quant, attention_scratch_floats(c.tokens(), threads), take, a, g);
  return used;
}

}  // namespace spdfq::cpu
