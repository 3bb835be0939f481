// The GPU's op table for the shared passes (core/vit_passes.h): each op enqueues the CUDA
// kernels of ops.h on the model's stream, on the model's device weights and arena. The
// kernels' backward ops accumulate; an op asked to overwrite clears its output first.
#pragma once

#include "../core/vit_passes.h"
#include "cuda_vit_impl.h"

namespace spdfq::cuda {

struct Ops {
  CudaVit::Impl& m;
  Ctx cx;

  const VitConfig& cfg() const { return m.c; }
  int batch() const { return m.batch; }
  const VitParams& wq() const { return m.wq(); }
  VitActs& acts() const { return m.a; }
  VitGrads& grads() const { return m.g; }

  void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                         int64_t rows, int D) const {
    cuda::layernorm_forward(out, mean, rstd, inp, w, b, rows, D, cfg().ln_eps, cx);
  }
  void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                          const float* mean, const float* rstd, int64_t rows, int D) const {
    cuda::layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, rows, D, cx);
  }
  void linear_forward(float* out, const float* in, const float* w, const float* b, int64_t rows, int I, int O,
                      core::LinearRef) const {
    cuda::linear_forward(out, in, w, b, rows, I, O, cx);
  }
  void linear_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                       int64_t rows, int I, int O, bool accumulate) const {
    if (!accumulate) zero(dinp, rows * I);
    cuda::linear_backward(dinp, dw, db, dout, inp, w, rows, I, O, cx);
  }
  void activation_forward(float* out, const float* inp, int64_t n) const {
    cuda::activation_forward(out, inp, n, cfg().activation, cx);
  }
  void activation_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool accumulate) const {
    if (!accumulate) zero(dinp, n);
    cuda::activation_backward(dinp, dout, inp, n, cfg().activation, cx);
  }
  void attention_forward(float* av, float* att, const float* qkv, int block) const {
    const VitConfig& c = cfg();
    cuda::attention_forward(av, att, qkv, batch(), c.tokens(), c.heads, c.head_dim(), cx, m.probs_quant(block),
                            acts().blocks[size_t(block)].att_q);
  }
  void attention_backward(float* dqkv, const float* dav, const float* datt_extra, const float* att, const float* att_pv,
                          const float* qkv, float* scratch) const {
    const VitConfig& c = cfg();
    cuda::attention_backward(dqkv, dav, datt_extra, att, att_pv, qkv, batch(), c.tokens(), c.heads, c.head_dim(),
                             scratch, cx);
  }
  bool probs_quantized(int block) const { return m.probs_quant(block) != nullptr; }
  void residual_forward(float* out, const float* a, const float* b, int64_t n) const {
    cuda::residual_forward(out, a, b, n, cx);
  }
  void copy(float* dst, const float* src, int64_t n) const { m.copy(dst, src, n); }
  void zero(float* p, int64_t n) const { m.zero(p, n); }
  void patchify(float* patches, const float* images) const { cuda::patchify(patches, images, batch(), cfg(), cx); }
  void unpatchify(float* dimages, const float* dpatches) const {
    zero(dimages, int64_t(batch()) * cfg().image_len());
    cuda::unpatchify_accumulate(dimages, dpatches, batch(), cfg(), cx);
  }
  void embed_tokens(float* x0, const float* proj) const {
    cuda::embed_tokens(x0, proj, wq().cls_token, wq().dist_token, wq().pos_embed, batch(), cfg(), cx);
  }
  void embed_tokens_backward(float* dproj, float* dpos, float* dcls, float* ddist, const float* dx0) const {
    cuda::embed_tokens_backward(dproj, dpos, dcls, ddist, dx0, batch(), cfg(), cx);
  }
  void pool_forward(float* pooled, const float* tokens) const { cuda::pool_forward(pooled, tokens, batch(), cfg(), cx); }
  void pool_backward(float* dtokens, const float* dpool) const {
    cuda::pool_backward(dtokens, dpool, batch(), cfg(), cx);
  }
  void head_forward(float* logits, const float* feat) const {
    const VitParams& w = wq();
    cuda::head_forward(logits, feat, w.head_w, w.head_b, w.head_dist_w, w.head_dist_b, batch(), cfg(), cx);
  }
  void head_backward(float* dfeat, VitParams* gp, const float* dlogits, const float* feat) const {
    const VitParams& w = wq();
    cuda::head_backward(dfeat, gp ? gp->head_w : nullptr, gp ? gp->head_b : nullptr, gp ? gp->head_dist_w : nullptr,
                        gp ? gp->head_dist_b : nullptr, dlogits, feat, w.head_w, w.head_dist_w, batch(), cfg(), cx);
  }
  void site(quant::Site s, int block, float* data, int64_t rows, int64_t cols, int64_t ld) const {
    m.site(s, block, data, rows, cols, ld);
  }
  // Learned step sizes are trained on the CPU engine (block reconstruction): nothing here.
  void site_grad(quant::Site, int, float*, int64_t, int64_t) const {}
  void observe(quant::Site s, int block, const float* data, int64_t rows, int64_t cols, int64_t ld) const {
    m.observe(s, block, data, rows, cols, ld);
  }
};

}  // namespace spdfq::cuda
