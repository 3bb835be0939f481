// The Swin Transformer's own layer ops on the CPU (the ViT's LayerNorm, Linear,
// activation, residual and patchify serve it too: ops.h). Same conventions as ops.h:
// outputs, inputs, weights, sizes, exec; row-major, tokens-major tensors. Forward only in
// stage 1 (docs/swin.md).
//
// Each op has one scalar reference kernel, kept as the truth: window_attention_forward's
// is selected by Exec::reference (the fast path runs two small GEMMs per (window, head));
// the gathers and the mean pool are pure data movement whose scalar loop is both the
// reference and the kernel, run over the thread pool (serially in reference mode).
#pragma once

#include <cstdint>

#include "exec.h"

namespace spdfq::cpu {

// out[b·rows_out + r] = index[r] ≥ 0 ? inp[b·rows_in + index[r]] : 0, rows of C floats,
// for b < B. Window partition (index = src: window token → grid token or −1 for padding)
// and window reverse (index = dst: grid token → window row) are both this gather; the
// cyclic shift lives in the index (core/swin_params.h, SwinIndices).
void window_gather(float* out, const float* inp, const int32_t* index, int B, int rows_out, int rows_in, int C,
                   const Exec& ex);

// Window multi-head self-attention with relative position bias, per window w of the
// B·nW windows (nW per image) and head h:
//   P = softmax(q·kᵀ/√hd + table[rel_index[i·N + j], h] + mask(i, j)),  av = P·v
// qkv [B·nW·N, 3D] (q, k, v blocks of D = H·hd channels, head h at h·hd); table [R, H];
// rel_index [N·N]; region [nW·N] (nullptr: no mask) gives mask(i, j) = kSwinMaskValue
// when region[w·N + i] ≠ region[w·N + j], else 0 (window w of each image).
// att [B·nW, H, N, N] keeps P (backward and the attention tap need it); av [B·nW·N, D].
void window_attention_forward(float* av, float* att, const float* qkv, const float* bias_table,
                              const int32_t* rel_index, const int32_t* region, int B, int nW, int N, int H, int hd,
                              const Exec& ex);

// PatchMerging's gather: cat [B, ⌈Hs/2⌉, ⌈Ws/2⌉, 4C] from x [B, Hs, Ws, C]; the four C-blocks
// of an output token are x[2y, 2x], x[2y+1, 2x], x[2y, 2x+1], x[2y+1, 2x+1] (torchvision's
// x0, x1, x2, x3), zeros past an odd edge (its F.pad).
void patch_merge(float* cat, const float* x, int B, int Hs, int Ws, int C, const Exec& ex);

// pooled [B, C] = mean over the T tokens of x [B, T, C] (AdaptiveAvgPool2d(1) on the grid).
void mean_pool(float* pooled, const float* x, int B, int T, int C, const Exec& ex);

}  // namespace spdfq::cpu
