// What a forward pass keeps for the backward (and for the taps), and the backward's own
// scratch: structs of named pointers, carved by each backend from one arena planned per
// batch size (CPU: host memory; CUDA: one cudaMalloc). The layout is the model's, not the
// device's, so it is written once here; a backend adds its own extras after it.
// B = batch, N = tokens, D = dim, H = heads, M = MLP hidden, P = patches, L = C·p·p.
#pragma once

#include <cstdint>
#include <vector>

#include "vit_config.h"

namespace spdfq {

struct BlockActs {
  float* ln1;       // [B, N, D]  norm1 output
  float* ln1_mean;  // [B·N]
  float* ln1_rstd;  // [B·N]
  float* qkv;       // [B, N, 3D]
  float* att;       // [B, H, N, N]  softmax probabilities — the attention tap
  float* att_q;     // [B, H, N, N]  fake-quantized probabilities P·v reads; nullptr unless quantized
  float* av;        // [B, N, D]     probs·v, heads merged, before proj — the A·V tap
  float* qkv_in_q;  // [B, N, D]  post-norm + quantization: quantized copy of the block input (the
                    //             residual stream itself must stay in float); else nullptr
  float* fc1_in_q;  // [B, N, D]  likewise for the MLP input (ln1, also a residual in post-norm)
  float* sum1;      // [B, N, D]     block input + attention branch
  float* ln2;       // [B, N, D]     norm2 output
  float* ln2_mean;  // [B·N]
  float* ln2_rstd;  // [B·N]
  float* fc1;       // [B, N, M]     before GELU
  float* act;       // [B, N, M]     after GELU
  float* sum2;      // [B, N, D]     MLP residual sum
};

struct VitActs {
  float* patches;     // [B, P, L]  im2col of the images
  // The optional embedding LayerNorms (VitConfig): their outputs, statistics and — for the
  // output norm and the embedding norm — their inputs; nullptr when the config has none.
  float* patch_ln;        // [B, P, L]  patch_input_norm(patches): what the projection reads
  float* patch_ln_mean;   // [B·P]
  float* patch_ln_rstd;   // [B·P]
  float* patch_proj;      // [B, P, D]  the projection before patch_output_norm
  float* patch_tok;       // [B, P, D]  patch_output_norm(patch_proj)
  float* patch_tok_mean;  // [B·P]
  float* patch_tok_rstd;  // [B·P]
  float* x0_raw;          // [B, N, D]  tokens + position embedding before embed_norm
  float* x0_mean;         // [B·N]
  float* x0_rstd;         // [B·N]
  float* x0;          // [B, N, D]  embeddings: block 0's input
  std::vector<BlockActs> blocks;
  float* fnorm;       // [B, N, D] (FinalNorm::Tokens) or [B, hin, D] (Pooled); nullptr for None
  float* fnorm_mean;  // [B·N] or [B·hin]
  float* fnorm_rstd;  // [B·N] or [B·hin]
  float* pooled;      // [B, hin, D]  token(s) or mean fed to the head(s), before fc_norm
  float* feat;        // [B, hin, D]  the head input (= pooled, or fc_norm(pooled))
  float* logits;      // [B, K]
};

// Backward scratch: gradients flow block by block, so one set serves every block.
struct VitGrads {
  float* dres;     // [B, N, D]  gradient of the residual stream at the current point
  float* dtmp;     // [B, N, D]
  float* dtmp2;    // [B, N, D]
  float* dqkv;     // [B, N, 3D]
  float* dhid;     // [B, N, M]
  float* dhid2;    // [B, N, M]
  float* dfeat;    // [B, hin, D]
  float* dpool;    // [B, hin, D]
  float* dpatches; // [B, P, L]
  float* dpatches_raw;  // [B, P, L]  before patch_input_norm; nullptr without it
  // The attention backward's scratch, sized by the backend: the CPU's per-thread N×N
  // tiles, or the GPU's batched dP/dS [B, H, N, N].
  float* att_scratch;
};

// Gradients injected at the taps during backward: one pointer per block, nullptr for
// "none" (attn: [B, H, N, N]; av: [B, N, D]); empty vectors mean no taps at all.
struct TapGrads {
  std::vector<const float*> attn;
  std::vector<const float*> av;
};

// Number of vectors the head(s) read per image: 2 for a distilled DeiT, else 1.
inline int head_inputs(const VitConfig& c) { return c.dist_token ? 2 : 1; }

// Carves the model's activations and backward scratch with `take(n)` (a bump allocator
// returning n floats, or nullptr while only counting), the attention scratch sized
// `att_scratch_floats`. quant adds the quantized copies (attention probabilities; the
// post-norm block inputs).
template <class Take>
void plan_model_activations(const VitConfig& c, int batch, bool quant, int64_t att_scratch_floats, Take&& take,
                            VitActs* out_acts, VitGrads* out_grads) {
  const int64_t B = batch, N = c.tokens(), D = c.dim, H = c.heads, M = c.mlp_dim, P = c.patches();
  const int64_t L = c.patch_len(), K = c.num_classes, R = B * N, hin = head_inputs(c);
  VitActs a;
  a.patches = take(B * P * L);
  const bool pin = c.patch_input_norm, pout = c.patch_output_norm, pre_norm = c.embed_norm;
  a.patch_ln = pin ? take(B * P * L) : nullptr;
  a.patch_ln_mean = pin ? take(B * P) : nullptr;
  a.patch_ln_rstd = pin ? take(B * P) : nullptr;
  a.patch_proj = pout ? take(B * P * D) : nullptr;
  a.patch_tok = pout ? take(B * P * D) : nullptr;
  a.patch_tok_mean = pout ? take(B * P) : nullptr;
  a.patch_tok_rstd = pout ? take(B * P) : nullptr;
  a.x0_raw = pre_norm ? take(R * D) : nullptr;
  a.x0_mean = pre_norm ? take(R) : nullptr;
  a.x0_rstd = pre_norm ? take(R) : nullptr;
  a.x0 = take(R * D);
  a.blocks.resize(size_t(c.depth));
  const bool post_q = quant && c.norm == NormPlacement::Post;
  for (auto& blk : a.blocks) {
    blk.ln1 = take(R * D);
    blk.ln1_mean = take(R);
    blk.ln1_rstd = take(R);
    blk.qkv = take(R * 3 * D);
    blk.att = take(B * H * N * N);
    blk.att_q = quant ? take(B * H * N * N) : nullptr;
    blk.qkv_in_q = post_q ? take(R * D) : nullptr;
    blk.fc1_in_q = post_q ? take(R * D) : nullptr;
    blk.av = take(R * D);
    blk.sum1 = take(R * D);
    blk.ln2 = take(R * D);
    blk.ln2_mean = take(R);
    blk.ln2_rstd = take(R);
    blk.fc1 = take(R * M);
    blk.act = take(R * M);
    blk.sum2 = take(R * D);
  }
  const bool none = c.final_norm == FinalNorm::None;
  const int64_t fn_rows = c.final_norm == FinalNorm::Pooled ? B * hin : R;
  a.fnorm = none ? nullptr : take(fn_rows * D);
  a.fnorm_mean = none ? nullptr : take(fn_rows);
  a.fnorm_rstd = none ? nullptr : take(fn_rows);
  a.pooled = take(B * hin * D);
  a.feat = c.final_norm == FinalNorm::Pooled ? a.fnorm : a.pooled;
  a.logits = take(B * K);

  VitGrads g;
  g.dres = take(R * D);
  g.dtmp = take(R * D);
  g.dtmp2 = take(R * D);
  g.dqkv = take(R * 3 * D);
  g.dhid = take(R * M);
  g.dhid2 = take(R * M);
  g.dfeat = take(B * hin * D);
  g.dpool = take(B * hin * D);
  g.dpatches = take(B * P * L);
  g.dpatches_raw = pin ? take(B * P * L) : nullptr;
  g.att_scratch = take(att_scratch_floats);
  if (out_acts) *out_acts = a;
  if (out_grads) *out_grads = g;
}

}  // namespace spdfq
