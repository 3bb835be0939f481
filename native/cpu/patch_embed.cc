// Patch embedding as a GEMM: the conv with kernel = stride = p is a matrix product of
// the im2col patches [B·P, C·p·p] (column order c, ky, kx — the flattening of PyTorch's
// [D, C, p, p] weight) with the weight. Patches never overlap, so the backward scatter
// is a plain permutation.
#include "ops.h"

namespace spdfq::cpu {

void patchify(float* patches, const float* images, int B, const VitConfig& c, const Exec& ex) {
  const int gh = c.grid_h(), gw = c.grid_w(), p = c.patch, C = c.channels, H = c.image_h, W = c.image_w;
  const int64_t L = c.patch_len();
  ex.parallel(int64_t(B) * gh, [&](int64_t t, int) {
    const int64_t b = t / gh, py = t % gh;
    for (int px = 0; px < gw; ++px) {
      float* row = patches + ((b * gh + py) * gw + px) * L;
      for (int ch = 0; ch < C; ++ch)
        for (int ky = 0; ky < p; ++ky) {
          const float* src = images + ((b * C + ch) * H + py * p + ky) * int64_t(W) + px * p;
          float* dst = row + (ch * p + ky) * p;
          for (int kx = 0; kx < p; ++kx) dst[kx] = src[kx];
        }
    }
  });
}

void unpatchify_accumulate(float* dimages, const float* dpatches, int B, const VitConfig& c, const Exec& ex) {
  const int gh = c.grid_h(), gw = c.grid_w(), p = c.patch, C = c.channels, H = c.image_h, W = c.image_w;
  const int64_t L = c.patch_len();
  ex.parallel(int64_t(B) * gh, [&](int64_t t, int) {
    const int64_t b = t / gh, py = t % gh;
    for (int px = 0; px < gw; ++px) {
      const float* row = dpatches + ((b * gh + py) * gw + px) * L;
      for (int ch = 0; ch < C; ++ch)
        for (int ky = 0; ky < p; ++ky) {
          float* dst = dimages + ((b * C + ch) * H + py * p + ky) * int64_t(W) + px * p;
          const float* src = row + (ch * p + ky) * p;
          for (int kx = 0; kx < p; ++kx) dst[kx] += src[kx];
        }
    }
  });
}

}  // namespace spdfq::cpu
