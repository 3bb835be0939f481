// Swin's window ops on the CPU: the partition/reverse gather (shift and padding folded
// into the index) and window attention with the relative position bias and the
// shifted-window mask. The attention's fast path is ViT attention's (attention.cc) per
// (window, head) — S = scale·Q·Kᵀ straight from the strided qkv rows, then bias and mask,
// the row softmax, O = P·V into the merged-heads layout — and its reference is the
// textbook loop in double. The backward is ViT attention's over the windows (the bias and
// mask are constants) plus the bias table's gradient, a scalar loop in double. With a
// softmax quantizer P·v reads a fake-quantized copy of P (att_q), as the ViT's attention.
#include <cmath>
#include <cstring>
#include <vector>

#include "../core/swin_params.h"
#include "head_gemms.h"
#include "ops.h"  // attention_backward
#include "row_kernels.h"
#include "swin_ops.h"

namespace spdfq::cpu {

void window_gather(float* out, const float* inp, const int32_t* index, int B, int rows_out, int rows_in, int C,
                   const Exec& ex) {
  ex.parallel_rows(int64_t(B) * rows_out, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / rows_out;
      const int32_t src = index[r % rows_out];
      float* o = out + r * C;
      if (src < 0)
        std::memset(o, 0, sizeof(float) * size_t(C));
      else
        std::memcpy(o, inp + (b * rows_in + src) * C, sizeof(float) * size_t(C));
    }
  });
}

namespace {

// The logit offset of pair (i, j) of window w of an image in head h: bias + mask.
inline float logit_offset(const float* table, const int32_t* rel_index, const int32_t* region, int w, int N, int H,
                          int h, int i, int j) {
  float v = table[int64_t(rel_index[i * N + j]) * H + h];
  if (region && region[w * N + i] != region[w * N + j]) v += kSwinMaskValue;
  return v;
}

void window_attention_forward_ref(float* av, float* att, const float* qkv, const float* table,
                                  const int32_t* rel_index, const int32_t* region, int B, int nW, int N, int H,
                                  int hd, const quant::TensorQuant* probs_q, float* att_q) {
  const int D = H * hd;
  const double scale = 1.0 / std::sqrt(double(hd));
  std::vector<double> s(size_t(N), 0.0);
  for (int64_t win = 0; win < int64_t(B) * nW; ++win) {
    const int w = int(win % nW);
    const float* base = qkv + win * N * 3 * D;
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < N; ++i) {
        const float* q = base + int64_t(i) * 3 * D + h * hd;
        double mx = -INFINITY;
        for (int j = 0; j < N; ++j) {
          const float* k = base + int64_t(j) * 3 * D + D + h * hd;
          double dot = 0.0;
          for (int d = 0; d < hd; ++d) dot += double(q[d]) * k[d];
          s[size_t(j)] = dot * scale + logit_offset(table, rel_index, region, w, N, H, h, i, j);
          mx = s[size_t(j)] > mx ? s[size_t(j)] : mx;
        }
        double sum = 0.0;
        for (int j = 0; j < N; ++j) sum += (s[size_t(j)] = std::exp(s[size_t(j)] - mx));
        float* p = att + ((win * H + h) * N + i) * N;
        for (int j = 0; j < N; ++j) p[j] = float(s[size_t(j)] / sum);
        if (probs_q) {
          float* pq = att_q + ((win * H + h) * N + i) * N;
          std::memcpy(pq, p, sizeof(float) * size_t(N));
          quant::fake_quant_tensor(pq, N, *probs_q);
          p = pq;
        }
        float* o = av + (win * N + i) * D + h * hd;
        for (int d = 0; d < hd; ++d) {
          double acc = 0.0;
          for (int j = 0; j < N; ++j) acc += double(p[j]) * base[int64_t(j) * 3 * D + 2 * D + h * hd + d];
          o[d] = float(acc);
        }
      }
  }
}

}  // namespace

void window_attention_forward(float* av, float* att, const float* qkv, const float* table, const int32_t* rel_index,
                              const int32_t* region, int B, int nW, int N, int H, int hd, const Exec& ex,
                              const quant::TensorQuant* probs_q, float* att_q) {
  if (ex.reference) {
    window_attention_forward_ref(av, att, qkv, table, rel_index, region, B, nW, N, H, hd, probs_q, att_q);
    return;
  }
  const int D = H * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  ex.parallel(int64_t(B) * nW * H, [&](int64_t t, int) {
    const int64_t win = t / H;
    const int h = int(t % H), w = int(win % nW);
    const float* base = qkv + win * N * 3 * D + h * hd;
    float* P = att + t * N * N;
    head_scores(P, base, N, hd, D, scale, ex.gemm);
    for (int i = 0; i < N; ++i)
      for (int j = 0; j < N; ++j) P[i * N + j] += logit_offset(table, rel_index, region, w, N, H, h, i, j);
    row_kernels().softmax_rows(P, N, N);
    const float* Ppv = P;
    if (probs_q) {
      float* Q = att_q + t * N * N;
      std::memcpy(Q, P, sizeof(float) * size_t(N) * N);
      quant::fake_quant_tensor(Q, int64_t(N) * N, *probs_q);
      Ppv = Q;
    }
    head_values(av + win * N * D + h * hd, Ppv, base, N, hd, D, ex.gemm);
  });
}

void window_attention_backward(float* dqkv, float* dtable, const float* dav, const float* datt_extra, const float* att,
                               const float* att_pv, const float* qkv, const int32_t* rel_index, int table_rows, int B,
                               int nW, int N, int H, int hd, float* scratch, const Exec& ex) {
  attention_backward(dqkv, dav, datt_extra, att, att_pv, qkv, B * nW, N, H, hd, scratch, ex);
  if (!dtable) return;
  // One task per head: head h only writes column h of the table, so tasks never collide.
  // dS is recomputed from P, dav and v (weight gradients are for training, not synthesis).
  const int D = H * hd, R = table_rows;
  auto head = [&](int64_t h, int) {
    std::vector<double> acc(static_cast<size_t>(R), 0.0), dp(static_cast<size_t>(N));
    for (int64_t win = 0; win < int64_t(B) * nW; ++win) {
      const float* v = qkv + win * N * 3 * D + 2 * D + h * hd;
      for (int i = 0; i < N; ++i) {
        const float* p = att + ((win * H + h) * N + i) * N;
        const float* go = dav + (win * N + i) * D + h * hd;
        const float* extra = datt_extra ? datt_extra + ((win * H + h) * N + i) * N : nullptr;
        double dot = 0.0;
        for (int j = 0; j < N; ++j) {
          double g = extra ? double(extra[j]) : 0.0;
          for (int d = 0; d < hd; ++d) g += double(go[d]) * v[int64_t(j) * 3 * D + d];
          dp[size_t(j)] = g;
          dot += g * p[j];
        }
        for (int j = 0; j < N; ++j) acc[size_t(rel_index[i * N + j])] += p[j] * (dp[size_t(j)] - dot);
      }
    }
    for (int r = 0; r < R; ++r) dtable[int64_t(r) * H + h] += float(acc[size_t(r)]);
  };
  ex.parallel(H, head);
}

}  // namespace spdfq::cpu
