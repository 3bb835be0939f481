// Forward and backward of the whole ViT: embeddings → blocks → final norm → pooling → head.
// Block math (pre-norm, timm):  sum1 = x + proj(attn(norm1(x)));  out = sum1 + fc2(gelu(fc1(norm2(sum1))))
// Block math (post-norm):       sum1 = x + proj(attn(x));  ln1 = norm1(sum1);  out = norm2(ln1 + mlp(ln1))
#include "vit_cpu.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "../core/errors.h"
#include "ops.h"
#include "../quant/quantizer.h"

namespace spdfq::cpu {

void AlignedFree::operator()(float* p) const { std::free(p); }

FloatBuffer alloc_floats(int64_t n, const char* what) {
  const size_t bytes = (size_t(n > 0 ? n : 1) * sizeof(float) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (!p)
    fail("E_MEMORY", std::string("out of memory allocating ") + std::to_string(bytes >> 20) + " MiB for " + what);
  return FloatBuffer(static_cast<float*>(p));
}

namespace {
void zero(float* p, int64_t n) { std::memset(p, 0, size_t(n) * sizeof(float)); }
void check_cancel(const std::atomic<bool>* cancel) {
  if (cancel && cancel->load(std::memory_order_relaxed)) fail("E_CANCELLED", "cancelled");
}
}  // namespace

CpuVit::CpuVit(const VitConfig& config, int threads) : config_(config) {
  config_.validate();
  param_count_ = spdfq::param_count(config_);
  params_ = alloc_floats(param_count_, "parameters");
  zero(params_.get(), param_count_);
  p_ = bind_params(config_, params_.get());
  pool_ = std::make_unique<ThreadPool>(threads);
}

float* CpuVit::grads() {
  if (!grads_) {
    grads_ = alloc_floats(param_count_, "weight gradients");
    zero(grads_.get(), param_count_);
  }
  return grads_.get();
}

void CpuVit::set_threads(int threads) {
  if (threads != pool_->threads()) {
    pool_ = std::make_unique<ThreadPool>(threads);
    arena_.reset();  // attention scratch is sized per thread
    arena_batch_ = 0;
    batch_ = 0;
  }
}

Exec CpuVit::exec() const {
  Exec ex;
  ex.pool = pool_.get();
  ex.reference = reference_;
  ex.gemm = reference_ ? GemmVariant::Ref : GemmVariant::Auto;
  return ex;
}

int64_t CpuVit::activation_bytes(const VitConfig& c, int batch, int threads, bool quant) {
  return plan_activations(c, batch, threads, quant, nullptr, nullptr, nullptr) * int64_t(sizeof(float));
}

void CpuVit::ensure_arena(int batch) {
  const bool quant = act_quant_ != nullptr;
  if (arena_ && batch <= arena_batch_ && quant == arena_quant_probs_) {
    plan_activations(config_, batch, threads(), quant, arena_.get(), &acts_, &g_);
    return;
  }
  const int64_t bytes = activation_bytes(config_, batch, threads(), quant);
  if (bytes > activation_budget_) {
    int fit = 0;
    for (int b = batch - 1; b >= 1; --b)
      if (activation_bytes(config_, b, threads(), quant) <= activation_budget_) {
        fit = b;
        break;
      }
    fail("E_MEMORY", "batch " + std::to_string(batch) + " needs " + std::to_string(bytes >> 20) +
                         " MiB of activations, over the budget of " + std::to_string(activation_budget_ >> 20) +
                         " MiB; the largest batch that fits is " + std::to_string(fit));
  }
  arena_.reset();
  arena_batch_ = 0;
  arena_ = alloc_floats(bytes / int64_t(sizeof(float)), "activations");
  arena_batch_ = batch;
  arena_quant_probs_ = quant;
  plan_activations(config_, batch, threads(), quant, arena_.get(), &acts_, &g_);
}

// ------------------------------------------------------------------------ quantization

float* CpuVit::quant_params() {
  if (!qparams_) {
    qparams_ = alloc_floats(param_count_, "quantized weights");
    std::memcpy(qparams_.get(), params_.get(), sizeof(float) * size_t(param_count_));
    pq_ = bind_params(config_, qparams_.get());
  }
  return qparams_.get();
}

void CpuVit::set_act_quant(const quant::ActQuantState* state) {
  if (state && state->blocks.size() != size_t(config_.depth) * quant::kBlockSites)
    fail("E_CONFIG", "activation quantizers: expected " + std::to_string(config_.depth * quant::kBlockSites) +
                         " block sites, received " + std::to_string(state->blocks.size()));
  act_quant_ = state;
  batch_ = 0;  // the arena layout may change; a new forward is needed before backward
}

const quant::TensorQuant* CpuVit::probs_quant(int block) const {
  if (!act_quant_) return nullptr;
  const auto& q = act_quant_->at(quant::Site::Probs, block);
  return q.kind == quant::QuantKind::None ? nullptr : &q;
}

void CpuVit::site(quant::Site s, int block, float* data, int64_t rows, int64_t cols, int64_t ld) {
  if (observer_) observer_(quant::SiteView{s, block, data, rows, cols, ld});
  if (!act_quant_) return;
  const quant::TensorQuant& q = act_quant_->at(s, block);
  if (q.kind == quant::QuantKind::None) return;
  exec().parallel_rows(rows, [&](int64_t r0, int64_t r1, int) {
    if (ld == cols) {
      quant::fake_quant_tensor(data + r0 * ld, (r1 - r0) * cols, q);
    } else {
      for (int64_t r = r0; r < r1; ++r) quant::fake_quant_tensor(data + r * ld, cols, q);
    }
  });
}

void CpuVit::set_integer_weights(std::vector<std::pair<std::string, QLinearWeights>> layers) {
  integer_ = std::move(layers);
  integer_blocks_.assign(config_.depth, {nullptr, nullptr, nullptr, nullptr});
  integer_patch_ = integer_layer("patch_embed.proj.weight");
  // The distilled head averages two Linears over two tokens: it stays in simulation.
  integer_head_ = config_.dist_token ? nullptr : integer_layer("head.weight");
  for (int l = 0; l < config_.depth; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    integer_blocks_[l] = {integer_layer(p + "attn.qkv.weight"), integer_layer(p + "attn.proj.weight"),
                          integer_layer(p + "mlp.fc1.weight"), integer_layer(p + "mlp.fc2.weight")};
  }
  if (integer_.empty()) integer_mode_ = false;
}

const QLinearWeights* CpuVit::integer_layer(const std::string& name) const {
  for (const auto& [n, w] : integer_)
    if (n == name) return &w;
  return nullptr;
}

void CpuVit::linear(float* out, const float* in, const float* w, const float* b, int64_t rows, int I, int O,
                    const Exec& ex, const QLinearWeights* qw, quant::Site site_id, int block) {
  const quant::TensorQuant* act = act_quant_ ? &act_quant_->at(site_id, block) : nullptr;
  if (!integer_mode_ || !qw || !act || !qlinear_act_supported(*act)) {
    linear_forward(out, in, w, b, rows, I, O, ex);
    return;
  }
  ex.parallel_rows(rows, [&](int64_t r0, int64_t r1, int) {
    qlinear_forward(out + r0 * O, in + r0 * I, int(r1 - r0), I, O, *act, *qw, b);
  });
}

// Quantized copy of a residual-stream tensor for post-norm blocks (see BlockActs).
static const float* quantized_copy(float* buf, const float* src, int64_t n) {
  std::memcpy(buf, src, sizeof(float) * size_t(n));
  return buf;
}

// ---------------------------------------------------------------------------- forward

const float* CpuVit::block_output(int l) const {
  const BlockActs& a = acts_.blocks[l];
  return config_.norm == NormPlacement::Pre ? a.sum2 : a.ln2;
}

void CpuVit::block_forward(int l, const float* x, const Exec& ex) {
  using quant::Site;
  const VitConfig& c = config_;
  const int64_t R = int64_t(batch_) * c.tokens();
  const int D = c.dim, M = c.mlp_dim;
  const BlockParams& w = wq().blocks[l];
  BlockActs& a = acts_.blocks[l];
  const bool pre = c.norm == NormPlacement::Pre;

  const float* attn_in = x;
  if (pre) {
    layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, x, w.norm1_w, w.norm1_b, R, D, c.ln_eps, ex);
    site(Site::QkvIn, l, a.ln1, R, D, D);
    attn_in = a.ln1;
  } else if (a.qkv_in_q) {
    attn_in = quantized_copy(a.qkv_in_q, x, R * D);
    site(Site::QkvIn, l, a.qkv_in_q, R, D, D);
  } else if (observer_) {
    observer_(quant::SiteView{Site::QkvIn, l, x, R, D, D});
  }
  const auto* ib = integer_mode_ ? &integer_blocks_[l] : nullptr;
  linear(a.qkv, attn_in, w.qkv_w, w.qkv_b, R, D, 3 * D, ex, ib ? (*ib)[0] : nullptr, Site::QkvIn, l);
  site(Site::Q, l, a.qkv, R, D, 3 * D);
  site(Site::K, l, a.qkv + D, R, D, 3 * D);
  site(Site::V, l, a.qkv + 2 * D, R, D, 3 * D);
  attention_forward(a.av, a.att, a.qkv, batch_, c.tokens(), c.heads, c.head_dim(), ex, probs_quant(l), a.att_q);
  if (observer_) observer_(quant::SiteView{Site::Probs, l, a.att, R * c.heads, c.tokens(), c.tokens()});
  site(Site::ProjIn, l, a.av, R, D, D);
  linear(a.sum1, a.av, w.proj_w, w.proj_b, R, D, D, ex, ib ? (*ib)[1] : nullptr, Site::ProjIn, l);
  residual_forward(a.sum1, a.sum1, x, R * D, ex);

  const float* residual;  // what the MLP branch is added to
  const float* mlp_in;
  if (pre) {
    layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.sum1, w.norm2_w, w.norm2_b, R, D, c.ln_eps, ex);
    site(Site::Fc1In, l, a.ln2, R, D, D);
    mlp_in = a.ln2;
    residual = a.sum1;
  } else {
    layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, a.sum1, w.norm1_w, w.norm1_b, R, D, c.ln_eps, ex);
    residual = a.ln1;
    mlp_in = a.ln1;
    if (a.fc1_in_q) {
      mlp_in = quantized_copy(a.fc1_in_q, a.ln1, R * D);
      site(Site::Fc1In, l, a.fc1_in_q, R, D, D);
    } else if (observer_) {
      observer_(quant::SiteView{Site::Fc1In, l, a.ln1, R, D, D});
    }
  }
  linear(a.fc1, mlp_in, w.fc1_w, w.fc1_b, R, D, M, ex, ib ? (*ib)[2] : nullptr, Site::Fc1In, l);
  gelu_forward(a.act, a.fc1, R * M, c.gelu, ex);
  site(Site::Fc2In, l, a.act, R, M, M);
  linear(a.sum2, a.act, w.fc2_w, w.fc2_b, R, M, D, ex, ib ? (*ib)[3] : nullptr, Site::Fc2In, l);
  residual_forward(a.sum2, a.sum2, residual, R * D, ex);
  if (!pre) layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.sum2, w.norm2_w, w.norm2_b, R, D, c.ln_eps, ex);
}

void CpuVit::head_forward(const Exec& ex) {
  const VitConfig& c = config_;
  const int B = batch_, N = c.tokens(), D = c.dim, K = c.num_classes, hin = head_inputs(c), pre = c.prefix();
  const int64_t R = int64_t(B) * N;
  const float* tokens = block_output(c.depth - 1);
  if (c.final_norm == FinalNorm::Tokens) {
    layernorm_forward(acts_.fnorm, acts_.fnorm_mean, acts_.fnorm_rstd, tokens, wq().norm_w, wq().norm_b, R, D, c.ln_eps,
                      ex);
    tokens = acts_.fnorm;
  }
  for (int b = 0; b < B; ++b) {
    float* out = acts_.pooled + int64_t(b) * hin * D;
    const float* img = tokens + int64_t(b) * N * D;
    if (c.pooling == Pooling::Token) {
      std::memcpy(out, img, sizeof(float) * size_t(hin) * D);  // class (and distillation) token
    } else {
      zero(out, D);
      for (int n = pre; n < N; ++n)
        for (int i = 0; i < D; ++i) out[i] += img[int64_t(n) * D + i];
      const float inv = 1.0f / float(N - pre);
      for (int i = 0; i < D; ++i) out[i] *= inv;
    }
  }
  if (c.final_norm == FinalNorm::Pooled)
    layernorm_forward(acts_.fnorm, acts_.fnorm_mean, acts_.fnorm_rstd, acts_.pooled, wq().norm_w, wq().norm_b,
                      int64_t(B) * hin, D, c.ln_eps, ex);
  site(quant::Site::HeadIn, -1, acts_.feat, int64_t(B) * hin, D, D);
  // Distilled DeiT: logits = ½(head(x_cls) + head_dist(x_dist)).
  const float scale = c.dist_token ? 0.5f : 1.0f;
  if (integer_mode_ && integer_head_) {
    linear(acts_.logits, acts_.feat, wq().head_w, wq().head_b, B, D, K, ex, integer_head_, quant::Site::HeadIn, -1);
    return;
  }
  for (int h = 0; h < hin; ++h) {
    GemmArgs g;
    g.transB = true;
    g.M = B;
    g.N = K;
    g.K = D;
    g.alpha = scale;
    g.A = acts_.feat + int64_t(h) * D;
    g.lda = hin * D;
    g.B = h == 0 ? wq().head_w : wq().head_dist_w;
    g.ldb = D;
    g.beta = h == 0 ? 0.0f : 1.0f;
    g.C = acts_.logits;
    g.ldc = K;
    gemm_parallel(ex, g);
  }
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < K; ++k)
      acts_.logits[int64_t(b) * K + k] += scale * (wq().head_b[k] + (c.dist_token ? wq().head_dist_b[k] : 0.0f));
}

void CpuVit::forward(const float* images, int batch, const std::atomic<bool>* cancel) {
  if (batch < 1) fail("E_TENSOR", "batch must be at least 1, received " + std::to_string(batch));
  const VitConfig& c = config_;
  batch_ = 0;  // invalid until this pass completes
  ensure_arena(batch);
  batch_ = batch;
  const Exec ex = exec();
  const int B = batch, N = c.tokens(), D = c.dim, P = c.patches(), pre = c.prefix();

  patchify(acts_.patches, images, B, c, ex);
  site(quant::Site::PatchIn, -1, acts_.patches, int64_t(B) * P, c.patch_len(), c.patch_len());
  // Patch projections land in the backward scratch (unused during forward), then are
  // scattered behind the prefix tokens with the position embedding added.
  float* proj = g_.dtmp;
  linear(proj, acts_.patches, wq().patch_w, wq().patch_b, int64_t(B) * P, c.patch_len(), D, ex,
         integer_mode_ ? integer_patch_ : nullptr, quant::Site::PatchIn, -1);
  for (int b = 0; b < B; ++b)
    for (int n = 0; n < N; ++n) {
      const float* src = n == 0 && c.class_token ? wq().cls_token
                         : n == 1 && c.dist_token ? wq().dist_token
                                                  : proj + (int64_t(b) * P + (n - pre)) * D;
      float* dst = acts_.x0 + (int64_t(b) * N + n) * D;
      const float* pos = wq().pos_embed + int64_t(n) * D;
      for (int i = 0; i < D; ++i) dst[i] = src[i] + pos[i];
    }
  const float* x = acts_.x0;
  try {
    for (int l = 0; l < c.depth; ++l) {
      check_cancel(cancel);
      block_forward(l, x, ex);
      x = block_output(l);
    }
    head_forward(ex);
  } catch (...) {
    batch_ = 0;
    throw;
  }
}

// --------------------------------------------------------------------------- backward

void CpuVit::head_backward(const float* dlogits, VitParams* gp, const Exec& ex) {
  const VitConfig& c = config_;
  const int B = batch_, N = c.tokens(), D = c.dim, K = c.num_classes, hin = head_inputs(c), pre = c.prefix();
  const int64_t R = int64_t(B) * N;
  const float scale = c.dist_token ? 0.5f : 1.0f;
  zero(g_.dfeat, int64_t(B) * hin * D);
  for (int h = 0; h < hin; ++h) {
    const float* W = h == 0 ? wq().head_w : wq().head_dist_w;
    GemmArgs g;  // dfeat[:, h] += scale · dlogits · W
    g.M = B;
    g.N = D;
    g.K = K;
    g.alpha = scale;
    g.A = dlogits;
    g.lda = K;
    g.B = W;
    g.ldb = D;
    g.beta = 1.0f;
    g.C = g_.dfeat + int64_t(h) * D;
    g.ldc = hin * D;
    gemm_parallel(ex, g);
    if (gp) {
      float* dW = h == 0 ? gp->head_w : gp->head_dist_w;
      float* db = h == 0 ? gp->head_b : gp->head_dist_b;
      GemmArgs gw;  // dW += scale · dlogitsᵀ · feat[:, h]
      gw.transA = true;
      gw.M = K;
      gw.N = D;
      gw.K = B;
      gw.alpha = scale;
      gw.A = dlogits;
      gw.lda = K;
      gw.B = acts_.feat + int64_t(h) * D;
      gw.ldb = hin * D;
      gw.beta = 1.0f;
      gw.C = dW;
      gw.ldc = D;
      gemm_parallel(ex, gw);
      for (int b = 0; b < B; ++b)
        for (int k = 0; k < K; ++k) db[k] += scale * dlogits[int64_t(b) * K + k];
    }
  }
  const float* dpool = g_.dfeat;
  if (c.final_norm == FinalNorm::Pooled) {
    zero(g_.dpool, int64_t(B) * hin * D);
    layernorm_backward(g_.dpool, gp ? gp->norm_w : nullptr, gp ? gp->norm_b : nullptr, g_.dfeat, acts_.pooled,
                       wq().norm_w, acts_.fnorm_mean, acts_.fnorm_rstd, int64_t(B) * hin, D, ex);
    dpool = g_.dpool;
  }
  // Scatter the pooled gradient back onto the tokens.
  float* dtokens = c.final_norm == FinalNorm::Tokens ? g_.dtmp : g_.dres;
  zero(dtokens, R * D);
  for (int b = 0; b < B; ++b) {
    const float* src = dpool + int64_t(b) * hin * D;
    float* img = dtokens + int64_t(b) * N * D;
    if (c.pooling == Pooling::Token) {
      for (int i = 0; i < hin * D; ++i) img[i] += src[i];
    } else {
      const float inv = 1.0f / float(N - pre);
      for (int n = pre; n < N; ++n)
        for (int i = 0; i < D; ++i) img[int64_t(n) * D + i] += src[i] * inv;
    }
  }
  if (c.final_norm == FinalNorm::Tokens) {
    zero(g_.dres, R * D);
    layernorm_backward(g_.dres, gp ? gp->norm_w : nullptr, gp ? gp->norm_b : nullptr, g_.dtmp,
                       block_output(c.depth - 1), wq().norm_w, acts_.fnorm_mean, acts_.fnorm_rstd, R, D, ex);
  }
}

void CpuVit::block_backward(int l, const float* x, const TapGrads& taps, VitParams* gp, const Exec& ex) {
  const VitConfig& c = config_;
  const int64_t R = int64_t(batch_) * c.tokens();
  const int D = c.dim, M = c.mlp_dim;
  const BlockParams& w = wq().blocks[l];
  BlockParams* gw = gp ? &gp->blocks[l] : nullptr;
  const BlockActs& a = acts_.blocks[l];
  const bool pre = c.norm == NormPlacement::Pre;
  auto G = [&](float* BlockParams::*field) -> float* { return gw ? gw->*field : nullptr; };
  const float* tap_att = l < int(taps.attn.size()) ? taps.attn[l] : nullptr;
  const float* tap_av = l < int(taps.av.size()) ? taps.av[l] : nullptr;

  // MLP branch. d_sum2 = dres (pre) or norm2ᵀ(dres) (post).
  const float* dsum2 = g_.dres;
  if (!pre) {
    zero(g_.dtmp, R * D);
    layernorm_backward(g_.dtmp, G(&BlockParams::norm2_w), G(&BlockParams::norm2_b), g_.dres, a.sum2, w.norm2_w,
                       a.ln2_mean, a.ln2_rstd, R, D, ex);
    dsum2 = g_.dtmp;
  }
  const float* mlp_in = pre ? a.ln2 : (a.fc1_in_q ? a.fc1_in_q : a.ln1);  // what fc1 consumed
  // Scratch gradients are written, not accumulated (no memset first): accumulate = false.
  linear_backward(g_.dhid, G(&BlockParams::fc2_w), G(&BlockParams::fc2_b), dsum2, a.act, w.fc2_w, R, M, D, ex, false);
  gelu_backward(g_.dhid2, g_.dhid, a.fc1, R * M, c.gelu, ex, false);

  // dsum1: the gradient at sum1 (the attention residual sum).
  float* dsum1;
  if (pre) {
    linear_backward(g_.dtmp, G(&BlockParams::fc1_w), G(&BlockParams::fc1_b), g_.dhid2, mlp_in, w.fc1_w, R, D, M, ex,
                    false);
    layernorm_backward(g_.dres, G(&BlockParams::norm2_w), G(&BlockParams::norm2_b), g_.dtmp, a.sum1, w.norm2_w,
                       a.ln2_mean, a.ln2_rstd, R, D, ex);
    dsum1 = g_.dres;  // residual path plus the norm2 path
  } else {
    std::memcpy(g_.dres, g_.dtmp, sizeof(float) * size_t(R * D));  // d ln1 = d sum2 + MLP path
    linear_backward(g_.dres, G(&BlockParams::fc1_w), G(&BlockParams::fc1_b), g_.dhid2, mlp_in, w.fc1_w, R, D, M, ex);
    zero(g_.dtmp, R * D);
    layernorm_backward(g_.dtmp, G(&BlockParams::norm1_w), G(&BlockParams::norm1_b), g_.dres, a.sum1, w.norm1_w,
                       a.ln1_mean, a.ln1_rstd, R, D, ex);
    std::memcpy(g_.dres, g_.dtmp, sizeof(float) * size_t(R * D));  // residual path to x
    dsum1 = g_.dtmp;
  }

  // Attention branch: sum1 = x + proj(av).
  if (tap_av) std::memcpy(g_.dtmp2, tap_av, sizeof(float) * size_t(R * D));
  linear_backward(g_.dtmp2, G(&BlockParams::proj_w), G(&BlockParams::proj_b), dsum1, a.av, w.proj_w, R, D, D, ex,
                  tap_av != nullptr);
  zero(g_.dqkv, R * 3 * D);
  attention_backward(g_.dqkv, g_.dtmp2, tap_att, a.att, a.att_q && probs_quant(l) ? a.att_q : a.att, a.qkv,
                     batch_, c.tokens(), c.heads, c.head_dim(),
                     g_.att_scratch, ex);
  if (pre) {
    linear_backward(g_.dtmp, G(&BlockParams::qkv_w), G(&BlockParams::qkv_b), g_.dqkv, a.ln1, w.qkv_w, R, D, 3 * D,
                    ex, false);
    layernorm_backward(g_.dres, G(&BlockParams::norm1_w), G(&BlockParams::norm1_b), g_.dtmp, x, w.norm1_w,
                       a.ln1_mean, a.ln1_rstd, R, D, ex);
  } else {
    linear_backward(g_.dres, G(&BlockParams::qkv_w), G(&BlockParams::qkv_b), g_.dqkv, a.qkv_in_q ? a.qkv_in_q : x,
                    w.qkv_w, R, D, 3 * D, ex);
  }
  // g_.dres now holds d loss / d x, the block input.
}

void CpuVit::embed_backward(float* dimages, VitParams* gp, const Exec& ex) {
  const VitConfig& c = config_;
  const int B = batch_, N = c.tokens(), D = c.dim, P = c.patches(), pre = c.prefix();
  if (gp) {
    for (int b = 0; b < B; ++b)
      for (int n = 0; n < N; ++n) {
        const float* d = g_.dres + (int64_t(b) * N + n) * D;
        float* dpos = gp->pos_embed + int64_t(n) * D;
        for (int i = 0; i < D; ++i) dpos[i] += d[i];
        float* dtok = n == 0 && c.class_token ? gp->cls_token : n == 1 && c.dist_token ? gp->dist_token : nullptr;
        if (dtok)
          for (int i = 0; i < D; ++i) dtok[i] += d[i];
      }
  }
  // Gather the patch tokens' gradients into contiguous rows [B·P, D].
  float* dproj = g_.dtmp;
  for (int b = 0; b < B; ++b)
    std::memcpy(dproj + int64_t(b) * P * D, g_.dres + (int64_t(b) * N + pre) * D, sizeof(float) * size_t(P) * D);
  zero(g_.dpatches, int64_t(B) * P * c.patch_len());
  linear_backward(g_.dpatches, gp ? gp->patch_w : nullptr, gp ? gp->patch_b : nullptr, dproj, acts_.patches,
                  wq().patch_w, int64_t(B) * P, c.patch_len(), D, ex);
  zero(dimages, int64_t(B) * c.image_len());
  unpatchify_accumulate(dimages, g_.dpatches, B, c, ex);
}

void CpuVit::backward(const float* dlogits, const TapGrads& taps, float* dimages, bool weight_grads,
                      const std::atomic<bool>* cancel) {
  if (batch_ == 0) fail("E_STATE", "backward needs a completed forward pass on this model first");
  if (integer_mode_) fail("E_STATE", "backward is not available in integer execution mode (it is inference only)");
  const Exec ex = exec();
  VitParams gp{};
  if (weight_grads) {
    zero(grads(), param_count_);
    gp = bind_params(config_, grads_.get());
  }
  VitParams* gpp = weight_grads ? &gp : nullptr;
  head_backward(dlogits, gpp, ex);
  for (int l = config_.depth - 1; l >= 0; --l) {
    check_cancel(cancel);
    block_backward(l, l == 0 ? acts_.x0 : block_output(l - 1), taps, gpp, ex);
  }
  embed_backward(dimages, gpp, ex);
}

// ------------------------------------------------------------------ block-level passes

void CpuVit::prepare(int batch) {
  if (batch < 1) fail("E_TENSOR", "batch must be at least 1, received " + std::to_string(batch));
  batch_ = 0;
  ensure_arena(batch);
  batch_ = batch;
}

void CpuVit::forward_block(int l, const float* x_in) {
  if (batch_ == 0) fail("E_STATE", "forward_block needs prepare(batch) first");
  if (l < 0 || l >= config_.depth) fail("E_CONFIG", "block index " + std::to_string(l) + " out of range");
  block_forward(l, x_in, exec());
}

void CpuVit::backward_block(int l, const float* x_in, const float* dout, float* dx_in, bool weight_grads) {
  if (batch_ == 0) fail("E_STATE", "backward_block needs forward_block first");
  const int64_t n = int64_t(batch_) * config_.tokens() * config_.dim;
  VitParams gp{};
  if (weight_grads) {
    gp = bind_params(config_, grads());
    // A block's parameters are contiguous in the arena: norm1.weight … mlp.fc2.bias.
    const BlockParams& b = gp.blocks[l];
    zero(b.norm1_w, (b.fc2_b + config_.dim) - b.norm1_w);
  }
  std::memcpy(g_.dres, dout, sizeof(float) * size_t(n));
  block_backward(l, x_in, TapGrads{}, weight_grads ? &gp : nullptr, exec());
  if (dx_in) std::memcpy(dx_in, g_.dres, sizeof(float) * size_t(n));
}

}  // namespace spdfq::cpu
