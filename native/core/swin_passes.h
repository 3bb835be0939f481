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
// Quantization sites (core/act_sites.h; RepQ-ViT on Swin, its official code): the input of
// every Linear (qkv, proj, fc1, fc2, each merge's reduction, head), the patch-embedding
// input (the image patches), and both operands of both window-attention matmuls (q, k; the
// softmax probabilities, quantized into att_q inside the attention op, and v). The relative
// position bias and the shift mask are added in float before the softmax. The qkv input is
// quantized on the norm1 output, before the window gather: the padding rows are zeros, which
// every grid holds exactly. Backward is straight-through at every site: each backward op
// reads the fake-quantized values its forward read, and gradients pass through unchanged.
//
// The op table a backend provides (all pointers are the backend's own memory):
//   cfg(), batch(), w() (SwinParams: the fake-quantized copy while weight quantization is
//     on), acts() (SwinActs), index() (SwinIndexView)
//   layernorm_forward(out, mean, rstd, inp, w, b, rows, D)
//   linear_forward(out, inp, w, b, rows, I, O)           (b may be nullptr)
//   activation_forward(out, inp, n)   residual_forward(out, a, b, n)   (out may alias a)
//   patchify(patches, images)                            im2col, [B·T0, C·p·p]
//   window_partition(win, x, src, T, NW)   win[b·NW + r] = src[r] ≥ 0 ? x[b·T + src[r]] : 0  (D columns)
//   window_reverse(x, win, dst, T, NW)     x[b·T + t] = win[b·NW + dst[t]]
//   window_attention_forward(av, att, qkv, bias_table, rel_index, region, nW, N, H, hd, block)
//     (the block's softmax quantizer, if any, from the backend: P·v then reads att_q)
//   patch_merge(cat, x, Hs, Ws, C)          [B, ⌈Hs/2⌉·⌈Ws/2⌉, 4C] from [B, Hs·Ws, C]
//   mean_pool(pooled, x, T, C)              [B, C] = mean over the T tokens
//   site(Site, block, data, rows, cols, ld): observe, then fake-quantize in place
//   observe(Site, block, data, rows, cols, ld): observe only
//   probs_quantized(block): whether P·v read the quantized copy (att_q)
// and for the backward (stage 3; conventions of cpu/ops.h: a backward ACCUMULATES into its
// gradient outputs unless it says "written", and a nullptr gradient output skips its work):
//   grads() (SwinGrads, the backward's scratch)   zero(p, n)
//   layernorm_backward(dinp +=, dw +=, db +=, dout, inp, w, mean, rstd, rows, D)
//   linear_backward(dinp, dw +=, db +=, dout, inp, w, rows, I, O, accumulate_dinp)
//   activation_backward(dinp, dout, inp, n, accumulate)
//   window_attention_backward(dqkv +=, dtable +=, dav, datt_extra, att, att_pv, qkv, rel_index, nW, N, H, hd, scratch)
//     (att_pv: the probabilities P·v read — att_q when quantized — straight-through)
//   patch_merge_backward(dx, dcat, Hs, Ws, C)   dx written (every token sits in exactly one slot)
//   mean_pool_backward(dx, dpooled, T, C)       dx written: dpooled / T on every token
//   unpatchify(dimages, dpatches)               dimages written
//   site_grad(Site, block, grad, rows, cols)    a block's Linear-input site's d loss/d output,
//     for LSQ during block reconstruction (may zero the clipped entries; a no-op elsewhere)
// The window gathers need no backward ops of their own: on the real tokens src and dst are
// inverse permutations (src[dst[t]] = t) and every other window row is padding, so the
// transpose of the partition is the reverse gather and vice versa. A padding row's
// gradient is dropped, as F.pad's backward drops it.
#pragma once

#include <cstdint>

#include "act_sites.h"
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
  be.site(quant::Site::PatchIn, -1, a.patches, rows, c.patch_len(), c.patch_len());
  be.linear_forward(a.patch_proj, a.patches, w.patch_w, w.patch_b, rows, c.patch_len(), c.dim(0));
  be.layernorm_forward(a.x0, a.x0_mean, a.x0_rstd, a.patch_proj, w.patch_norm_w, w.patch_norm_b, rows, c.dim(0));
}

// Block i of stage s on x [B·T, D]; its output is acts().blocks[l].out.
template <class Be>
void swin_block_forward(Be& be, int s, int i, const float* x) {
  using quant::Site;
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
  be.site(Site::QkvIn, l, a.ln1, R, D, D);
  be.window_partition(a.win, a.ln1, ix.src[v], T, NW, D);
  be.linear_forward(a.qkv, a.win, w.qkv_w, w.qkv_b, Rw, D, 3 * D);
  be.site(Site::Q, l, a.qkv, Rw, D, 3 * D);
  be.site(Site::K, l, a.qkv + D, Rw, D, 3 * D);
  be.site(Site::V, l, a.qkv + 2 * D, Rw, D, 3 * D);
  be.window_attention_forward(a.av, a.att, a.qkv, w.rel_bias, be.index().rel_index, v ? ix.region : nullptr, nW, N,
                              H, c.head_dim(s), l);
  be.observe(Site::Probs, l, a.att, Rw * H, N, N);
  be.site(Site::ProjIn, l, a.av, Rw, D, D);
  be.linear_forward(a.proj, a.av, w.proj_w, w.proj_b, Rw, D, D);
  be.window_reverse(a.sum1, a.proj, ix.dst[v], T, NW, D);
  be.residual_forward(a.sum1, a.sum1, x, R * D);

  be.layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.sum1, w.norm2_w, w.norm2_b, R, D);
  be.site(Site::Fc1In, l, a.ln2, R, D, D);
  be.linear_forward(a.fc1, a.ln2, w.fc1_w, w.fc1_b, R, D, M);
  be.activation_forward(a.act, a.fc1, R * M);
  be.site(Site::Fc2In, l, a.act, R, M, M);
  be.linear_forward(a.out, a.act, w.fc2_w, w.fc2_b, R, M, D);
  be.residual_forward(a.out, a.out, a.sum1, R * D);
}

// PatchMerging after stage s on x [B·T, C]: gather the 2×2 neighbourhoods (zero-padded on
// an odd side), LayerNorm over 4C, Linear 4C → 2C (without bias, unless quantization gave
// it one). Output: merges[s].out.
template <class Be>
void swin_merge_forward(Be& be, int s, const float* x) {
  const SwinConfig& c = be.cfg();
  const SwinMergeParams& w = be.w().merges[size_t(s)];
  SwinMergeActs& a = be.acts().merges[size_t(s)];
  const int C = c.dim(s);
  const int64_t R2 = int64_t(be.batch()) * c.tokens(s + 1);
  be.patch_merge(a.cat, x, c.grid_h(s), c.grid_w(s), C);
  be.layernorm_forward(a.ln, a.mean, a.rstd, a.cat, w.norm_w, w.norm_b, R2, 4 * C);
  be.site(quant::Site::ReduceIn, s, a.ln, R2, 4 * C, 4 * C);
  be.linear_forward(a.out, a.ln, w.reduction_w, w.reduction_b, R2, 4 * C, 2 * C);
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
  be.site(quant::Site::HeadIn, -1, a.pooled, be.batch(), F, F);
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

// ---------------------------------------------------------------------------- backward
// Gradients flow in grads().dres; weight gradients (gp non-null) accumulate into gp, whose
// pointers mirror SwinParams (a second parameter arena).

// From d logits to grads().dres = d loss / d (the last stage's output).
template <class Be>
void swin_head_backward(Be& be, const float* dlogits, const float* x, SwinParams* gp) {
  const SwinConfig& c = be.cfg();
  const SwinActs& a = be.acts();
  SwinGrads& g = be.grads();
  const SwinParams& w = be.w();
  const int last = c.stages() - 1, F = c.features(), T = c.tokens(last);
  const int64_t R = int64_t(be.batch()) * T;
  be.linear_backward(g.dpool, gp ? gp->head_w : nullptr, gp ? gp->head_b : nullptr, dlogits, a.pooled, w.head_w,
                     be.batch(), F, c.num_classes, false);
  be.mean_pool_backward(g.dtmp, g.dpool, T, F);
  be.zero(g.dres, R * F);
  be.layernorm_backward(g.dres, gp ? gp->norm_w : nullptr, gp ? gp->norm_b : nullptr, g.dtmp, x, w.norm_w,
                        a.fnorm_mean, a.fnorm_rstd, R, F);
}

// Gradients injected at one block's taps, in the backend's memory (nullptr: none), added
// to what flows back from the logits: att at the attention probabilities [B·nW, H, N, N],
// av at the attention output before proj [B·nW·N, D] (heads concatenated, as the ViT's A·V
// tap; PSAQ-ViT's patch-similarity entropy reads it, native/synth).
struct SwinBlockTaps {
  const float* att = nullptr;
  const float* av = nullptr;
};

// From grads().dres = d loss / d (block output) to d loss / d x (the block input).
template <class Be>
void swin_block_backward(Be& be, int s, int i, const float* x, SwinBlockTaps taps, SwinParams* gp) {
  using quant::Site;
  const SwinConfig& c = be.cfg();
  const int l = swin_block_index(c, s, i);
  const SwinBlockParams& w = be.w().blocks[size_t(l)];
  SwinBlockParams* gw = gp ? &gp->blocks[size_t(l)] : nullptr;
  const SwinBlockActs& a = be.acts().blocks[size_t(l)];
  SwinGrads& g = be.grads();
  const SwinStageIndex& ix = be.index().stages[size_t(s)];
  const int v = c.block_shifted(s, i) ? 1 : 0;
  const int D = c.dim(s), M = c.mlp_dim(s), H = c.heads[size_t(s)], N = c.window_tokens();
  const int T = c.tokens(s), nW = c.windows(s), NW = nW * N;
  const int64_t R = int64_t(be.batch()) * T, Rw = int64_t(be.batch()) * NW;
  auto G = [&](float* SwinBlockParams::*field) -> float* { return gw ? gw->*field : nullptr; };

  // MLP branch: out = sum1 + fc2(act(fc1(norm2(sum1)))); scratch is written, not accumulated.
  be.linear_backward(g.dhid, G(&SwinBlockParams::fc2_w), G(&SwinBlockParams::fc2_b), g.dres, a.act, w.fc2_w, R, M,
                     D, false);
  be.site_grad(Site::Fc2In, l, g.dhid, R, M);
  be.activation_backward(g.dhid2, g.dhid, a.fc1, R * M, false);
  be.linear_backward(g.dtmp, G(&SwinBlockParams::fc1_w), G(&SwinBlockParams::fc1_b), g.dhid2, a.ln2, w.fc1_w, R, D,
                     M, false);
  be.site_grad(Site::Fc1In, l, g.dtmp, R, D);
  be.layernorm_backward(g.dres, G(&SwinBlockParams::norm2_w), G(&SwinBlockParams::norm2_b), g.dtmp, a.sum1,
                        w.norm2_w, a.ln2_mean, a.ln2_rstd, R, D);  // dres = d sum1

  // Attention branch: sum1 = x + reverse(proj(WA(qkv(partition(norm1(x)))))).
  be.window_partition(g.dwin, g.dres, ix.src[v], T, NW, D);  // reverse's transpose
  be.linear_backward(g.dav, G(&SwinBlockParams::proj_w), G(&SwinBlockParams::proj_b), g.dwin, a.av, w.proj_w, Rw, D,
                     D, false);
  if (taps.av) be.residual_forward(g.dav, g.dav, taps.av, Rw * D);
  be.site_grad(Site::ProjIn, l, g.dav, Rw, D);
  be.zero(g.dqkv, Rw * 3 * D);
  be.window_attention_backward(g.dqkv, G(&SwinBlockParams::rel_bias), g.dav, taps.att, a.att,
                               a.att_q && be.probs_quantized(l) ? a.att_q : a.att, a.qkv, be.index().rel_index, nW,
                               N, H, c.head_dim(s), g.att_scratch);
  be.linear_backward(g.dwin, G(&SwinBlockParams::qkv_w), G(&SwinBlockParams::qkv_b), g.dqkv, a.win, w.qkv_w, Rw, D,
                     3 * D, false);
  be.window_reverse(g.dtmp, g.dwin, ix.dst[v], T, NW, D);  // partition's transpose
  be.site_grad(Site::QkvIn, l, g.dtmp, R, D);
  be.layernorm_backward(g.dres, G(&SwinBlockParams::norm1_w), G(&SwinBlockParams::norm1_b), g.dtmp, x, w.norm1_w,
                        a.ln1_mean, a.ln1_rstd, R, D);  // dres = d x: the residual path plus norm1's
}

// From grads().dres = d loss / d merges[s].out to d loss / d (stage s's last block output).
template <class Be>
void swin_merge_backward(Be& be, int s, SwinParams* gp) {
  const SwinConfig& c = be.cfg();
  const SwinMergeParams& w = be.w().merges[size_t(s)];
  SwinMergeParams* gm = gp ? &gp->merges[size_t(s)] : nullptr;
  const SwinMergeActs& a = be.acts().merges[size_t(s)];
  SwinGrads& g = be.grads();
  const int C = c.dim(s);
  const int64_t R2 = int64_t(be.batch()) * c.tokens(s + 1);
  be.linear_backward(g.dtmp, gm ? gm->reduction_w : nullptr, gm ? gm->reduction_b : nullptr, g.dres, a.ln,
                     w.reduction_w, R2, 4 * C, 2 * C, false);
  be.zero(g.dcat, R2 * 4 * C);
  be.layernorm_backward(g.dcat, gm ? gm->norm_w : nullptr, gm ? gm->norm_b : nullptr, g.dtmp, a.cat, w.norm_w, a.mean,
                        a.rstd, R2, 4 * C);
  be.patch_merge_backward(g.dres, g.dcat, c.grid_h(s), c.grid_w(s), C);
}

// From grads().dres = d loss / d x0 to dimages (written; nullptr: not needed) and the
// patch embedding's weight gradients.
template <class Be>
void swin_embed_backward(Be& be, float* dimages, SwinParams* gp) {
  const SwinConfig& c = be.cfg();
  const SwinActs& a = be.acts();
  SwinGrads& g = be.grads();
  const SwinParams& w = be.w();
  const int64_t rows = int64_t(be.batch()) * c.tokens(0);
  const int D0 = c.dim(0);
  be.zero(g.dtmp, rows * D0);
  be.layernorm_backward(g.dtmp, gp ? gp->patch_norm_w : nullptr, gp ? gp->patch_norm_b : nullptr, g.dres,
                        a.patch_proj, w.patch_norm_w, a.x0_mean, a.x0_rstd, rows, D0);
  be.linear_backward(dimages ? g.dpatches : nullptr, gp ? gp->patch_w : nullptr, gp ? gp->patch_b : nullptr, g.dtmp,
                     a.patches, w.patch_w, rows, c.patch_len(), D0, false);
  if (dimages) be.unpatchify(dimages, g.dpatches);
}

// Head → stages in reverse (blocks, and the merge before each later stage) → patch
// embedding, after swin_model_forward on the same batch. `taps(l)` gives block l's
// injected gradients (SwinBlockTaps); `between_blocks()` runs before each block.
template <class Be, class Taps, class F>
void swin_model_backward(Be& be, const float* dlogits, float* dimages, SwinParams* gp, Taps&& taps,
                         F&& between_blocks) {
  const SwinConfig& c = be.cfg();
  const int last = c.stages() - 1;
  swin_head_backward(be, dlogits, swin_block_output(be, last, c.depths[size_t(last)] - 1), gp);
  for (int s = last; s >= 0; --s) {
    for (int i = c.depths[size_t(s)] - 1; i >= 0; --i) {
      between_blocks();
      // The block's input: the previous block, else the merge into this stage, else x0.
      const float* x = i > 0 ? swin_block_output(be, s, i - 1)
                             : s > 0 ? be.acts().merges[size_t(s - 1)].out : be.acts().x0;
      swin_block_backward(be, s, i, x, taps(swin_block_index(c, s, i)), gp);
    }
    if (s > 0) swin_merge_backward(be, s - 1, gp);
  }
  swin_embed_backward(be, dimages, gp);
}

}  // namespace spdfq::core
