// The Swin Transformer's own layer ops on the CPU (the ViT's LayerNorm, Linear,
// activation, residual and patchify serve it too: ops.h). Same conventions as ops.h:
// outputs, inputs, weights, sizes, exec; row-major, tokens-major tensors; a backward
// accumulates into its gradient outputs unless it says "written", and a nullptr gradient
// output skips that work.
//
// Each op has one scalar reference kernel, kept as the truth: window_attention_forward's
// is selected by Exec::reference (the fast path runs two small GEMMs per (window, head));
// the gathers, the merge, the mean pool and their backwards are pure data movement whose
// scalar loop is both the reference and the kernel, run over the thread pool (serially in
// reference mode). The window gathers are their own transposes (core/swin_passes.h).
#pragma once

#include <cstdint>

#include "../core/quantizer.h"
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
// With probs_q (a quantizer of the probabilities) P·v reads a fake-quantized copy written
// to att_q [B·nW, H, N, N]; att keeps the exact softmax.
void window_attention_forward(float* av, float* att, const float* qkv, const float* bias_table,
                              const int32_t* rel_index, const int32_t* region, int B, int nW, int N, int H, int hd,
                              const Exec& ex, const quant::TensorQuant* probs_q = nullptr, float* att_q = nullptr);

// Backward of window_attention_forward. The bias and the mask are constants added to the
// logits, so d q/k/v is plain attention's backward over the B·nW windows
// (attention_backward, whose scratch this is: attention_scratch_floats) and accumulates
// into dqkv. dtable (nullptr: skipped) accumulates the logit gradients
// dS = P ⊙ (dP − Σ_j P·dP), dP = dav·vᵀ + datt_extra, summed over the windows and the pairs
// (i, j) that share a row rel_index[i·N + j] (of table_rows), per head. datt_extra [B·nW, H, N, N]: a
// gradient injected at the probabilities (the attention tap; nullptr: none). att_pv: the
// probabilities P·v read (att_q when quantized, else att): d v uses them, the softmax's
// backward uses att (straight-through at the quantizer).
void window_attention_backward(float* dqkv, float* dtable, const float* dav, const float* datt_extra, const float* att,
                               const float* att_pv, const float* qkv, const int32_t* rel_index, int table_rows, int B,
                               int nW, int N, int H, int hd, float* scratch, const Exec& ex);

// PatchMerging's gather: cat [B, ⌈Hs/2⌉, ⌈Ws/2⌉, 4C] from x [B, Hs, Ws, C]; the four C-blocks
// of an output token are x[2y, 2x], x[2y+1, 2x], x[2y, 2x+1], x[2y+1, 2x+1] (torchvision's
// x0, x1, x2, x3), zeros past an odd edge (its F.pad).
void patch_merge(float* cat, const float* x, int B, int Hs, int Ws, int C, const Exec& ex);
// Its transpose: dx [B, Hs, Ws, C] written from dcat (each token fills exactly one slot of
// one output token; the zero padding's gradients are dropped).
void patch_merge_backward(float* dx, const float* dcat, int B, int Hs, int Ws, int C, const Exec& ex);

// pooled [B, C] = mean over the T tokens of x [B, T, C] (AdaptiveAvgPool2d(1) on the grid).
void mean_pool(float* pooled, const float* x, int B, int T, int C, const Exec& ex);
// dx [B, T, C] written: dpooled / T on every token.
void mean_pool_backward(float* dx, const float* dpooled, int B, int T, int C, const Exec& ex);

}  // namespace spdfq::cpu
