// The ViT's forward and backward, written once for every backend: the sequence of layer
// ops of a block, the head and the embeddings, with the quantization sites between them.
// A backend (cpu::Ops, cuda::Ops) supplies the ops, its weights and its arena; these
// templates never touch memory themselves, so CPU and GPU cannot drift apart.
//
// Block math (pre-norm, timm):  sum1 = x + proj(attn(norm1(x)));  out = sum1 + fc2(gelu(fc1(norm2(sum1))))
// Block math (post-norm):       sum1 = x + proj(attn(x));  ln1 = norm1(sum1);  out = norm2(ln1 + mlp(ln1))
//
// The op table a backend provides (all pointers are the backend's own memory):
//   cfg(), batch(), wq() (the weights passes use), acts(), grads()
//   layernorm_forward(out, mean, rstd, inp, w, b, rows, D)
//   layernorm_backward(dinp +=, dw +=, db +=, dout, inp, w, mean, rstd, rows, D)
//   linear_forward(out, inp, w, b, rows, I, O, LinearRef)   (LinearRef: which layer, for integer kernels)
//   linear_backward(dinp, dw +=, db +=, dout, inp, w, rows, I, O, accumulate_dinp)
//   activation_forward(out, inp, n)   activation_backward(dinp, dout, inp, n, accumulate)  (the MLP's)
//   attention_forward(av, att, qkv, block)     (the block's softmax quantizer, if any, from the backend)
//   attention_backward(dqkv +=, dav, datt_extra, att, att_pv, qkv, scratch)
//   residual_forward(out, a, b, n)   copy(dst, src, n)   zero(p, n)
//   patchify(patches, images)   unpatchify(dimages, dpatches)            (unpatchify writes dimages)
//   embed_tokens(x0, proj)   embed_tokens_backward(dproj, dpos +=, dcls +=, ddist +=, dx0)
//   pool_forward(pooled, tokens)   pool_backward(dtokens, dpool)         (dtokens written)
//   head_forward(logits, feat)   head_backward(dfeat, VitParams* gp, dlogits, feat)  (dfeat written)
//   site(Site, block, data, rows, cols, ld): observe, then fake-quantize in place
//   site_grad(Site, block, grad, rows, cols): a Linear-input site's d loss/d output, for
//     learned step sizes (may zero the clipped entries); a no-op where steps are not learned
//   observe(Site, block, data, rows, cols, ld): observe only
//   probs_quantized(block): whether P·v reads a quantized copy (att_q)
#pragma once

#include <cstdint>

#include "act_sites.h"
#include "activations.h"
#include "vit_params.h"

namespace spdfq::core {

// Which Linear a linear_forward call is: its activation site and block, and the layer's
// place among the integer-executable ones (integer execution looks the weights up by it).
enum class LinearLayer { Qkv, Proj, Fc1, Fc2, PatchEmbed, Head };
struct LinearRef {
  LinearLayer layer;
  quant::Site site;
  int block;  // -1 outside the blocks
};

template <class Be>
const float* block_output(const Be& be, int l) {
  const BlockActs& a = be.acts().blocks[size_t(l)];
  return be.cfg().norm == NormPlacement::Pre ? a.sum2 : a.ln2;
}

template <class Be>
void block_forward(Be& be, int l, const float* x) {
  using quant::Site;
  const VitConfig& c = be.cfg();
  const int64_t R = int64_t(be.batch()) * c.tokens();
  const int D = c.dim, M = c.mlp_dim;
  const BlockParams& w = be.wq().blocks[size_t(l)];
  BlockActs& a = be.acts().blocks[size_t(l)];
  const bool pre = c.norm == NormPlacement::Pre;

  const float* attn_in = x;
  if (pre) {
    be.layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, x, w.norm1_w, w.norm1_b, R, D);
    be.site(Site::QkvIn, l, a.ln1, R, D, D);
    attn_in = a.ln1;
  } else if (a.qkv_in_q) {
    // Post-norm: the block input is also the residual stream, which stays in float; the
    // quantized copy is what qkv reads.
    be.copy(a.qkv_in_q, x, R * D);
    be.site(Site::QkvIn, l, a.qkv_in_q, R, D, D);
    attn_in = a.qkv_in_q;
  } else {
    be.observe(Site::QkvIn, l, x, R, D, D);
  }
  be.linear_forward(a.qkv, attn_in, w.qkv_w, w.qkv_b, R, D, 3 * D, LinearRef{LinearLayer::Qkv, Site::QkvIn, l});
  be.site(Site::Q, l, a.qkv, R, D, 3 * D);
  be.site(Site::K, l, a.qkv + D, R, D, 3 * D);
  be.site(Site::V, l, a.qkv + 2 * D, R, D, 3 * D);
  be.attention_forward(a.av, a.att, a.qkv, l);
  be.observe(Site::Probs, l, a.att, R * c.heads, c.tokens(), c.tokens());
  be.site(Site::ProjIn, l, a.av, R, D, D);
  be.linear_forward(a.sum1, a.av, w.proj_w, w.proj_b, R, D, D, LinearRef{LinearLayer::Proj, Site::ProjIn, l});
  be.residual_forward(a.sum1, a.sum1, x, R * D);

  const float* residual;  // what the MLP branch is added to
  const float* mlp_in;
  if (pre) {
    be.layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.sum1, w.norm2_w, w.norm2_b, R, D);
    be.site(Site::Fc1In, l, a.ln2, R, D, D);
    mlp_in = a.ln2;
    residual = a.sum1;
  } else {
    be.layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, a.sum1, w.norm1_w, w.norm1_b, R, D);
    residual = a.ln1;
    mlp_in = a.ln1;
    if (a.fc1_in_q) {
      be.copy(a.fc1_in_q, a.ln1, R * D);
      be.site(Site::Fc1In, l, a.fc1_in_q, R, D, D);
      mlp_in = a.fc1_in_q;
    } else {
      be.observe(Site::Fc1In, l, a.ln1, R, D, D);
    }
  }
  be.linear_forward(a.fc1, mlp_in, w.fc1_w, w.fc1_b, R, D, M, LinearRef{LinearLayer::Fc1, Site::Fc1In, l});
  be.activation_forward(a.act, a.fc1, R * M);
  be.site(Site::Fc2In, l, a.act, R, M, M);
  be.linear_forward(a.sum2, a.act, w.fc2_w, w.fc2_b, R, M, D, LinearRef{LinearLayer::Fc2, Site::Fc2In, l});
  be.residual_forward(a.sum2, a.sum2, residual, R * D);
  if (!pre) be.layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.sum2, w.norm2_w, w.norm2_b, R, D);
}

// Patch embedding: im2col, [LayerNorm,] the patch projection, [LayerNorm,] then the token
// sequence (prefix tokens, position embedding) [and its LayerNorm] in acts().x0.
template <class Be>
void embed_forward(Be& be, const float* images) {
  const VitConfig& c = be.cfg();
  VitActs& a = be.acts();
  const VitParams& w = be.wq();
  const int64_t rows = int64_t(be.batch()) * c.patches();
  const int L = c.patch_len(), D = c.dim;
  be.patchify(a.patches, images);
  float* patch_in = a.patches;
  if (c.patch_input_norm) {
    be.layernorm_forward(a.patch_ln, a.patch_ln_mean, a.patch_ln_rstd, a.patches, w.patch_norm_in_w,
                         w.patch_norm_in_b, rows, L);
    patch_in = a.patch_ln;
  }
  be.site(quant::Site::PatchIn, -1, patch_in, rows, L, L);
  // Without an output norm the projections land in the backward scratch (unused during
  // forward); with one, the norm's backward needs them kept.
  float* proj = c.patch_output_norm ? a.patch_proj : be.grads().dtmp;
  be.linear_forward(proj, patch_in, w.patch_w, w.patch_b, rows, L, D,
                    LinearRef{LinearLayer::PatchEmbed, quant::Site::PatchIn, -1});
  if (c.patch_output_norm) {
    be.layernorm_forward(a.patch_tok, a.patch_tok_mean, a.patch_tok_rstd, proj, w.patch_norm_w, w.patch_norm_b,
                         rows, D);
    proj = a.patch_tok;
  }
  if (!c.embed_norm) {
    be.embed_tokens(a.x0, proj);
    return;
  }
  be.embed_tokens(a.x0_raw, proj);
  be.layernorm_forward(a.x0, a.x0_mean, a.x0_rstd, a.x0_raw, w.norm_pre_w, w.norm_pre_b,
                       int64_t(be.batch()) * c.tokens(), D);
}

template <class Be>
void head_forward(Be& be) {
  const VitConfig& c = be.cfg();
  VitActs& a = be.acts();
  const int B = be.batch(), D = c.dim, hin = head_inputs(c);
  const int64_t R = int64_t(B) * c.tokens();
  const float* tokens = block_output(be, c.depth - 1);
  if (c.final_norm == FinalNorm::Tokens) {
    be.layernorm_forward(a.fnorm, a.fnorm_mean, a.fnorm_rstd, tokens, be.wq().norm_w, be.wq().norm_b, R, D);
    tokens = a.fnorm;
  }
  be.pool_forward(a.pooled, tokens);
  if (c.final_norm == FinalNorm::Pooled)
    be.layernorm_forward(a.fnorm, a.fnorm_mean, a.fnorm_rstd, a.pooled, be.wq().norm_w, be.wq().norm_b,
                         int64_t(B) * hin, D);
  be.site(quant::Site::HeadIn, -1, a.feat, int64_t(B) * hin, D, D);
  be.head_forward(a.logits, a.feat);
}

// Embeddings → blocks → head. `between_blocks()` runs before each block (cancellation).
template <class Be, class F>
void model_forward(Be& be, const float* images, F&& between_blocks) {
  embed_forward(be, images);
  const float* x = be.acts().x0;
  for (int l = 0; l < be.cfg().depth; ++l) {
    between_blocks();
    block_forward(be, l, x);
    x = block_output(be, l);
  }
  head_forward(be);
}

// ---------------------------------------------------------------------------- backward
// Gradients flow in grads().dres; weight gradients (gp non-null) accumulate.

template <class Be>
void head_backward(Be& be, const float* dlogits, VitParams* gp) {
  const VitConfig& c = be.cfg();
  VitActs& a = be.acts();
  VitGrads& g = be.grads();
  const int B = be.batch(), D = c.dim, hin = head_inputs(c);
  const int64_t R = int64_t(B) * c.tokens();
  be.head_backward(g.dfeat, gp, dlogits, a.feat);
  const float* dpool = g.dfeat;
  if (c.final_norm == FinalNorm::Pooled) {
    be.zero(g.dpool, int64_t(B) * hin * D);
    be.layernorm_backward(g.dpool, gp ? gp->norm_w : nullptr, gp ? gp->norm_b : nullptr, g.dfeat, a.pooled,
                          be.wq().norm_w, a.fnorm_mean, a.fnorm_rstd, int64_t(B) * hin, D);
    dpool = g.dpool;
  }
  // The pooled gradient scattered back onto the tokens.
  float* dtokens = c.final_norm == FinalNorm::Tokens ? g.dtmp : g.dres;
  be.pool_backward(dtokens, dpool);
  if (c.final_norm == FinalNorm::Tokens) {
    be.zero(g.dres, R * D);
    be.layernorm_backward(g.dres, gp ? gp->norm_w : nullptr, gp ? gp->norm_b : nullptr, g.dtmp,
                          block_output(be, c.depth - 1), be.wq().norm_w, a.fnorm_mean, a.fnorm_rstd, R, D);
  }
}

// From grads().dres = d loss / d block output to grads().dres = d loss / d x (the input).
template <class Be>
void block_backward(Be& be, int l, const float* x, const float* tap_att, const float* tap_av, VitParams* gp) {
  using quant::Site;
  const VitConfig& c = be.cfg();
  VitGrads& g = be.grads();
  const int64_t R = int64_t(be.batch()) * c.tokens();
  const int D = c.dim, M = c.mlp_dim;
  const BlockParams& w = be.wq().blocks[size_t(l)];
  BlockParams* gw = gp ? &gp->blocks[size_t(l)] : nullptr;
  const BlockActs& a = be.acts().blocks[size_t(l)];
  const bool pre = c.norm == NormPlacement::Pre;
  auto G = [&](float* BlockParams::*field) -> float* { return gw ? gw->*field : nullptr; };

  // MLP branch. d sum2 = dres (pre) or norm2ᵀ(dres) (post).
  const float* dsum2 = g.dres;
  if (!pre) {
    be.zero(g.dtmp, R * D);
    be.layernorm_backward(g.dtmp, G(&BlockParams::norm2_w), G(&BlockParams::norm2_b), g.dres, a.sum2, w.norm2_w,
                          a.ln2_mean, a.ln2_rstd, R, D);
    dsum2 = g.dtmp;
  }
  const float* mlp_in = pre ? a.ln2 : (a.fc1_in_q ? a.fc1_in_q : a.ln1);  // what fc1 consumed
  // Scratch gradients are written, not accumulated (accumulate = false: no clearing first).
  be.linear_backward(g.dhid, G(&BlockParams::fc2_w), G(&BlockParams::fc2_b), dsum2, a.act, w.fc2_w, R, M, D, false);
  be.site_grad(Site::Fc2In, l, g.dhid, R, M);
  be.activation_backward(g.dhid2, g.dhid, a.fc1, R * M, false);

  // dsum1: the gradient at sum1 (the attention residual sum).
  float* dsum1;
  if (pre) {
    be.linear_backward(g.dtmp, G(&BlockParams::fc1_w), G(&BlockParams::fc1_b), g.dhid2, mlp_in, w.fc1_w, R, D, M,
                       false);
    be.site_grad(Site::Fc1In, l, g.dtmp, R, D);
    be.layernorm_backward(g.dres, G(&BlockParams::norm2_w), G(&BlockParams::norm2_b), g.dtmp, a.sum1, w.norm2_w,
                          a.ln2_mean, a.ln2_rstd, R, D);
    dsum1 = g.dres;  // residual path plus the norm2 path
  } else {
    be.copy(g.dres, g.dtmp, R * D);  // d ln1 = d sum2 + the MLP path
    be.linear_backward(g.dres, G(&BlockParams::fc1_w), G(&BlockParams::fc1_b), g.dhid2, mlp_in, w.fc1_w, R, D, M,
                       true);
    be.zero(g.dtmp, R * D);
    be.layernorm_backward(g.dtmp, G(&BlockParams::norm1_w), G(&BlockParams::norm1_b), g.dres, a.sum1, w.norm1_w,
                          a.ln1_mean, a.ln1_rstd, R, D);
    be.copy(g.dres, g.dtmp, R * D);  // residual path to x
    dsum1 = g.dtmp;
  }

  // Attention branch: sum1 = x + proj(av); a gradient injected at the A·V tap joins here.
  if (tap_av) be.copy(g.dtmp2, tap_av, R * D);
  be.linear_backward(g.dtmp2, G(&BlockParams::proj_w), G(&BlockParams::proj_b), dsum1, a.av, w.proj_w, R, D, D,
                     tap_av != nullptr);
  be.site_grad(Site::ProjIn, l, g.dtmp2, R, D);
  be.zero(g.dqkv, R * 3 * D);
  be.attention_backward(g.dqkv, g.dtmp2, tap_att, a.att, a.att_q && be.probs_quantized(l) ? a.att_q : a.att, a.qkv,
                        g.att_scratch);
  if (pre) {
    be.linear_backward(g.dtmp, G(&BlockParams::qkv_w), G(&BlockParams::qkv_b), g.dqkv, a.ln1, w.qkv_w, R, D, 3 * D,
                       false);
    be.site_grad(Site::QkvIn, l, g.dtmp, R, D);
    be.layernorm_backward(g.dres, G(&BlockParams::norm1_w), G(&BlockParams::norm1_b), g.dtmp, x, w.norm1_w,
                          a.ln1_mean, a.ln1_rstd, R, D);
  } else {
    be.linear_backward(g.dres, G(&BlockParams::qkv_w), G(&BlockParams::qkv_b), g.dqkv, a.qkv_in_q ? a.qkv_in_q : x,
                       w.qkv_w, R, D, 3 * D, true);
  }
}

// From grads().dres = d loss / d x0 to dimages (written) and the embedding gradients.
template <class Be>
void embed_backward(Be& be, float* dimages, VitParams* gp) {
  const VitConfig& c = be.cfg();
  VitGrads& g = be.grads();
  const VitActs& a = be.acts();
  const VitParams& w = be.wq();
  const int64_t rows = int64_t(be.batch()) * c.patches();
  const int L = c.patch_len(), D = c.dim;
  auto G = [&](float* VitParams::*field) -> float* { return gp ? gp->*field : nullptr; };
  const float* dx0 = g.dres;
  if (c.embed_norm) {
    const int64_t R = int64_t(be.batch()) * c.tokens();
    be.zero(g.dtmp2, R * D);
    be.layernorm_backward(g.dtmp2, G(&VitParams::norm_pre_w), G(&VitParams::norm_pre_b), g.dres, a.x0_raw,
                          w.norm_pre_w, a.x0_mean, a.x0_rstd, R, D);
    dx0 = g.dtmp2;
  }
  float* dproj = g.dtmp;  // the patch tokens' gradients gathered into [B·P, D]
  be.embed_tokens_backward(dproj, G(&VitParams::pos_embed), G(&VitParams::cls_token), G(&VitParams::dist_token),
                           dx0);
  if (c.patch_output_norm) {  // dx0 has been consumed: dtmp2 is free again
    be.zero(g.dtmp2, rows * D);
    be.layernorm_backward(g.dtmp2, G(&VitParams::patch_norm_w), G(&VitParams::patch_norm_b), dproj, a.patch_proj,
                          w.patch_norm_w, a.patch_tok_mean, a.patch_tok_rstd, rows, D);
    dproj = g.dtmp2;
  }
  const float* patch_in = c.patch_input_norm ? a.patch_ln : a.patches;
  be.zero(g.dpatches, rows * L);
  be.linear_backward(g.dpatches, G(&VitParams::patch_w), G(&VitParams::patch_b), dproj, patch_in, w.patch_w, rows, L,
                     D, true);
  if (!c.patch_input_norm) {
    be.unpatchify(dimages, g.dpatches);
    return;
  }
  be.zero(g.dpatches_raw, rows * L);
  be.layernorm_backward(g.dpatches_raw, G(&VitParams::patch_norm_in_w), G(&VitParams::patch_norm_in_b), g.dpatches,
                        a.patches, w.patch_norm_in_w, a.patch_ln_mean, a.patch_ln_rstd, rows, L);
  be.unpatchify(dimages, g.dpatches_raw);
}

// Head → blocks (reverse) → embeddings. `taps(l)` gives block l's injected gradients as
// {attention, A·V} (nullptr: none); `between_blocks()` runs before each block.
template <class Be, class Taps, class F>
void model_backward(Be& be, const float* dlogits, float* dimages, VitParams* gp, Taps&& taps, F&& between_blocks) {
  head_backward(be, dlogits, gp);
  for (int l = be.cfg().depth - 1; l >= 0; --l) {
    between_blocks();
    const auto [tap_att, tap_av] = taps(l);
    block_backward(be, l, l == 0 ? be.acts().x0 : block_output(be, l - 1), tap_att, tap_av, gp);
  }
  embed_backward(be, dimages, gp);
}

}  // namespace spdfq::core
