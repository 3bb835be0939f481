// The Swin Transformer's forward (torchvision V1), written once for every backend: the
// sequence of layer ops of the patch embedding, a block, a patch merging and the head. A
// backend (cpu::SwinOps, cuda::SwinOps) supplies the ops over its own weights, arena and
// index tables; these templates never touch memory themselves, so CPU and GPU cannot
// drift apart (as core/vit_passes.h for the ViT).
//
// Block math (torchvision SwinTransformerBlock, pre-norm, stochastic depth off):
//   win  = partition(norm1(x))             shifted windows of the padded grid (one gather)
//   sum1 = x + reverse(proj(WA(qkv(win)))) WA: softmax(q·kᵀ/√hd + bias[rel_index] + mask)·v
//   out  = sum1 + fc2(gelu(fc1(norm2(sum1))))
// Padding tokens enter the windows as zeros after norm1 (F.pad in shifted_window_attention),
// so their q/k/v are the qkv bias; they take part in every softmax, as in torchvision, and
// the reverse gather drops them.
//
// The op table a backend provides (all pointers are the backend's own memory):
//   cfg(), batch(), w() (SwinParams), acts() (SwinActs), index() (SwinIndexView)
//   layernorm_forward(out, mean, rstd, inp, w, b, rows, D)
//   linear_forward(out, inp, w, b, rows, I, O)           (b may be nullptr)
//   activation_forward(out, inp, n)   residual_forward(out, a, b, n)   (out may alias a)
//   patchify(patches, images)                            im2col, [B·T0, C·p·p]
//   window_partition(win, x, src, T, NW)   win[b·NW + r] = src[r] ≥ 0 ? x[b·T + src[r]] : 0  (D columns)
//   window_reverse(x, win, dst, T, NW)     x[b·T + t] = win[b·NW + dst[t]]
//   window_attention_forward(av, att, qkv, bias_table, rel_index, region, nW, N, H, hd)
//   patch_merge(cat, x, Hs, Ws, C)          [B, ⌈Hs/2⌉·⌈Ws/2⌉, 4C] from [B, Hs·Ws, C]
//   mean_pool(pooled, x, T, C)              [B, C] = mean over the T tokens
//
// No backward yet (stage 1); SwinActs keeps everything one will need (LayerNorm
// statistics, windowed inputs, q/k/v, probabilities, pre-activation MLP values).
#pragma once

#include <cstdint>

#include "swin_params.h"

namespace spdfq::core {

// Conv2d(kernel = stride = p) as a Linear over im2col patches, then features.0.2's LayerNorm.
template <class Be>
void swin_embed_forward(Be& be, const float* images) {
  const SwinConfig& c = be.cfg();
  SwinActs& a = be.acts();
  const SwinParams& w = be.w();
  const int64_t rows = int64_t(be.batch()) * c.tokens(0);
  be.patchify(a.patches, images);
  be.linear_forward(a.patch_proj, a.patches, w.patch_w, w.patch_b, rows, c.patch_len(), c.dim(0));
  be.layernorm_forward(a.x0, a.x0_mean, a.x0_rstd, a.patch_proj, w.patch_norm_w, w.patch_norm_b, rows, c.dim(0));
}

// Block i of stage s on x [B·T, D]; its output is acts().blocks[l].out.
template <class Be>
void swin_block_forward(Be& be, int s, int i, const float* x) {
  const SwinConfig& c = be.cfg();
  const int l = swin_block_index(c, s, i);
  const SwinBlockParams& w = be.w().blocks[size_t(l)];
  SwinBlockActs& a = be.acts().blocks[size_t(l)];
  const SwinStageIndex& ix = be.index().stages[size_t(s)];
  const int v = c.block_shifted(s, i) ? 1 : 0;
  const int D = c.dim(s), M = c.mlp_dim(s), H = c.heads[size_t(s)], N = c.window_tokens();
  const int T = c.tokens(s), nW = c.windows(s), NW = nW * N;
  const int64_t R = int64_t(be.batch()) * T, Rw = int64_t(be.batch()) * NW;

  be.layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, x, w.norm1_w, w.norm1_b, R, D);
  be.window_partition(a.win, a.ln1, ix.src[v], T, NW, D);
  be.linear_forward(a.qkv, a.win, w.qkv_w, w.qkv_b, Rw, D, 3 * D);
  be.window_attention_forward(a.av, a.att, a.qkv, w.rel_bias, be.index().rel_index, v ? ix.region : nullptr, nW, N,
                              H, c.head_dim(s));
  be.linear_forward(a.proj, a.av, w.proj_w, w.proj_b, Rw, D, D);
  be.window_reverse(a.sum1, a.proj, ix.dst[v], T, NW, D);
  be.residual_forward(a.sum1, a.sum1, x, R * D);

  be.layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.sum1, w.norm2_w, w.norm2_b, R, D);
  be.linear_forward(a.fc1, a.ln2, w.fc1_w, w.fc1_b, R, D, M);
  be.activation_forward(a.act, a.fc1, R * M);
  be.linear_forward(a.out, a.act, w.fc2_w, w.fc2_b, R, M, D);
  be.residual_forward(a.out, a.out, a.sum1, R * D);
}

// PatchMerging after stage s on x [B·T, C]: gather the 2×2 neighbourhoods (zero-padded on
// an odd side), LayerNorm over 4C, Linear 4C → 2C without bias. Output: merges[s].out.
template <class Be>
void swin_merge_forward(Be& be, int s, const float* x) {
  const SwinConfig& c = be.cfg();
  const SwinMergeParams& w = be.w().merges[size_t(s)];
  SwinMergeActs& a = be.acts().merges[size_t(s)];
  const int C = c.dim(s);
  const int64_t R2 = int64_t(be.batch()) * c.tokens(s + 1);
  be.patch_merge(a.cat, x, c.grid_h(s), c.grid_w(s), C);
  be.layernorm_forward(a.ln, a.mean, a.rstd, a.cat, w.norm_w, w.norm_b, R2, 4 * C);
  be.linear_forward(a.out, a.ln, w.reduction_w, nullptr, R2, 4 * C, 2 * C);
}

// Final LayerNorm, AdaptiveAvgPool2d(1) over the grid (a mean over tokens), head.
template <class Be>
void swin_head_forward(Be& be, const float* x) {
  const SwinConfig& c = be.cfg();
  SwinActs& a = be.acts();
  const SwinParams& w = be.w();
  const int last = c.stages() - 1, F = c.features(), T = c.tokens(last);
  be.layernorm_forward(a.fnorm, a.fnorm_mean, a.fnorm_rstd, x, w.norm_w, w.norm_b, int64_t(be.batch()) * T, F);
  be.mean_pool(a.pooled, a.fnorm, T, F);
  be.linear_forward(a.logits, a.pooled, w.head_w, w.head_b, be.batch(), F, c.num_classes);
}

// The output of block i of stage s (acts().blocks[..].out) and of merge s.
template <class Be>
const float* swin_block_output(Be& be, int s, int i) {
  return be.acts().blocks[size_t(swin_block_index(be.cfg(), s, i))].out;
}

// Patch embedding → stages (blocks, then a merge between stages) → head.
// `between_blocks()` runs before each block (cancellation).
template <class Be, class F>
void swin_model_forward(Be& be, const float* images, F&& between_blocks) {
  const SwinConfig& c = be.cfg();
  swin_embed_forward(be, images);
  const float* x = be.acts().x0;
  for (int s = 0; s < c.stages(); ++s) {
    for (int i = 0; i < c.depths[size_t(s)]; ++i) {
      between_blocks();
      swin_block_forward(be, s, i, x);
      x = swin_block_output(be, s, i);
    }
    if (s + 1 < c.stages()) {
      swin_merge_forward(be, s, x);
      x = be.acts().merges[size_t(s)].out;
    }
  }
  swin_head_forward(be, x);
}

}  // namespace spdfq::core
