// The GPU's op table for the Swin passes (core/swin_passes.h), over a model whose weights,
// activations and index tables already live in device memory (SwinDeviceModel: plain
// pointers; the owner that allocates and uploads them — a CudaSwin next to CudaVit — is a
// later stage, docs/swin.md). swin_forward and swin_backward run the sequences CpuSwin
// runs. The kernels' backward ops accumulate; an op asked to overwrite clears its output
// first (as cuda_ops.h for the ViT).
#pragma once

#include <vector>

#include "../core/swin_passes.h"
#include "ops.h"
#include "swin_ops.h"

namespace spdfq::cuda {

struct SwinDeviceModel {
  SwinConfig c;
  VitConfig patch_geom;  // image size, channels and patch for the shared patchify
  int batch = 0;
  SwinParams w{};       // device pointers
  SwinActs a{};         // device pointers (plan_swin_activations over a device arena)
  SwinIndexView index;  // device pointers (SwinIndices::bind over a device copy)
  SwinGrads g{};        // device pointers (plan_swin_grads over a device arena, with
                        // swin_att_scratch_floats for att_scratch); backward only
  // Activation quantizers (host memory, owned by the caller; nullptr: none): w then points
  // at the fake-quantized weights and `a` is planned with quant_probs. No observer yet:
  // calibration runs on the CPU model (docs/swin.md, "Stage: quantization").
  const quant::ActQuantState* act_quant = nullptr;
  const quant::TensorQuant* probs_quant(int block) const {
    if (!act_quant) return nullptr;
    const quant::TensorQuant& q = act_quant->at(quant::Site::Probs, block);
    return q.kind == quant::QuantKind::None ? nullptr : &q;
  }
};

// The GPU attention backward's scratch: dP/dS of every (window, head) of the widest stage.
int64_t swin_att_scratch_floats(const SwinConfig& c, int batch);
// Ctx::scratch the weight gradients' column reductions need (reduce_scratch_floats of the
// widest: a merge's LayerNorm 4C, qkv's bias 3D, fc1's M, the head's K).
int64_t swin_reduce_scratch_floats(const SwinConfig& c);

struct SwinOps {
  SwinDeviceModel& m;
  Ctx cx;

  const SwinConfig& cfg() const { return m.c; }
  int batch() const { return m.batch; }
  const SwinParams& w() const { return m.w; }
  SwinActs& acts() const { return m.a; }
  const SwinIndexView& index() const { return m.index; }
  SwinGrads& grads() const { return m.g; }
  void zero(float* p, int64_t n) const;

  void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                         int64_t rows, int D) const {
    cuda::layernorm_forward(out, mean, rstd, inp, w, b, rows, D, cfg().ln_eps, cx);
  }
  void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                          const float* mean, const float* rstd, int64_t rows, int D) const {
    cuda::layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, rows, D, cx);
  }
  void linear_forward(float* out, const float* inp, const float* w, const float* b, int64_t rows, int I, int O) const {
    cuda::linear_forward(out, inp, w, b, rows, I, O, cx);
  }
  void linear_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                       int64_t rows, int I, int O, bool accumulate) const {
    if (!accumulate && dinp) zero(dinp, rows * I);
    cuda::linear_backward(dinp, dw, db, dout, inp, w, rows, I, O, cx);
  }
  void activation_forward(float* out, const float* inp, int64_t n) const {
    cuda::activation_forward(out, inp, n, cfg().activation, cx);
  }
  void activation_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool accumulate) const {
    if (!accumulate) zero(dinp, n);
    cuda::activation_backward(dinp, dout, inp, n, cfg().activation, cx);
  }
  void residual_forward(float* out, const float* a, const float* b, int64_t n) const {
    cuda::residual_forward(out, a, b, n, cx);
  }
  void patchify(float* patches, const float* images) const { cuda::patchify(patches, images, batch(), m.patch_geom, cx); }
  void unpatchify(float* dimages, const float* dpatches) const {
    zero(dimages, int64_t(batch()) * cfg().image_len());
    cuda::unpatchify_accumulate(dimages, dpatches, batch(), m.patch_geom, cx);
  }
  void window_partition(float* win, const float* x, const int32_t* src, int T, int NW, int D) const {
    cuda::window_gather(win, x, src, batch(), NW, T, D, cx);
  }
  void window_reverse(float* x, const float* win, const int32_t* dst, int T, int NW, int D) const {
    cuda::window_gather(x, win, dst, batch(), T, NW, D, cx);
  }
  void window_attention_forward(float* av, float* att, const float* qkv, const float* table, const int32_t* rel_index,
                                const int32_t* region, int nW, int N, int H, int hd, int block) const {
    cuda::window_attention_forward(av, att, qkv, table, rel_index, region, batch(), nW, N, H, hd, cx,
                                   m.probs_quant(block), acts().blocks[size_t(block)].att_q);
  }
  bool probs_quantized(int block) const { return m.probs_quant(block) != nullptr; }
  void site(quant::Site s, int block, float* data, int64_t rows, int64_t cols, int64_t ld) const {
    if (m.act_quant) cuda::fake_quant(data, rows, cols, ld, m.act_quant->at(s, block), cx);
  }
  void observe(quant::Site, int, const float*, int64_t, int64_t, int64_t) const {}
  void site_grad(quant::Site, int, float*, int64_t, int64_t) const {}  // LSQ: CPU reconstruction only
  void window_attention_backward(float* dqkv, float* dtable, const float* dav, const float* datt_extra,
                                 const float* att, const float* att_pv, const float* qkv, const int32_t* rel_index,
                                 int nW, int N, int H, int hd, float* scratch) const {
    cuda::window_attention_backward(dqkv, dtable, dav, datt_extra, att, att_pv, qkv, rel_index, cfg().bias_table_rows(),
                                    batch(), nW, N, H, hd, scratch, cx);
  }
  void patch_merge(float* cat, const float* x, int Hs, int Ws, int C) const {
    cuda::patch_merge(cat, x, batch(), Hs, Ws, C, cx);
  }
  void patch_merge_backward(float* dx, const float* dcat, int Hs, int Ws, int C) const {
    cuda::patch_merge_backward(dx, dcat, batch(), Hs, Ws, C, cx);
  }
  void mean_pool(float* pooled, const float* x, int T, int C) const { cuda::mean_pool(pooled, x, batch(), T, C, cx); }
  void mean_pool_backward(float* dx, const float* dpooled, int T, int C) const {
    cuda::mean_pool_backward(dx, dpooled, batch(), T, C, cx);
  }
};

// The forward on images [batch, C, H, W] (device); enqueued on ctx.stream, not synchronized.
void swin_forward(SwinDeviceModel& m, const float* images, const Ctx& ctx);
// The backward of the last swin_forward (all pointers device pointers): dimages written
// (nullptr: not needed); gp (nullptr: none) accumulates the weight gradients and needs
// ctx.scratch for the column reductions (swin_reduce_scratch_floats);
// tap_att: empty, or one per block (nullptr: none) [B·nW, H, N, N].
void swin_backward(SwinDeviceModel& m, const float* dlogits, float* dimages, SwinParams* gp,
                   const std::vector<const float*>& tap_att, const Ctx& ctx);

}  // namespace spdfq::cuda
