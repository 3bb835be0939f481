// The two GEMMs of one attention head, shared by ViT attention (attention.cc) and Swin's
// window attention (swin_window.cc): q, k and v are read in place from the [tokens, 3D] qkv
// rows (strided, no copies), each call single-threaded (the callers run one task per head).
#pragma once

#include <cstdint>

#include "gemm.h"

namespace spdfq::cpu {

// S [N, N] = scale · Q·Kᵀ, with `head` pointing at this head's q columns of token 0.
inline void head_scores(float* S, const float* head, int N, int hd, int D, float scale, GemmVariant v) {
  GemmArgs s;
  s.transB = true;
  s.M = N;
  s.N = N;
  s.K = hd;
  s.alpha = scale;
  s.A = head;
  s.lda = 3 * D;
  s.B = head + D;
  s.ldb = 3 * D;
  s.C = S;
  s.ldc = N;
  gemm(s, v);
}

// O [N, hd] = P·V, written straight into the merged-heads layout (row stride D).
inline void head_values(float* O, const float* P, const float* head, int N, int hd, int D, GemmVariant v) {
  GemmArgs o;
  o.M = N;
  o.N = hd;
  o.K = N;
  o.A = P;
  o.lda = N;
  o.B = head + 2 * D;
  o.ldb = 3 * D;
  o.C = O;
  o.ldc = D;
  gemm(o, v);
}

}  // namespace spdfq::cpu
