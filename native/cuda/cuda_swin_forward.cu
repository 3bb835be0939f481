// The Swin forward on the GPU: core/swin_passes.h's sequence (the one CpuSwin runs) on the
// CUDA op table.
#include "fast_math_cuda.h"  // first: see there
#include "cuda_swin_ops.h"

namespace spdfq::cuda {

void swin_forward(SwinDeviceModel& m, const float* images, const Ctx& ctx) {
  SwinOps ops{m, ctx};
  core::swin_model_forward(ops, images, [] {});
}

}  // namespace spdfq::cuda
