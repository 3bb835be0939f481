// The Swin Transformer's own layer ops on the GPU: the CUDA twins of native/cpu/swin_ops.h
// (same arguments, same layouts, same conventions as ops.h). All pointers are device
// pointers, index tables included; every call only enqueues work on ctx.stream. Compiled
// and checked against the CPU by the op checker (test/gpu/check_swin.cu) where a GPU exists.
#pragma once

#include <cstdint>

#include "ops.h"

namespace spdfq::cuda {

// out[b·rows_out + r] = index[r] ≥ 0 ? inp[b·rows_in + index[r]] : 0 (rows of C floats).
void window_gather(float* out, const float* inp, const int32_t* index, int B, int rows_out, int rows_in, int C,
                   const Ctx& ctx);
// P = softmax(q·kᵀ/√hd + table[rel_index] + mask), av = P·v, per (window, head); see
// cpu::window_attention_forward for the layouts. region == nullptr: no mask. With probs_q
// (kind ≠ None) P·v reads a fake-quantized copy written to att_q; att keeps the exact P.
void window_attention_forward(float* av, float* att, const float* qkv, const float* bias_table,
                              const int32_t* rel_index, const int32_t* region, int B, int nW, int N, int H, int hd,
                              const Ctx& ctx, const quant::TensorQuant* probs_q = nullptr, float* att_q = nullptr);
// Its backward (cpu::window_attention_backward): attention_backward over the B·nW windows
// into dqkv (+=; dscratch: B·nW·H·N·N floats), then, when dtable is given, dtable +=
// the logit gradients dS summed per (rel_index row, head) in a fixed order.
// att_pv: the probabilities P·v read (att_q when quantized), straight-through.
void window_attention_backward(float* dqkv, float* dtable, const float* dav, const float* datt_extra, const float* att,
                               const float* att_pv, const float* qkv, const int32_t* rel_index, int table_rows, int B,
                               int nW, int N, int H, int hd, float* dscratch, const Ctx& ctx);
// PatchMerging's 2×2 gather (x0, x1, x2, x3; zeros past an odd edge), and its transpose
// (dx [B, Hs, Ws, C] written).
void patch_merge(float* cat, const float* x, int B, int Hs, int Ws, int C, const Ctx& ctx);
void patch_merge_backward(float* dx, const float* dcat, int B, int Hs, int Ws, int C, const Ctx& ctx);
// pooled [B, C] = mean over the T tokens of x [B, T, C]; its backward writes dx = dpooled / T.
void mean_pool(float* pooled, const float* x, int B, int T, int C, const Ctx& ctx);
void mean_pool_backward(float* dx, const float* dpooled, int B, int T, int C, const Ctx& ctx);

}  // namespace spdfq::cuda
