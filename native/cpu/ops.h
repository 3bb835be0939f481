// The ViT's layers on the CPU, one forward and one backward function per layer.
//
// Conventions (as llm.c): arguments are outputs, inputs, weights, sizes, exec. Every
// backward ACCUMULATES (+=) into its gradient outputs — callers zero them first — and a
// nullptr gradient output means "not needed": that work is skipped (synthesis freezes the
// weights, so it asks for no weight gradients). Tensors are row-major, tokens-major:
// activations [rows, features] with rows = batch × tokens.
#pragma once

#include <cstdint>

#include "../core/vit_config.h"
#include "../core/quantizer.h"
#include "exec.h"

namespace spdfq::cpu {

// ---- LayerNorm over the last axis (length D) of `rows` rows --------------------------
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                       int64_t rows, int D, float eps, const Exec& ex);
void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                        const float* mean, const float* rstd, int64_t rows, int D, const Exec& ex);

// ---- Linear: out[rows, O] = inp[rows, I] · wᵀ + b, w in PyTorch [O, I] layout ---------
void linear_forward(float* out, const float* inp, const float* w, const float* b, int64_t rows, int I, int O,
                    const Exec& ex);
// accumulate_dinp = false overwrites dinp instead of adding to it (no memset beforehand:
// the GEMM runs with beta = 0, which never reads dinp).
void linear_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                     int64_t rows, int I, int O, const Exec& ex, bool accumulate_dinp = true);

// ---- The MLP activation, element-wise over n values ------------------------------------
void activation_forward(float* out, const float* inp, int64_t n, Activation kind, const Exec& ex);
void activation_backward(float* dinp, const float* dout, const float* inp, int64_t n, Activation kind, const Exec& ex,
                         bool accumulate = true);

// ---- Multi-head self-attention core -------------------------------------------------
// qkv [B, N, 3D] (q, k, v blocks of D channels, head h at channels h·hd..), att [B, H, N, N]
// softmax(q·kᵀ/√hd) kept for backward and as a tap, av [B, N, D] = att·v with heads merged.
// With probs_q (a quantizer of the probabilities) the P·v product reads a fake-quantized
// copy written to att_q [B, H, N, N]; att keeps the exact softmax.
void attention_forward(float* av, float* att, const float* qkv, int B, int N, int H, int hd, const Exec& ex,
                       const quant::TensorQuant* probs_q = nullptr, float* att_q = nullptr);
// dav: gradient at av (the merged-heads tap gradient already added in); datt_extra: a
// gradient injected at the probabilities tap (nullptr if none); accumulates into dqkv.
// att_pv: the probabilities P·v used (att_q when quantized, else att); straight-through.
void attention_backward(float* dqkv, const float* dav, const float* datt_extra, const float* att, const float* att_pv,
                        const float* qkv, int B, int N, int H, int hd, float* scratch, const Exec& ex);
// Scratch floats attention_backward needs for `threads` workers.
int64_t attention_scratch_floats(int N, int threads);

// ---- Residual: out = a + b (out may alias a) -----------------------------------------
void residual_forward(float* out, const float* a, const float* b, int64_t n, const Exec& ex);

// ---- Patch embedding: images [B, C, H, W] → im2col patches [B·P, C·p·p] ----------------
void patchify(float* patches, const float* images, int B, const VitConfig& c, const Exec& ex);
// The inverse scatter (patches do not overlap, so it is a permutation): accumulates into dimages.
void unpatchify_accumulate(float* dimages, const float* dpatches, int B, const VitConfig& c, const Exec& ex);

// x0[b, n] = token(n) + pos[n]: the class/distillation tokens, then the patch projections proj [B·P, D].
void embed_tokens(float* x0, const float* proj, const float* cls, const float* dist, const float* pos, int B,
                  const VitConfig& c, const Exec& ex);
// Backward of embed_tokens: dpos/dcls/ddist += (nullptr skips) and dproj [B·P, D] = the patch rows of dx0.
void embed_tokens_backward(float* dproj, float* dpos, float* dcls, float* ddist, const float* dx0, int B,
                           const VitConfig& c, const Exec& ex);

// ---- Pooling and head (head.cc) --------------------------------------------------------
// pooled [B, hin, D] from tokens [B, N, D]: the class (and distillation) token(s), or the
// mean of the patch tokens.
void pool_forward(float* pooled, const float* tokens, int B, const VitConfig& c, const Exec& ex);
// dtokens [B, N, D] = the scatter of dpool (written, not accumulated: every element).
void pool_backward(float* dtokens, const float* dpool, int B, const VitConfig& c, const Exec& ex);
// logits [B, K] = scale·Σ_h feat[:, h]·W_hᵀ + scale·Σ_h b_h (h over the hin heads).
void head_forward(float* logits, const float* feat, const float* w, const float* b, const float* w_dist,
                  const float* b_dist, int B, const VitConfig& c, const Exec& ex);
// dfeat [B, hin, D] (written) and dw/db/dw_dist/db_dist (+=, nullptr skips).
void head_backward(float* dfeat, float* dw, float* db, float* dw_dist, float* db_dist, const float* dlogits,
                   const float* feat, const float* w, const float* w_dist, int B, const VitConfig& c,
                   const Exec& ex);

// ---- Cross-entropy, mean over the batch ----------------------------------------------
// Hard labels (class indices) or soft targets (rows summing to 1); returns the loss and,
// when dlogits is given, writes (not accumulates) d loss / d logits. `mean_over` (0: B) is
// the count the loss is averaged over: the synthesis loop passes a micro-batch's size for a
// part of it, so that a shard's rows get their gradient divided exactly as in the whole pass.
double cross_entropy_hard(float* dlogits, const float* logits, const int32_t* labels, int B, int K, int mean_over = 0);
double cross_entropy_soft(float* dlogits, const float* logits, const float* targets, int B, int K, int mean_over = 0);

}  // namespace spdfq::cpu
