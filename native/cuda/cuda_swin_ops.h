// The GPU's op table for the Swin passes (core/swin_passes.h), over a model whose weights,
// activations and index tables already live in device memory (SwinDeviceModel: plain
// pointers; the owner that allocates and uploads them — a CudaSwin next to CudaVit — is a
// later stage, docs/swin.md). swin_forward runs the same sequence CpuSwin runs.
#pragma once

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
};

struct SwinOps {
  SwinDeviceModel& m;
  Ctx cx;

  const SwinConfig& cfg() const { return m.c; }
  int batch() const { return m.batch; }
  const SwinParams& w() const { return m.w; }
  SwinActs& acts() const { return m.a; }
  const SwinIndexView& index() const { return m.index; }

  void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                         int64_t rows, int D) const {
    cuda::layernorm_forward(out, mean, rstd, inp, w, b, rows, D, cfg().ln_eps, cx);
  }
  void linear_forward(float* out, const float* inp, const float* w, const float* b, int64_t rows, int I, int O) const {
    cuda::linear_forward(out, inp, w, b, rows, I, O, cx);
  }
  void activation_forward(float* out, const float* inp, int64_t n) const {
    cuda::activation_forward(out, inp, n, cfg().activation, cx);
  }
  void residual_forward(float* out, const float* a, const float* b, int64_t n) const {
    cuda::residual_forward(out, a, b, n, cx);
  }
  void patchify(float* patches, const float* images) const { cuda::patchify(patches, images, batch(), m.patch_geom, cx); }
  void window_partition(float* win, const float* x, const int32_t* src, int T, int NW, int D) const {
    cuda::window_gather(win, x, src, batch(), NW, T, D, cx);
  }
  void window_reverse(float* x, const float* win, const int32_t* dst, int T, int NW, int D) const {
    cuda::window_gather(x, win, dst, batch(), T, NW, D, cx);
  }
  void window_attention_forward(float* av, float* att, const float* qkv, const float* table, const int32_t* rel_index,
                                const int32_t* region, int nW, int N, int H, int hd) const {
    cuda::window_attention_forward(av, att, qkv, table, rel_index, region, batch(), nW, N, H, hd, cx);
  }
  void patch_merge(float* cat, const float* x, int Hs, int Ws, int C) const {
    cuda::patch_merge(cat, x, batch(), Hs, Ws, C, cx);
  }
  void mean_pool(float* pooled, const float* x, int T, int C) const { cuda::mean_pool(pooled, x, batch(), T, C, cx); }
};

// The forward on images [batch, C, H, W] (device); enqueued on ctx.stream, not synchronized.
void swin_forward(SwinDeviceModel& m, const float* images, const Ctx& ctx);

}  // namespace spdfq::cuda
