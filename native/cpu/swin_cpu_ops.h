// The CPU's op table for the Swin passes (core/swin_passes.h), forward and backward: the
// ViT's CPU kernels (ops.h) where they fit, Swin's own (swin_ops.h) for windows, merging
// and pooling, run on the model's thread pool over its own weights, arena and index tables.
#pragma once

#include <cstring>

#include "../core/swin_passes.h"
#include "ops.h"
#include "swin_cpu.h"
#include "swin_ops.h"

namespace spdfq::cpu {

struct SwinOps {
  CpuSwin& m;
  Exec ex;

  const SwinConfig& cfg() const { return m.config_; }
  int batch() const { return m.batch_; }
  const SwinParams& w() const { return m.wq(); }
  SwinActs& acts() const { return m.acts_; }
  const SwinIndexView& index() const { return m.index_; }
  SwinGrads& grads() const { return m.g_; }
  void zero(float* p, int64_t n) const { std::memset(p, 0, sizeof(float) * size_t(n)); }

  void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                         int64_t rows, int D) const {
    cpu::layernorm_forward(out, mean, rstd, inp, w, b, rows, D, cfg().ln_eps, ex);
  }
  void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                          const float* mean, const float* rstd, int64_t rows, int D) const {
    cpu::layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, rows, D, ex);
  }
  void linear_forward(float* out, const float* inp, const float* w, const float* b, int64_t rows, int I, int O) const {
    cpu::linear_forward(out, inp, w, b, rows, I, O, ex);
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
  void residual_forward(float* out, const float* a, const float* b, int64_t n) const {
    cpu::residual_forward(out, a, b, n, ex);
  }
  void patchify(float* patches, const float* images) const { cpu::patchify(patches, images, batch(), m.patch_geom_, ex); }
  void unpatchify(float* dimages, const float* dpatches) const {
    zero(dimages, int64_t(batch()) * cfg().image_len());
    cpu::unpatchify_accumulate(dimages, dpatches, batch(), m.patch_geom_, ex);
  }
  void window_partition(float* win, const float* x, const int32_t* src, int T, int NW, int D) const {
    cpu::window_gather(win, x, src, batch(), NW, T, D, ex);
  }
  void window_reverse(float* x, const float* win, const int32_t* dst, int T, int NW, int D) const {
    cpu::window_gather(x, win, dst, batch(), T, NW, D, ex);
  }
  void window_attention_forward(float* av, float* att, const float* qkv, const float* table, const int32_t* rel_index,
                                const int32_t* region, int nW, int N, int H, int hd, int block) const {
    cpu::window_attention_forward(av, att, qkv, table, rel_index, region, batch(), nW, N, H, hd, ex,
                                  m.probs_quant(block), acts().blocks[size_t(block)].att_q);
  }
  bool probs_quantized(int block) const { return m.probs_quant(block) != nullptr; }
  void site(quant::Site s, int block, float* data, int64_t rows, int64_t cols, int64_t ld) const {
    m.site(s, block, data, rows, cols, ld);
  }
  void observe(quant::Site s, int block, const float* data, int64_t rows, int64_t cols, int64_t ld) const {
    if (m.observer_) m.observer_(quant::SiteView{s, block, data, rows, cols, ld});
  }
  void site_grad(quant::Site s, int block, float* grad, int64_t rows, int64_t cols) const {
    m.hooks_.site_grad(s, block, grad, rows, cols, m.act_quant_);
  }
  void window_attention_backward(float* dqkv, float* dtable, const float* dav, const float* datt_extra,
                                 const float* att, const float* att_pv, const float* qkv, const int32_t* rel_index,
                                 int nW, int N, int H, int hd, float* scratch) const {
    cpu::window_attention_backward(dqkv, dtable, dav, datt_extra, att, att_pv, qkv, rel_index, cfg().bias_table_rows(),
                                   batch(), nW, N, H, hd, scratch, ex);
  }
  void patch_merge(float* cat, const float* x, int Hs, int Ws, int C) const {
    cpu::patch_merge(cat, x, batch(), Hs, Ws, C, ex);
  }
  void patch_merge_backward(float* dx, const float* dcat, int Hs, int Ws, int C) const {
    cpu::patch_merge_backward(dx, dcat, batch(), Hs, Ws, C, ex);
  }
  void mean_pool(float* pooled, const float* x, int T, int C) const { cpu::mean_pool(pooled, x, batch(), T, C, ex); }
  void mean_pool_backward(float* dx, const float* dpooled, int T, int C) const {
    cpu::mean_pool_backward(dx, dpooled, batch(), T, C, ex);
  }
};

}  // namespace spdfq::cpu
