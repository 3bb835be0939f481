// The Swin Transformer as data: its parameters (named pointers into one arena, in
// torchvision's state_dict order and names), the forward's activations (named pointers
// into one arena per batch size) and the integer index tables the window ops gather by
// (relative-position index, window partition/reverse with the cyclic shift folded in,
// shifted-window mask regions). Every layout is planned once and bound to any base
// pointer: host memory on the CPU, device memory on CUDA.
//
// Shapes: B = batch; per stage s: T = grid_h·grid_w tokens, D = dim(s), H = heads,
// M = mlp_dim(s), nW = windows(s) (of the padded grid), N = window_h·window_w tokens per
// window, R = bias_table_rows(); K = classes, F = features(), L = C·p·p.
// Token tensors are torchvision's channels-last [B, H, W, C], i.e. rows = B·T, row-major grid.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "swin_config.h"
#include "vit_params.h"  // ParamInfo

namespace spdfq {

struct SwinBlockParams {
  float* norm1_w;   // [D]
  float* norm1_b;   // [D]
  float* rel_bias;  // [R, H]  attn.relative_position_bias_table (row = relative offset, column = head)
  float* qkv_w;     // [3D, D]  rows: q (heads × head_dim), then k, then v
  float* qkv_b;     // [3D]     nullptr without qkv bias
  float* proj_w;    // [D, D]
  float* proj_b;    // [D]
  float* norm2_w;   // [D]
  float* norm2_b;   // [D]
  float* fc1_w;     // [M, D]  mlp.0
  float* fc1_b;     // [M]
  float* fc2_w;     // [D, M]  mlp.3
  float* fc2_b;     // [D]
};

struct SwinMergeParams {  // PatchMerging after stage s (C = dim(s))
  float* reduction_w;  // [2C, 4C]
  float* reduction_b;  // [2C]  nullptr unless SwinConfig::reduction_bias (torchvision has none)
  float* norm_w;       // [4C]
  float* norm_b;       // [4C]
};

struct SwinParams {
  float* patch_w;       // [D0, C, p, p]  features.0.0, the patch Conv2d used as a [D0, L] matrix
  float* patch_b;       // [D0]
  float* patch_norm_w;  // [D0]  features.0.2
  float* patch_norm_b;  // [D0]
  std::vector<SwinBlockParams> blocks;  // Σ depths, stage-major (block_index(s, i))
  std::vector<SwinMergeParams> merges;  // stages − 1
  float* norm_w;  // [F]  final LayerNorm
  float* norm_b;  // [F]
  float* head_w;  // [K, F]
  float* head_b;  // [K]
};

// The flat index of block i of stage s in SwinParams::blocks / SwinActs::blocks.
int swin_block_index(const SwinConfig& c, int s, int i);

// The layout of every parameter, in torchvision's state_dict order (without the
// relative_position_index buffers, which the engine derives: SwinIndices).
std::vector<ParamInfo> plan_swin_params(const SwinConfig& c);
int64_t swin_param_count(const SwinConfig& c);
SwinParams bind_swin_params(const SwinConfig& c, float* arena);

// ---- Activations of the forward -------------------------------------------------------
// Everything the backward needs is kept: the LayerNorm statistics, the windowed inputs of qkv, q/k/v, the attention probabilities, the
// pre-GELU MLP values, the merge inputs.
struct SwinBlockActs {
  float* ln1;       // [B·T, D]  norm1 output
  float* ln1_mean;  // [B·T]
  float* ln1_rstd;  // [B·T]
  float* win;       // [B·nW·N, D]  ln1 gathered into (shifted, padded) windows: qkv's input
  float* qkv;       // [B·nW·N, 3D]
  float* att;       // [B·nW, H, N, N]  softmax(q·kᵀ/√hd + bias + mask): the attention tap
  float* att_q;     // [B·nW, H, N, N]  the fake-quantized probabilities P·v reads (nullptr
                    //   unless planned with quant_probs: softmax's backward needs att exact)
  float* av;        // [B·nW·N, D]  probs·v, heads merged, before proj
  float* proj;      // [B·nW·N, D]  attn.proj output, still in windows
  float* sum1;      // [B·T, D]  block input + the attention branch (windows reversed, unshifted)
  float* ln2;       // [B·T, D]
  float* ln2_mean;  // [B·T]
  float* ln2_rstd;  // [B·T]
  float* fc1;       // [B·T, M]  before the activation
  float* act;       // [B·T, M]  after it
  float* out;       // [B·T, D]  sum1 + the MLP branch: the block output
};

struct SwinMergeActs {
  float* cat;   // [B·T', 4C]  the 2×2 neighbourhoods concatenated (x0, x1, x2, x3), T' = tokens(s+1)
  float* ln;    // [B·T', 4C]
  float* mean;  // [B·T']
  float* rstd;  // [B·T']
  float* out;   // [B·T', 2C]  reduction output: stage s+1's input
};

struct SwinActs {
  float* patches;     // [B·T0, L]  im2col of the images
  float* patch_proj;  // [B·T0, D0]  the patch conv's output, before features.0.2
  float* x0;          // [B·T0, D0]  the patch embedding (after its LayerNorm)
  float* x0_mean;     // [B·T0]
  float* x0_rstd;     // [B·T0]
  std::vector<SwinBlockActs> blocks;
  std::vector<SwinMergeActs> merges;
  float* fnorm;       // [B·T_last, F]  final LayerNorm
  float* fnorm_mean;  // [B·T_last]
  float* fnorm_rstd;  // [B·T_last]
  float* pooled;      // [B, F]  mean over the tokens: the head's input
  float* logits;      // [B, K]
};

// Plans the activations of a batch over `arena` (nullptr: only counts); returns the floats
// needed. Every tensor starts on a 64-byte boundary. quant_probs: also att_q.
int64_t plan_swin_activations(const SwinConfig& c, int batch, float* arena, SwinActs* acts, bool quant_probs = false);

// ---- Backward scratch ------------------------------------------------------------------
// Gradients flow block by block, so one set, sized for the widest stage, serves the whole
// backward (as VitGrads for the ViT). Rows: R = B·T of a stage, Rw = B·nW·N its windowed
// rows, R' = B·tokens(s+1) after a merge.
struct SwinGrads {
  float* dres;   // [max R·D]  gradient of the residual stream at the current point
  float* dtmp;   // [max R·D, R'·4C, B·T_last·F]  a LayerNorm's output gradient, the merge's d ln
  float* dcat;   // [max R'·4C]  d of the merge's 2×2 concatenation
  float* dwin;   // [max Rw·D]  windowed gradients: d proj output, then d of qkv's input
  float* dav;    // [max Rw·D]  d of probs·v (heads merged)
  float* dqkv;   // [max Rw·3D]
  float* dhid;   // [max R·M]
  float* dhid2;  // [max R·M]
  float* dpool;  // [B, F]
  float* dpatches;  // [B·T0, L]
  float* att_scratch;  // the attention backward's scratch, `att_scratch_floats` as the backend sizes it
};
// Plans the scratch of a batch over `arena` (nullptr: only counts); returns the floats needed.
int64_t plan_swin_grads(const SwinConfig& c, int batch, int64_t att_scratch_floats, float* arena, SwinGrads* g);

// ---- Index tables of the window ops -----------------------------------------------------
// Per stage and per variant v (0: plain windows, 1: the odd blocks' shifted windows; both
// identical when the stage never shifts):
//   src[v]  [nW·N]  for each window token, the grid token (y·W + x) it reads, or −1 for a
//                   padding token (which reads zeros). Folding torch.roll into this gather
//                   makes the shift free.
//   dst[v]  [T]     for each grid token, the window row (within its image) holding it: the
//                   window reverse and the inverse roll are this gather.
//   region  [nW·N]  the shifted-window mask's region id of each window token (torchvision's
//                   9 slices of the rolled padded grid); two tokens of a window attend with
//                   −100 added unless their regions match. nullptr when the stage never shifts.
// rel_index [N·N]: relative_position_index, bias row of the pair (i, j) in one window.
struct SwinStageIndex {
  const int32_t* src[2];
  const int32_t* dst[2];
  const int32_t* region;
};
struct SwinIndexView {
  const int32_t* rel_index;
  std::vector<SwinStageIndex> stages;
};
struct SwinIndices {
  std::vector<int32_t> data;  // every table back to back
  // The tables bound to a copy of `data` at `base` (host or device).
  SwinIndexView bind(const int32_t* base) const;

  int64_t rel_index_at = 0;
  struct StageAt {
    int64_t src[2], dst[2], region;  // region: −1 when the stage never shifts
  };
  std::vector<StageAt> stages;
};
SwinIndices make_swin_indices(const SwinConfig& c);

// The mask value torchvision adds to the logits of token pairs from different regions.
constexpr float kSwinMaskValue = -100.0f;

}  // namespace spdfq
