// The Swin backward on the GPU: core/swin_passes.h's sequence (the one CpuSwin runs) on the
// CUDA op table, and the sizes of what it needs beyond the forward.
#include "fast_math_cuda.h"  // first: see there
#include "cuda_swin_ops.h"

#include <algorithm>

#include "cuda_check.h"

namespace spdfq::cuda {

int64_t swin_att_scratch_floats(const SwinConfig& c, int batch) {
  int64_t most = 0;
  for (int s = 0; s < c.stages(); ++s)
    most = std::max(most, int64_t(batch) * c.windows(s) * c.heads[size_t(s)] * c.window_tokens() * c.window_tokens());
  return most;
}

int64_t swin_reduce_scratch_floats(const SwinConfig& c) {
  int64_t widest = c.num_classes;
  for (int s = 0; s < c.stages(); ++s)
    widest = std::max({widest, int64_t(4) * c.dim(s), int64_t(c.mlp_dim(s))});
  return reduce_scratch_floats(widest);
}

void SwinOps::zero(float* p, int64_t n) const {
  if (n > 0) CUDA_CHECK(cudaMemsetAsync(p, 0, size_t(n) * sizeof(float), cx.stream));
}

void swin_backward(SwinDeviceModel& m, const float* dlogits, float* dimages, SwinParams* gp,
                   const std::vector<const float*>& tap_att, const Ctx& ctx) {
  SwinOps ops{m, ctx};
  core::swin_model_backward(
      ops, dlogits, dimages, gp,
      [&](int l) { return core::SwinBlockTaps{tap_att.empty() ? nullptr : tap_att[size_t(l)], nullptr}; }, [] {});
}

}  // namespace spdfq::cuda
