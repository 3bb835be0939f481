// CudaVit forward: the quantization-site hooks, and the passes of core/vit_passes.h (the
// sequence CpuVit runs too) on the GPU op table.
#include "cuda_vit_impl.h"

#include <string>

#include "cuda_check.h"
#include "cuda_ops.h"

namespace spdfq::cuda {

const quant::TensorQuant* CudaVit::Impl::probs_quant(int block) const {
  if (!act_quant) return nullptr;
  const auto& q = act_quant->at(quant::Site::Probs, block);
  return q.kind == quant::QuantKind::None ? nullptr : &q;
}

void CudaVit::Impl::observe(quant::Site s, int block, const float* data, int64_t rows, int64_t cols, int64_t ld) {
  if (!observer) return;
  h_site.resize(size_t(rows * cols));
  CUDA_CHECK(cudaMemcpy2DAsync(h_site.data(), size_t(cols) * sizeof(float), data, size_t(ld) * sizeof(float),
                               size_t(cols) * sizeof(float), size_t(rows), cudaMemcpyDeviceToHost, stream));
  sync();
  observer(quant::SiteView{s, block, h_site.data(), rows, cols, cols});
}

void CudaVit::Impl::site(quant::Site s, int block, float* data, int64_t rows, int64_t cols, int64_t ld) {
  observe(s, block, data, rows, cols, ld);
  if (!act_quant) return;
  fake_quant(data, rows, cols, ld, act_quant->at(s, block), ctx());
}

const float* CudaVit::Impl::block_output(int l) const {
  return core::block_output(Ops{const_cast<Impl&>(*this), ctx()}, l);
}

void CudaVit::Impl::block_forward(int l, const float* x) {
  Ops ops{*this, ctx()};
  core::block_forward(ops, l, x);
}

void CudaVit::Impl::forward(const float* images, int b, const std::atomic<bool>* cancel) {
  if (b < 1) fail("E_TENSOR", "batch must be at least 1, received " + std::to_string(b));
  batch = 0;  // invalid until this pass completes
  ensure_arena(b);
  upload_params();
  batch = b;
  Ops ops{*this, ctx()};
  try {
    core::model_forward(ops, images, [&] { check_cancel(cancel); });
    sync();  // kernel faults surface here, inside this call
  } catch (...) {
    batch = 0;
    throw;
  }
}

}  // namespace spdfq::cuda
