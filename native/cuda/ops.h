// The ViT's layers on the GPU: the CUDA twins of native/cpu/ops.h, same conventions —
// arguments are outputs, inputs, weights, sizes, then the context; every backward
// ACCUMULATES (+=) into its gradient outputs and a nullptr gradient output skips that
// work; tensors are row-major, tokens-major ([rows = batch × tokens, features]). All
// pointers are device pointers; every call only enqueues work on ctx.stream.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "../core/vit_config.h"
#include "fast_math_cuda.h"  // before quantizer.h (see there)
#include "../core/quantizer.h"
#include "gemm.h"

namespace spdfq::cuda {

// Where and how an op runs. `scratch` serves the deterministic two-stage column
// reductions (bias and LayerNorm weight gradients): reduce_scratch_floats(cols) floats.
struct Ctx {
  cudaStream_t stream = nullptr;
  GemmMath math = GemmMath::Tf32;
  float* scratch = nullptr;
  int64_t scratch_floats = 0;
};

// Column reductions split rows into at most this many slices (one partial per slice,
// summed in a fixed order: results do not depend on scheduling).
constexpr int kReduceSlices = 64;
inline int64_t reduce_scratch_floats(int64_t cols) { return 2 * kReduceSlices * cols; }

// ---- LayerNorm over the last axis (length D) -------------------------------------------
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                       int64_t rows, int D, float eps, const Ctx& ctx);
void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                        const float* mean, const float* rstd, int64_t rows, int D, const Ctx& ctx);

// ---- Linear: out[rows, O] = inp[rows, I] · wᵀ + b (w is PyTorch's [O, I]) --------------
void linear_forward(float* out, const float* inp, const float* w, const float* b, int64_t rows, int I, int O,
                    const Ctx& ctx);
void linear_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                     int64_t rows, int I, int O, const Ctx& ctx);

// ---- Element-wise --------------------------------------------------------------------
void activation_forward(float* out, const float* inp, int64_t n, Activation kind, const Ctx& ctx);
// dinp += dout·f'(inp)
void activation_backward(float* dinp, const float* dout, const float* inp, int64_t n, Activation kind, const Ctx& ctx);
void residual_forward(float* out, const float* a, const float* b, int64_t n, const Ctx& ctx);  // out may alias a
// out[c] += scale · Σ_r in[r, c] (rows × cols, row stride ld): bias gradients.
void column_sum_accumulate(float* out, const float* in, int64_t rows, int cols, int64_t ld, float scale,
                           const Ctx& ctx);
// Fake quantization in place of a strided rows × cols view (core/quantizer.h math).
void fake_quant(float* data, int64_t rows, int64_t cols, int64_t ld, const quant::TensorQuant& q, const Ctx& ctx);

// ---- Attention -------------------------------------------------------------------------
// As the CPU: qkv [B, N, 3D]; att [B, H, N, N] softmax(q·kᵀ/√hd) (the tap); av [B, N, D]
// = P·v with heads merged; with probs_q (kind ≠ None) P·v reads a fake-quantized copy
// written to att_q.
void attention_forward(float* av, float* att, const float* qkv, int B, int N, int H, int hd, const Ctx& ctx,
                       const quant::TensorQuant* probs_q = nullptr, float* att_q = nullptr);
// dav: gradient at av (tap gradient included); datt_extra: gradient injected at the
// probabilities (nullptr: none); att_pv: the probabilities P·v read; dscratch: B·H·N·N
// floats, holding the logit gradient dS = P ⊙ (dP − Σ P·dP) on return (Swin's bias table
// gradient reads it); accumulates into dqkv.
void attention_backward(float* dqkv, const float* dav, const float* datt_extra, const float* att,
                        const float* att_pv, const float* qkv, int B, int N, int H, int hd, float* dscratch,
                        const Ctx& ctx);
// Row-wise pieces, exposed for the op checker: softmax of rows × n in place (+ quantized
// copy), and its backward dS = P ⊙ (dP − Σ P·dP) in place on dp.
void softmax_rows(float* s, float* s_q, int64_t rows, int n, const quant::TensorQuant* q, const Ctx& ctx);
void softmax_rows_backward(float* dp, const float* p, int64_t rows, int n, const Ctx& ctx);

// ---- Patch embedding ---------------------------------------------------------------------
void patchify(float* patches, const float* images, int B, const VitConfig& c, const Ctx& ctx);
void unpatchify_accumulate(float* dimages, const float* dpatches, int B, const VitConfig& c, const Ctx& ctx);
// x0[b, n] = token(n) + pos[n]: the class/distillation tokens, then the patch projections proj [B·P, D].
void embed_tokens(float* x0, const float* proj, const float* cls, const float* dist, const float* pos, int B,
                  const VitConfig& c, const Ctx& ctx);
// Backward of embed_tokens: dpos/dcls/ddist += (nullptr skips) and dproj [B·P, D] = the patch rows of dx0.
void embed_tokens_backward(float* dproj, float* dpos, float* dcls, float* ddist, const float* dx0, int B,
                           const VitConfig& c, const Ctx& ctx);

// ---- Pooling and head --------------------------------------------------------------------
// pooled [B, hin, D] from tokens [B, N, D]: the class (and distillation) token(s), or the
// mean of the patch tokens.
void pool_forward(float* pooled, const float* tokens, int B, const VitConfig& c, const Ctx& ctx);
// dtokens [B, N, D] = the scatter of dpool (written, not accumulated: every element).
void pool_backward(float* dtokens, const float* dpool, int B, const VitConfig& c, const Ctx& ctx);
// logits [B, K] = scale·Σ_h feat[:, h]·W_hᵀ + scale·Σ_h b_h (h over the hin heads).
void head_forward(float* logits, const float* feat, const float* w, const float* b, const float* w_dist,
                  const float* b_dist, int B, const VitConfig& c, const Ctx& ctx);
// dfeat [B, hin, D] (written) and dw/db/dw_dist/db_dist (+=, nullptr skips).
void head_backward(float* dfeat, float* dw, float* db, float* dw_dist, float* db_dist, const float* dlogits,
                   const float* feat, const float* w, const float* w_dist, int B, const VitConfig& c,
                   const Ctx& ctx);

// ---- Cross-entropy, mean over the batch (device inputs; the loss comes back to the host) --
// loss_rows: B doubles of device scratch. dlogits (optional) is written.
double cross_entropy_hard(float* dlogits, const float* logits, const int32_t* labels, int B, int K,
                          double* loss_rows, const Ctx& ctx);
double cross_entropy_soft(float* dlogits, const float* logits, const float* targets, int B, int K,
                          double* loss_rows, const Ctx& ctx);

}  // namespace spdfq::cuda
