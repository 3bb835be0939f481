// The CPU's op table for the shared passes (core/vit_passes.h): each op is the CPU kernel
// of ops.h run on the model's thread pool, on the model's own weights and arena. The
// Linear forward takes the integer kernels (qlinear.h) for layers that have packed
// integer weights while integer execution is on.
#pragma once

#include <cstring>

#include "../core/vit_passes.h"
#include "ops.h"
#include "vit_cpu.h"

namespace spdfq::cpu {

struct Ops {
  CpuVit& m;
  Exec ex;

  const VitConfig& cfg() const { return m.config_; }
  int batch() const { return m.batch_; }
  const VitParams& wq() const { return m.wq(); }
  VitActs& acts() const { return m.acts_; }
  VitGrads& grads() const { return m.g_; }

  void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                         int64_t rows, int D) const {
    cpu::layernorm_forward(out, mean, rstd, inp, w, b, rows, D, cfg().ln_eps, ex);
  }
  void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                          const float* mean, const float* rstd, int64_t rows, int D) const {
    cpu::layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, rows, D, ex);
  }
  void linear_forward(float* out, const float* in, const float* w, const float* b, int64_t rows, int I, int O,
                      core::LinearRef ref) const {
    m.linear(out, in, w, b, rows, I, O, ex, m.integer_weights(ref), ref.site, ref.block);
  }
  void linear_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                       int64_t rows, int I, int O, bool accumulate) const {
    cpu::linear_backward(dinp, dw, db, dout, inp, w, rows, I, O, ex, accumulate);
  }
  void activation_forward(float* out, const float* inp, int64_t n) const {
    cpu::activation_forward(out, inp, n, cfg().activation, ex);
  }
  void activation_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool accumulate) const {
    cpu::activation_backward(dinp, dout, inp, n, cfg().activation, ex, accumulate);
  }
  void attention_forward(float* av, float* att, const float* qkv, int block) const {
    const VitConfig& c = cfg();
    cpu::attention_forward(av, att, qkv, batch(), c.tokens(), c.heads, c.head_dim(), ex, m.probs_quant(block),
                           acts().blocks[size_t(block)].att_q);
  }
  void attention_backward(float* dqkv, const float* dav, const float* datt_extra, const float* att, const float* att_pv,
                          const float* qkv, float* scratch) const {
    const VitConfig& c = cfg();
    cpu::attention_backward(dqkv, dav, datt_extra, att, att_pv, qkv, batch(), c.tokens(), c.heads, c.head_dim(),
                            scratch, ex);
  }
  bool probs_quantized(int block) const { return m.probs_quant(block) != nullptr; }
  void residual_forward(float* out, const float* a, const float* b, int64_t n) const {
    cpu::residual_forward(out, a, b, n, ex);
  }
  void copy(float* dst, const float* src, int64_t n) const { std::memcpy(dst, src, sizeof(float) * size_t(n)); }
  void zero(float* p, int64_t n) const { std::memset(p, 0, sizeof(float) * size_t(n)); }
  void patchify(float* patches, const float* images) const { cpu::patchify(patches, images, batch(), cfg(), ex); }
  void unpatchify(float* dimages, const float* dpatches) const {
    zero(dimages, int64_t(batch()) * cfg().image_len());
    cpu::unpatchify_accumulate(dimages, dpatches, batch(), cfg(), ex);
  }
  void embed_tokens(float* x0, const float* proj) const {
    cpu::embed_tokens(x0, proj, wq().cls_token, wq().dist_token, wq().pos_embed, batch(), cfg(), ex);
  }
  void embed_tokens_backward(float* dproj, float* dpos, float* dcls, float* ddist, const float* dx0) const {
    cpu::embed_tokens_backward(dproj, dpos, dcls, ddist, dx0, batch(), cfg(), ex);
  }
  void pool_forward(float* pooled, const float* tokens) const { cpu::pool_forward(pooled, tokens, batch(), cfg(), ex); }
  void pool_backward(float* dtokens, const float* dpool) const {
    cpu::pool_backward(dtokens, dpool, batch(), cfg(), ex);
  }
  void head_forward(float* logits, const float* feat) const {
    const VitParams& w = wq();
    if (m.integer_mode_ && m.integer_head_) {
      m.linear(logits, feat, w.head_w, w.head_b, batch(), cfg().dim, cfg().num_classes, ex, m.integer_head_,
               quant::Site::HeadIn, -1);
      return;
    }
    cpu::head_forward(logits, feat, w.head_w, w.head_b, w.head_dist_w, w.head_dist_b, batch(), cfg(), ex);
  }
  void head_backward(float* dfeat, VitParams* gp, const float* dlogits, const float* feat) const {
    const VitParams& w = wq();
    cpu::head_backward(dfeat, gp ? gp->head_w : nullptr, gp ? gp->head_b : nullptr, gp ? gp->head_dist_w : nullptr,
                       gp ? gp->head_dist_b : nullptr, dlogits, feat, w.head_w, w.head_dist_w, batch(), cfg(), ex);
  }
  void site(quant::Site s, int block, float* data, int64_t rows, int64_t cols, int64_t ld) const {
    m.site(s, block, data, rows, cols, ld);
  }
  void site_grad(quant::Site s, int block, float* grad, int64_t rows, int64_t cols) const {
    m.site_grad(s, block, grad, rows, cols);
  }
  void observe(quant::Site s, int block, const float* data, int64_t rows, int64_t cols, int64_t ld) const {
    if (m.observer_) m.observer_(quant::SiteView{s, block, data, rows, cols, ld});
  }
};

}  // namespace spdfq::cpu
