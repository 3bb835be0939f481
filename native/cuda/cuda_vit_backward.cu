// CudaVit backward: head → blocks (reverse, tap gradients injected) → embeddings, the same
// sequence of layer ops as CpuVit::backward (native/cpu/vit_cpu.cc), on device pointers.
#include "cuda_vit_impl.h"

#include "cuda_check.h"

namespace spdfq::cuda {

VitParams* CudaVit::Impl::begin_weight_grads() {
  if (!d_grads) {
    d_grads = DeviceBuffer(nparams * int64_t(sizeof(float)), "weight gradients");
    gp = bind_params(c, d_grads.floats());
  }
  zero(d_grads.floats(), nparams);
  return &gp;
}

void CudaVit::Impl::head_backward(const float* dlogits, VitParams* gpp) {
  const int B = batch, D = c.dim, hin = head_inputs(c);
  const int64_t R = int64_t(B) * c.tokens();
  const Ctx cx = ctx();
  cuda::head_backward(g.dfeat, gpp ? gpp->head_w : nullptr, gpp ? gpp->head_b : nullptr,
                      gpp ? gpp->head_dist_w : nullptr, gpp ? gpp->head_dist_b : nullptr, dlogits, a.feat,
                      wq().head_w, wq().head_dist_w, B, c, cx);
  const float* dpool = g.dfeat;
  if (c.final_norm == FinalNorm::Pooled) {
    zero(g.dpool, int64_t(B) * hin * D);
    layernorm_backward(g.dpool, gpp ? gpp->norm_w : nullptr, gpp ? gpp->norm_b : nullptr, g.dfeat, a.pooled,
                       wq().norm_w, a.fnorm_mean, a.fnorm_rstd, int64_t(B) * hin, D, cx);
    dpool = g.dpool;
  }
  // Scatter the pooled gradient back onto the tokens (every element written).
  float* dtokens = c.final_norm == FinalNorm::Tokens ? g.dtmp : g.dres;
  pool_backward(dtokens, dpool, B, c, cx);
  if (c.final_norm == FinalNorm::Tokens) {
    zero(g.dres, R * D);
    layernorm_backward(g.dres, gpp ? gpp->norm_w : nullptr, gpp ? gpp->norm_b : nullptr, g.dtmp,
                       block_output(c.depth - 1), wq().norm_w, a.fnorm_mean, a.fnorm_rstd, R, D, cx);
  }
}

void CudaVit::Impl::block_backward(int l, const float* x, const float* tap_att, const float* tap_av, VitParams* gpp) {
  const int64_t R = int64_t(batch) * c.tokens();
  const int D = c.dim, M = c.mlp_dim;
  const BlockParams& w = wq().blocks[size_t(l)];
  BlockParams* gw = gpp ? &gpp->blocks[size_t(l)] : nullptr;
  const DeviceBlockActs& b = a.blocks[size_t(l)];
  const bool pre = c.norm == NormPlacement::Pre;
  const Ctx cx = ctx();
  auto G = [&](float* BlockParams::*field) -> float* { return gw ? gw->*field : nullptr; };

  // MLP branch. d sum2 = dres (pre) or norm2ᵀ(dres) (post).
  const float* dsum2 = g.dres;
  if (!pre) {
    zero(g.dtmp, R * D);
    layernorm_backward(g.dtmp, G(&BlockParams::norm2_w), G(&BlockParams::norm2_b), g.dres, b.sum2, w.norm2_w,
                       b.ln2_mean, b.ln2_rstd, R, D, cx);
    dsum2 = g.dtmp;
  }
  const float* mlp_in = pre ? b.ln2 : (b.fc1_in_q ? b.fc1_in_q : b.ln1);  // what fc1 consumed
  zero(g.dhid, R * M);
  linear_backward(g.dhid, G(&BlockParams::fc2_w), G(&BlockParams::fc2_b), dsum2, b.act, w.fc2_w, R, M, D, cx);
  zero(g.dhid2, R * M);
  gelu_backward(g.dhid2, g.dhid, b.fc1, R * M, c.gelu, cx);

  float* dsum1;
  if (pre) {
    zero(g.dtmp, R * D);
    linear_backward(g.dtmp, G(&BlockParams::fc1_w), G(&BlockParams::fc1_b), g.dhid2, mlp_in, w.fc1_w, R, D, M, cx);
    layernorm_backward(g.dres, G(&BlockParams::norm2_w), G(&BlockParams::norm2_b), g.dtmp, b.sum1, w.norm2_w,
                       b.ln2_mean, b.ln2_rstd, R, D, cx);
    dsum1 = g.dres;  // residual path plus the norm2 path
  } else {
    copy(g.dres, g.dtmp, R * D);  // d ln1 = d sum2 + the MLP path
    linear_backward(g.dres, G(&BlockParams::fc1_w), G(&BlockParams::fc1_b), g.dhid2, mlp_in, w.fc1_w, R, D, M, cx);
    zero(g.dtmp, R * D);
    layernorm_backward(g.dtmp, G(&BlockParams::norm1_w), G(&BlockParams::norm1_b), g.dres, b.sum1, w.norm1_w,
                       b.ln1_mean, b.ln1_rstd, R, D, cx);
    copy(g.dres, g.dtmp, R * D);  // residual path to x
    dsum1 = g.dtmp;
  }

  // Attention branch: sum1 = x + proj(av).
  if (tap_av)
    copy(g.dtmp2, tap_av, R * D);
  else
    zero(g.dtmp2, R * D);
  linear_backward(g.dtmp2, G(&BlockParams::proj_w), G(&BlockParams::proj_b), dsum1, b.av, w.proj_w, R, D, D, cx);
  zero(g.dqkv, R * 3 * D);
  attention_backward(g.dqkv, g.dtmp2, tap_att, b.att, b.att_q && probs_quant(l) ? b.att_q : b.att, b.qkv, batch,
                     c.tokens(), c.heads, c.head_dim(), g.datt, cx);
  if (pre) {
    zero(g.dtmp, R * D);
    linear_backward(g.dtmp, G(&BlockParams::qkv_w), G(&BlockParams::qkv_b), g.dqkv, b.ln1, w.qkv_w, R, D, 3 * D, cx);
    layernorm_backward(g.dres, G(&BlockParams::norm1_w), G(&BlockParams::norm1_b), g.dtmp, x, w.norm1_w, b.ln1_mean,
                       b.ln1_rstd, R, D, cx);
  } else {
    linear_backward(g.dres, G(&BlockParams::qkv_w), G(&BlockParams::qkv_b), g.dqkv, b.qkv_in_q ? b.qkv_in_q : x,
                    w.qkv_w, R, D, 3 * D, cx);
  }
  // g.dres now holds d loss / d x, the block input.
}

void CudaVit::Impl::embed_backward(float* dimages, VitParams* gpp) {
  const int B = batch, P = c.patches(), L = c.patch_len();
  const Ctx cx = ctx();
  float* dproj = g.dtmp;  // the patch tokens' gradients gathered into [B·P, D]
  embed_tokens_backward(dproj, gpp ? gpp->pos_embed : nullptr, gpp ? gpp->cls_token : nullptr,
                        gpp ? gpp->dist_token : nullptr, g.dres, B, c, cx);
  zero(g.dpatches, int64_t(B) * P * L);
  linear_backward(g.dpatches, gpp ? gpp->patch_w : nullptr, gpp ? gpp->patch_b : nullptr, dproj, a.patches,
                  wq().patch_w, int64_t(B) * P, L, c.dim, cx);
  zero(dimages, int64_t(B) * c.image_len());
  unpatchify_accumulate(dimages, g.dpatches, B, c, cx);
}

void CudaVit::Impl::backward(const float* dlogits, const TapGrads& taps, bool taps_on_host, float* dimages,
                             bool weight_grads, const std::atomic<bool>* cancel) {
  if (batch == 0) fail("E_STATE", "backward needs a completed forward pass on this model first");
  upload_params();
  VitParams* gpp = weight_grads ? begin_weight_grads() : nullptr;
  if (weight_grads) grads_on_device = true;
  const int64_t att_n = int64_t(batch) * c.heads * c.tokens() * c.tokens();
  const int64_t av_n = int64_t(batch) * c.tokens() * c.dim;
  head_backward(dlogits, gpp);
  for (int l = c.depth - 1; l >= 0; --l) {
    check_cancel(cancel);
    const float* ta = size_t(l) < taps.attn.size() ? taps.attn[size_t(l)] : nullptr;
    const float* tv = size_t(l) < taps.av.size() ? taps.av[size_t(l)] : nullptr;
    if (taps_on_host) {  // staged one block at a time; the stream orders reuse of the slots
      if (ta) {
        upload(io.tap_attn, ta, att_n);
        ta = io.tap_attn;
      }
      if (tv) {
        upload(io.tap_av, tv, av_n);
        tv = io.tap_av;
      }
    }
    block_backward(l, l == 0 ? a.x0 : block_output(l - 1), ta, tv, gpp);
  }
  embed_backward(dimages, gpp);
  sync();
}

}  // namespace spdfq::cuda
