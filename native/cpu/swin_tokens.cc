// Swin's token-grid reshuffles on the CPU: PatchMerging's 2×2 gather and the mean pool
// before the head, and their transposes. Pure data movement (and one sum): the scalar loop
// is the reference and the kernel, split over the thread pool.
#include <cstring>

#include "swin_ops.h"

namespace spdfq::cpu {

void patch_merge(float* cat, const float* x, int B, int Hs, int Ws, int C, const Exec& ex) {
  const int Ho = (Hs + 1) / 2, Wo = (Ws + 1) / 2;
  // torchvision's order of the four C-blocks: (dy, dx) = (0,0), (1,0), (0,1), (1,1).
  static const int kDy[4] = {0, 1, 0, 1}, kDx[4] = {0, 0, 1, 1};
  ex.parallel_rows(int64_t(B) * Ho * Wo, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / (int64_t(Ho) * Wo);
      const int y = int(r / Wo % Ho), xo = int(r % Wo);
      float* o = cat + r * 4 * C;
      for (int k = 0; k < 4; ++k) {
        const int sy = 2 * y + kDy[k], sx = 2 * xo + kDx[k];
        if (sy < Hs && sx < Ws)
          std::memcpy(o + k * C, x + ((b * Hs + sy) * Ws + sx) * C, sizeof(float) * size_t(C));
        else
          std::memset(o + k * C, 0, sizeof(float) * size_t(C));
      }
    }
  });
}

void patch_merge_backward(float* dx, const float* dcat, int B, int Hs, int Ws, int C, const Exec& ex) {
  const int Ho = (Hs + 1) / 2, Wo = (Ws + 1) / 2;
  ex.parallel_rows(int64_t(B) * Hs * Ws, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / (int64_t(Hs) * Ws);
      const int y = int(r / Ws % Hs), x = int(r % Ws);
      const int k = (y & 1) + 2 * (x & 1);  // the slot patch_merge put this token in (kDy, kDx)
      std::memcpy(dx + r * C, dcat + ((b * Ho + y / 2) * Wo + x / 2) * 4 * C + k * C, sizeof(float) * size_t(C));
    }
  });
}

void mean_pool(float* pooled, const float* x, int B, int T, int C, const Exec& ex) {
  ex.parallel(int64_t(B), [&](int64_t b, int) {
    for (int ch = 0; ch < C; ++ch) {
      double acc = 0.0;
      for (int t = 0; t < T; ++t) acc += x[(b * T + t) * C + ch];
      pooled[b * C + ch] = float(acc / T);
    }
  });
}

void mean_pool_backward(float* dx, const float* dpooled, int B, int T, int C, const Exec& ex) {
  ex.parallel_rows(int64_t(B) * T, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* g = dpooled + r / T * C;
      for (int ch = 0; ch < C; ++ch) dx[r * C + ch] = g[ch] / float(T);
    }
  });
}

}  // namespace spdfq::cpu
