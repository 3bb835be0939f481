// CudaVit: device, stream, weight arenas with host mirrors, the activation arena and its
// budget, transfers, and the public wrappers over the passes.
#include "cuda_vit_impl.h"

#include <cstring>
#include <string>

#include "cuda_check.h"

namespace spdfq::cuda {

namespace {
std::string mib(int64_t bytes) { return std::to_string((bytes + (int64_t(1) << 20) - 1) >> 20) + " MiB"; }
}  // namespace

// ------------------------------------------------------------------------------ Impl

CudaVit::Impl::Impl(const VitConfig& config, int dev) : c(config), device(dev) {
  c.validate();
  require_device(dev);
  DeviceGuard guard(dev);
  nparams = spdfq::param_count(c);
  h_params.assign(size_t(nparams), 0.0f);
  d_params = DeviceBuffer(nparams * int64_t(sizeof(float)), "parameters");
  p = bind_params(c, d_params.floats());
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
}

CudaVit::Impl::~Impl() {
  if (stream) {
    int now = -1;
    const bool switch_device = cudaGetDevice(&now) == cudaSuccess && now != device;
    if (switch_device) (void)cudaSetDevice(device);
    (void)cudaStreamSynchronize(stream);  // no work may outlive the buffers it uses
    (void)cudaStreamDestroy(stream);
    if (switch_device) (void)cudaSetDevice(now);
  }
}

void CudaVit::Impl::sync() const { CUDA_CHECK(cudaStreamSynchronize(stream)); }

void CudaVit::Impl::check_cancel(const std::atomic<bool>* cancel) const {
  if (!cancel) return;
  sync();  // the host runs ahead of the GPU: wait for the work so far, so a cancel is prompt
  if (cancel->load(std::memory_order_relaxed)) fail("E_CANCELLED", "cancelled");
}

const float* CudaVit::Impl::download(std::vector<float>* dst, const float* src, int64_t n) const {
  dst->resize(size_t(n));
  if (n > 0) {
    CUDA_CHECK(cudaMemcpyAsync(dst->data(), src, size_t(n) * sizeof(float), cudaMemcpyDeviceToHost, stream));
    sync();
  }
  return dst->data();
}

void CudaVit::Impl::upload(float* dst, const float* src, int64_t n) const {
  if (n > 0) CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * sizeof(float), cudaMemcpyHostToDevice, stream));
}

void CudaVit::Impl::zero(float* ptr, int64_t n) const {
  if (n > 0) CUDA_CHECK(cudaMemsetAsync(ptr, 0, size_t(n) * sizeof(float), stream));
}

void CudaVit::Impl::copy(float* dst, const float* src, int64_t n) const {
  if (n > 0) CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * sizeof(float), cudaMemcpyDeviceToDevice, stream));
}

void CudaVit::Impl::upload_params() {
  if (params_dirty) {
    upload(d_params.floats(), h_params.data(), nparams);
    params_dirty = false;
  }
  if (d_qparams && qparams_dirty) {
    upload(d_qparams.floats(), h_qparams.data(), nparams);
    qparams_dirty = false;
  }
  // Pageable uploads may return before the copy is done; the host mirror must stay
  // untouched until then, so finish here (cheap next to a pass).
  sync();
}

void CudaVit::Impl::ensure_arena(int b) {
  const bool quant = act_quant != nullptr;
  if (arena && b <= arena_batch && quant == arena_quant) {
    plan_device_activations(c, b, quant, static_cast<char*>(arena.get()), &a, &g, &scratch, &io);
    return;
  }
  const int64_t bytes = plan_device_activations(c, b, quant, nullptr, nullptr, nullptr, nullptr, nullptr);
  sync();  // the old arena may still be in use by queued work
  arena.reset();
  arena_batch = 0;
  int64_t limit = budget;
  std::string what = "the activation budget of " + mib(budget);
  if (limit < 0) {
    limit = mem_info().free_bytes;
    what = "the " + mib(limit) + " free on cuda:" + std::to_string(device);
  }
  if (bytes > limit) {
    int fit = 0;
    for (int lo = 1, hi = b - 1; lo <= hi;) {  // bytes grow with the batch: bisect
      const int mid = lo + (hi - lo) / 2;
      if (plan_device_activations(c, mid, quant, nullptr, nullptr, nullptr, nullptr, nullptr) <= limit) {
        fit = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    fail("E_MEMORY", "batch " + std::to_string(b) + " needs " + mib(bytes) + " of GPU activation memory, over " +
                         what + "; the largest batch that fits is " + std::to_string(fit));
  }
  arena = DeviceBuffer(bytes, "activations");
  arena_batch = b;
  arena_quant = quant;
  plan_device_activations(c, b, quant, static_cast<char*>(arena.get()), &a, &g, &scratch, &io);
}

// --------------------------------------------------------------------------- CudaVit

CudaVit::CudaVit(const VitConfig& config, int device) : impl_(std::make_unique<Impl>(config, device)) {}
CudaVit::~CudaVit() = default;

const VitConfig& CudaVit::config() const { return impl_->c; }
int CudaVit::device() const { return impl_->device; }
int64_t CudaVit::param_count() const { return impl_->nparams; }

float* CudaVit::params() {
  impl_->params_dirty = true;
  return impl_->h_params.data();
}

float* CudaVit::grads() {
  Impl& m = *impl_;
  if (m.h_grads.empty()) m.h_grads.assign(size_t(m.nparams), 0.0f);
  if (m.grads_on_device && m.d_grads) {
    DeviceGuard guard(m.device);
    m.download(&m.h_grads, m.d_grads.floats(), m.nparams);
    m.grads_on_device = false;
  }
  return m.h_grads.data();
}

float* CudaVit::quant_params() {
  Impl& m = *impl_;
  if (!m.d_qparams) {
    DeviceGuard guard(m.device);
    m.d_qparams = DeviceBuffer(m.nparams * int64_t(sizeof(float)), "quantized weights");
    m.pq = bind_params(m.c, m.d_qparams.floats());
    m.h_qparams = m.h_params;
  }
  m.qparams_dirty = true;
  return m.h_qparams.data();
}

void CudaVit::set_weight_quant(bool on) { impl_->weight_quant = on && bool(impl_->d_qparams); }
bool CudaVit::weight_quant() const { return impl_->weight_quant; }

void CudaVit::set_act_quant(const quant::ActQuantState* state) {
  const VitConfig& c = impl_->c;
  if (state && state->blocks.size() != size_t(c.depth) * quant::kBlockSites)
    fail("E_CONFIG", "activation quantizers: expected " + std::to_string(c.depth * quant::kBlockSites) +
                         " block sites, received " + std::to_string(state->blocks.size()));
  impl_->act_quant = state;
  impl_->batch = 0;  // the arena layout may change; a new forward is needed before backward
}

void CudaVit::set_observer(quant::ActObserver observer) { impl_->observer = std::move(observer); }

void CudaVit::set_reference(bool reference) { impl_->math = reference ? GemmMath::Fp32 : GemmMath::Tf32; }
void CudaVit::set_gemm_math(GemmMath math) { impl_->math = math; }
GemmMath CudaVit::gemm_math() const { return impl_->math; }
void CudaVit::set_activation_budget(int64_t bytes) { impl_->budget = bytes; }

int64_t CudaVit::activation_bytes(const VitConfig& c, int batch, bool quant_probs) {
  return plan_device_activations(c, batch, quant_probs, nullptr, nullptr, nullptr, nullptr, nullptr);
}

void CudaVit::forward(const float* images, int batch, const std::atomic<bool>* cancel) {
  Impl& m = *impl_;
  DeviceGuard guard(m.device);
  if (batch < 1) fail("E_TENSOR", "batch must be at least 1, received " + std::to_string(batch));
  m.batch = 0;
  m.ensure_arena(batch);
  m.upload(m.io.images, images, int64_t(batch) * m.c.image_len());
  m.forward(m.io.images, batch, cancel);
}

void CudaVit::forward_device(const float* images, int batch, const std::atomic<bool>* cancel) {
  DeviceGuard guard(impl_->device);
  impl_->forward(images, batch, cancel);
}

void CudaVit::backward(const float* dlogits, const TapGrads& taps, float* dimages, bool weight_grads,
                       const std::atomic<bool>* cancel) {
  Impl& m = *impl_;
  DeviceGuard guard(m.device);
  if (m.batch == 0) fail("E_STATE", "backward needs a completed forward pass on this model first");
  m.upload(m.io.dlogits, dlogits, int64_t(m.batch) * m.c.num_classes);
  m.backward(m.io.dlogits, taps, true, m.io.dimages, weight_grads, cancel);
  const int64_t n = int64_t(m.batch) * m.c.image_len();
  CUDA_CHECK(cudaMemcpyAsync(dimages, m.io.dimages, size_t(n) * sizeof(float), cudaMemcpyDeviceToHost, m.stream));
  m.sync();
}

void CudaVit::backward_device(const float* dlogits, const TapGrads& taps, float* dimages, bool weight_grads,
                              const std::atomic<bool>* cancel) {
  DeviceGuard guard(impl_->device);
  impl_->backward(dlogits, taps, false, dimages, weight_grads, cancel);
}

int CudaVit::batch() const { return impl_->batch; }

namespace {
void require_pass(const CudaVit::Impl& m) {
  if (m.batch == 0) fail("E_STATE", "no completed forward pass on this model yet");
}
void require_block(const CudaVit::Impl& m, int l) {
  if (l < 0 || l >= m.c.depth) fail("E_CONFIG", "block index " + std::to_string(l) + " out of range");
}
}  // namespace

const float* CudaVit::logits() const {
  const Impl& m = *impl_;
  require_pass(m);
  DeviceGuard guard(m.device);
  return m.download(&m.h_logits, m.a.logits, int64_t(m.batch) * m.c.num_classes);
}

const float* CudaVit::attention(int block) const {
  const Impl& m = *impl_;
  require_pass(m);
  require_block(m, block);
  DeviceGuard guard(m.device);
  const int64_t N = m.c.tokens();
  return m.download(&m.h_attn, m.a.blocks[size_t(block)].att, int64_t(m.batch) * m.c.heads * N * N);
}

const float* CudaVit::attention_values(int block) const {
  const Impl& m = *impl_;
  require_pass(m);
  require_block(m, block);
  DeviceGuard guard(m.device);
  return m.download(&m.h_av, m.a.blocks[size_t(block)].av, int64_t(m.batch) * m.c.tokens() * m.c.dim);
}

const float* CudaVit::features() const {
  const Impl& m = *impl_;
  require_pass(m);
  DeviceGuard guard(m.device);
  return m.download(&m.h_feat, m.a.feat, int64_t(m.batch) * head_inputs(m.c) * m.c.dim);
}

const float* CudaVit::device_logits() const { return impl_->batch ? impl_->a.logits : nullptr; }
const float* CudaVit::device_attention(int block) const {
  require_block(*impl_, block);
  return impl_->batch ? impl_->a.blocks[size_t(block)].att : nullptr;
}
const float* CudaVit::device_attention_values(int block) const {
  require_block(*impl_, block);
  return impl_->batch ? impl_->a.blocks[size_t(block)].av : nullptr;
}
const float* CudaVit::device_features() const { return impl_->batch ? impl_->a.feat : nullptr; }
const float* CudaVit::device_params() const { return impl_->d_params.floats(); }
const float* CudaVit::device_grads() const { return impl_->d_grads ? impl_->d_grads.floats() : nullptr; }

// ------------------------------------------------------------------ block-level passes

void CudaVit::prepare(int batch) {
  Impl& m = *impl_;
  DeviceGuard guard(m.device);
  if (batch < 1) fail("E_TENSOR", "batch must be at least 1, received " + std::to_string(batch));
  m.batch = 0;
  m.ensure_arena(batch);
  m.upload_params();
  m.batch = batch;
}

void CudaVit::forward_block(int l, const float* x_in) {
  Impl& m = *impl_;
  if (m.batch == 0) fail("E_STATE", "forward_block needs prepare(batch) first");
  require_block(m, l);
  DeviceGuard guard(m.device);
  m.upload_params();
  m.upload(m.io.x_in, x_in, int64_t(m.batch) * m.c.tokens() * m.c.dim);
  m.block_forward(l, m.io.x_in);
  m.sync();
}

void CudaVit::backward_block(int l, const float* x_in, const float* dout, float* dx_in, bool weight_grads) {
  Impl& m = *impl_;
  if (m.batch == 0) fail("E_STATE", "backward_block needs forward_block first");
  require_block(m, l);
  DeviceGuard guard(m.device);
  const int64_t n = int64_t(m.batch) * m.c.tokens() * m.c.dim;
  VitParams* gpp = nullptr;
  if (weight_grads) {
    // Only block l's gradients are overwritten (a block's parameters are contiguous:
    // norm1.weight … mlp.fc2.bias); the device arena is the truth, the host a cache.
    if (!m.d_grads) {
      m.d_grads = DeviceBuffer(m.nparams * int64_t(sizeof(float)), "weight gradients");
      m.gp = bind_params(m.c, m.d_grads.floats());
      m.zero(m.d_grads.floats(), m.nparams);
    }
    const BlockParams& b = m.gp.blocks[size_t(l)];
    m.zero(b.norm1_w, (b.fc2_b + m.c.dim) - b.norm1_w);
    gpp = &m.gp;
  }
  m.upload(m.io.x_in, x_in, n);
  m.upload(m.g.dres, dout, n);
  m.block_backward(l, m.io.x_in, gpp);
  if (dx_in) CUDA_CHECK(cudaMemcpyAsync(dx_in, m.g.dres, size_t(n) * sizeof(float), cudaMemcpyDeviceToHost, m.stream));
  m.sync();
  if (weight_grads) m.grads_on_device = true;
}

const float* CudaVit::block_output(int l) const {
  const Impl& m = *impl_;
  require_pass(m);
  require_block(m, l);
  DeviceGuard guard(m.device);
  return m.download(&m.h_block_out, m.block_output(l), int64_t(m.batch) * m.c.tokens() * m.c.dim);
}

const float* CudaVit::embeddings() const {
  const Impl& m = *impl_;
  require_pass(m);
  DeviceGuard guard(m.device);
  return m.download(&m.h_embed, m.a.x0, int64_t(m.batch) * m.c.tokens() * m.c.dim);
}

}  // namespace spdfq::cuda
