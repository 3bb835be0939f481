// What a forward pass keeps for the backward (and for the taps), and the backward's own
// scratch: structs of named pointers carved from one arena planned per batch size.
// B = batch, N = tokens, D = dim, H = heads, M = MLP hidden, P = patches, L = C·p·p.
#pragma once

#include <cstdint>
#include <vector>

#include "../core/vit_config.h"

namespace spdfq::cpu {

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
  float* x0;          // [B, N, D]  embeddings: block 0's input
  std::vector<BlockActs> blocks;
  float* fnorm;       // [B, N, D] (FinalNorm::Tokens) or [B, D] (Pooled) final LayerNorm output
  float* fnorm_mean;  // [B·N] or [B]
  float* fnorm_rstd;  // [B·N] or [B]
  float* pooled;      // [B, heads_in, D]  token(s) or mean fed to the head(s), before fc_norm
  float* feat;        // [B, heads_in, D]  the head input (= pooled, or fc_norm(pooled))
  float* logits;      // [B, K]
};

// Backward scratch: gradients flow block by block, so one set serves every block.
struct VitGrads {
  float* dres;    // [B, N, D]  gradient of the residual stream at the current point
  float* dtmp;    // [B, N, D]
  float* dtmp2;   // [B, N, D]
  float* dqkv;    // [B, N, 3D]
  float* dhid;    // [B, N, M]
  float* dhid2;   // [B, N, M]
  float* dfeat;   // [B, heads_in, D]
  float* dpool;   // [B, heads_in, D]
  float* dpatches;  // [B, P, L]
  float* att_scratch;  // [threads, N, N]
};

// Number of vectors the head(s) read per image: 2 for a distilled DeiT, else 1.
inline int head_inputs(const VitConfig& c) { return c.dist_token ? 2 : 1; }

// Plans the arena for `batch`: with arena == nullptr only counts; returns floats needed.
// quant adds the quantized copies (attention probabilities; post-norm block inputs).
int64_t plan_activations(const VitConfig& c, int batch, int threads, bool quant, float* arena, VitActs* acts,
                         VitGrads* grads);

}  // namespace spdfq::cpu
