// CudaVit backward: the weight-gradient arena, host tap staging, and the passes of
// core/vit_passes.h (the sequence CpuVit runs too) on the GPU op table.
#include "cuda_vit_impl.h"

#include <utility>

#include "cuda_check.h"
#include "cuda_ops.h"

namespace spdfq::cuda {

VitParams* CudaVit::Impl::begin_weight_grads() {
  if (!d_grads) {
    d_grads = DeviceBuffer(nparams * int64_t(sizeof(float)), "weight gradients");
    gp = bind_params(c, d_grads.floats());
  }
  zero(d_grads.floats(), nparams);
  return &gp;
}

void CudaVit::Impl::block_backward(int l, const float* x, VitParams* gpp) {
  Ops ops{*this, ctx()};
  core::block_backward(ops, l, x, nullptr, nullptr, gpp);
}

void CudaVit::Impl::backward(const float* dlogits, const TapGrads& taps, bool taps_on_host, float* dimages,
                             bool weight_grads, const std::atomic<bool>* cancel) {
  if (batch == 0) fail("E_STATE", "backward needs a completed forward pass on this model first");
  upload_params();
  VitParams* gpp = weight_grads ? begin_weight_grads() : nullptr;
  if (weight_grads) grads_on_device = true;
  const int64_t att_n = int64_t(batch) * c.heads * c.tokens() * c.tokens();
  const int64_t av_n = int64_t(batch) * c.tokens() * c.dim;
  auto tap = [&](int l) {
    const float* ta = size_t(l) < taps.attn.size() ? taps.attn[size_t(l)] : nullptr;
    const float* tv = size_t(l) < taps.av.size() ? taps.av[size_t(l)] : nullptr;
    if (taps_on_host) {  // staged one block at a time; the stream orders reuse of the slots
      if (ta) {
        upload(io.tap_attn, ta, att_n);
        ta = io.tap_attn;
      }
      if (tv) {
        upload(io.tap_av, tv, av_n);
        tv = io.tap_av;
      }
    }
    return std::pair<const float*, const float*>{ta, tv};
  };
  Ops ops{*this, ctx()};
  core::model_backward(ops, dlogits, dimages, gpp, tap, [&] { check_cancel(cancel); });
  sync();
}

}  // namespace spdfq::cuda
