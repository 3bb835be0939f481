// Swin's token-grid reshuffles on the CPU: PatchMerging's 2×2 gather and the mean pool
// before the head. Pure data movement (and one sum): the scalar loop is the reference
// and the kernel, split over the thread pool.
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

void mean_pool(float* pooled, const float* x, int B, int T, int C, const Exec& ex) {
  ex.parallel(int64_t(B), [&](int64_t b, int) {
    for (int ch = 0; ch < C; ++ch) {
      double acc = 0.0;
      for (int t = 0; t < T; ++t) acc += x[(b * T + t) * C + ch];
      pooled[b * C + ch] = float(acc / T);
    }
  });
}

}  // namespace spdfq::cpu
