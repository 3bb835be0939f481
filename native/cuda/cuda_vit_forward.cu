// CudaVit forward: embeddings → blocks → final norm → pooling → head, the same sequence
// of layer ops as CpuVit::forward (native/cpu/vit_cpu.cc), on device pointers.
// Block math (pre-norm):  sum1 = x + proj(attn(norm1(x)));  out = sum1 + fc2(gelu(fc1(norm2(sum1))))
// Block math (post-norm): sum1 = x + proj(attn(x));  ln1 = norm1(sum1);  out = norm2(ln1 + mlp(ln1))
#include "cuda_vit_impl.h"

#include <string>

#include "cuda_check.h"

namespace spdfq::cuda {

const quant::TensorQuant* CudaVit::Impl::probs_quant(int block) const {
  if (!act_quant) return nullptr;
  const auto& q = act_quant->at(quant::Site::Probs, block);
  return q.kind == quant::QuantKind::None ? nullptr : &q;
}

void CudaVit::Impl::observe(quant::Site s, int block, const float* data, int64_t rows, int64_t cols, int64_t ld) {
  if (!observer) return;
  h_site.resize(size_t(rows * cols));
  CUDA_CHECK(cudaMemcpy2DAsync(h_site.data(), size_t(cols) * sizeof(float), data, size_t(ld) * sizeof(float),
                               size_t(cols) * sizeof(float), size_t(rows), cudaMemcpyDeviceToHost, stream));
  sync();
  observer(quant::SiteView{s, block, h_site.data(), rows, cols, cols});
}

void CudaVit::Impl::site(quant::Site s, int block, float* data, int64_t rows, int64_t cols, int64_t ld) {
  observe(s, block, data, rows, cols, ld);
  if (!act_quant) return;
  fake_quant(data, rows, cols, ld, act_quant->at(s, block), ctx());
}

const float* CudaVit::Impl::block_output(int l) const {
  const DeviceBlockActs& b = a.blocks[size_t(l)];
  return c.norm == NormPlacement::Pre ? b.sum2 : b.ln2;
}

void CudaVit::Impl::block_forward(int l, const float* x) {
  using quant::Site;
  const int64_t R = int64_t(batch) * c.tokens();
  const int D = c.dim, M = c.mlp_dim;
  const BlockParams& w = wq().blocks[size_t(l)];
  DeviceBlockActs& b = a.blocks[size_t(l)];
  const bool pre = c.norm == NormPlacement::Pre;
  const Ctx cx = ctx();

  const float* attn_in = x;
  if (pre) {
    layernorm_forward(b.ln1, b.ln1_mean, b.ln1_rstd, x, w.norm1_w, w.norm1_b, R, D, c.ln_eps, cx);
    site(Site::QkvIn, l, b.ln1, R, D, D);
    attn_in = b.ln1;
  } else if (b.qkv_in_q) {
    copy(b.qkv_in_q, x, R * D);
    site(Site::QkvIn, l, b.qkv_in_q, R, D, D);
    attn_in = b.qkv_in_q;
  } else if (observer) {
    observe(Site::QkvIn, l, x, R, D, D);
  }
  linear_forward(b.qkv, attn_in, w.qkv_w, w.qkv_b, R, D, 3 * D, cx);
  site(Site::Q, l, b.qkv, R, D, 3 * D);
  site(Site::K, l, b.qkv + D, R, D, 3 * D);
  site(Site::V, l, b.qkv + 2 * D, R, D, 3 * D);
  attention_forward(b.av, b.att, b.qkv, batch, c.tokens(), c.heads, c.head_dim(), cx, probs_quant(l), b.att_q);
  observe(Site::Probs, l, b.att, R * c.heads, c.tokens(), c.tokens());
  site(Site::ProjIn, l, b.av, R, D, D);
  linear_forward(b.sum1, b.av, w.proj_w, w.proj_b, R, D, D, cx);
  residual_forward(b.sum1, b.sum1, x, R * D, cx);

  const float* residual;
  const float* mlp_in;
  if (pre) {
    layernorm_forward(b.ln2, b.ln2_mean, b.ln2_rstd, b.sum1, w.norm2_w, w.norm2_b, R, D, c.ln_eps, cx);
    site(Site::Fc1In, l, b.ln2, R, D, D);
    mlp_in = b.ln2;
    residual = b.sum1;
  } else {
    layernorm_forward(b.ln1, b.ln1_mean, b.ln1_rstd, b.sum1, w.norm1_w, w.norm1_b, R, D, c.ln_eps, cx);
    residual = b.ln1;
    mlp_in = b.ln1;
    if (b.fc1_in_q) {
      copy(b.fc1_in_q, b.ln1, R * D);
      site(Site::Fc1In, l, b.fc1_in_q, R, D, D);
      mlp_in = b.fc1_in_q;
    } else if (observer) {
      observe(Site::Fc1In, l, b.ln1, R, D, D);
    }
  }
  linear_forward(b.fc1, mlp_in, w.fc1_w, w.fc1_b, R, D, M, cx);
  gelu_forward(b.act, b.fc1, R * M, c.gelu, cx);
  site(Site::Fc2In, l, b.act, R, M, M);
  linear_forward(b.sum2, b.act, w.fc2_w, w.fc2_b, R, M, D, cx);
  residual_forward(b.sum2, b.sum2, residual, R * D, cx);
  if (!pre) layernorm_forward(b.ln2, b.ln2_mean, b.ln2_rstd, b.sum2, w.norm2_w, w.norm2_b, R, D, c.ln_eps, cx);
}

void CudaVit::Impl::head_forward() {
  const int B = batch, D = c.dim, hin = head_inputs(c);
  const int64_t R = int64_t(B) * c.tokens();
  const Ctx cx = ctx();
  const float* tokens = block_output(c.depth - 1);
  if (c.final_norm == FinalNorm::Tokens) {
    layernorm_forward(a.fnorm, a.fnorm_mean, a.fnorm_rstd, tokens, wq().norm_w, wq().norm_b, R, D, c.ln_eps, cx);
    tokens = a.fnorm;
  }
  pool_forward(a.pooled, tokens, B, c, cx);
  if (c.final_norm == FinalNorm::Pooled)
    layernorm_forward(a.fnorm, a.fnorm_mean, a.fnorm_rstd, a.pooled, wq().norm_w, wq().norm_b, int64_t(B) * hin, D,
                      c.ln_eps, cx);
  site(quant::Site::HeadIn, -1, a.feat, int64_t(B) * hin, D, D);
  cuda::head_forward(a.logits, a.feat, wq().head_w, wq().head_b, wq().head_dist_w, wq().head_dist_b, B, c, cx);
}

void CudaVit::Impl::forward(const float* images, int b, const std::atomic<bool>* cancel) {
  if (b < 1) fail("E_TENSOR", "batch must be at least 1, received " + std::to_string(b));
  batch = 0;  // invalid until this pass completes
  ensure_arena(b);
  upload_params();
  batch = b;
  const int P = c.patches(), L = c.patch_len();
  const Ctx cx = ctx();
  try {
    patchify(a.patches, images, b, c, cx);
    site(quant::Site::PatchIn, -1, a.patches, int64_t(b) * P, L, L);
    // Patch projections land in backward scratch (unused during forward), then the
    // token sequence is assembled behind the prefix tokens with the position embedding.
    float* proj = g.dtmp;
    linear_forward(proj, a.patches, wq().patch_w, wq().patch_b, int64_t(b) * P, L, c.dim, cx);
    embed_tokens(a.x0, proj, wq().cls_token, wq().dist_token, wq().pos_embed, b, c, cx);
    const float* x = a.x0;
    for (int l = 0; l < c.depth; ++l) {
      check_cancel(cancel);
      block_forward(l, x);
      x = block_output(l);
    }
    head_forward();
    sync();  // kernel faults surface here, inside this call
  } catch (...) {
    batch = 0;
    throw;
  }
}

}  // namespace spdfq::cuda
