// MSR region sampling and the bilinear crop-resize pair (see msr_regions.h).
#include "msr_regions.h"

#include <algorithm>
#include <cmath>

namespace spdfq::synth {

void sample_regions(std::vector<Region>* out, int B, int H, int W, const RegionSpec& spec, Rng& rng) {
  const int cells = spec.grid * spec.grid;
  std::vector<int> order(cells);
  for (int b = 0; b < B; ++b) {
    const int m = rng.uniform_int(1, std::min(spec.max_regions, cells));
    // m distinct cells: the first m of a Fisher–Yates shuffle.
    for (int i = 0; i < cells; ++i) order[i] = i;
    for (int i = 0; i < m; ++i) std::swap(order[i], order[rng.uniform_int(i, cells - 1)]);
    for (int i = 0; i < m; ++i) {
      const int cell = order[i], cy = cell / spec.grid, cx = cell % spec.grid;
      const int y_lo = int(int64_t(cy) * H / spec.grid), y_hi = int(int64_t(cy + 1) * H / spec.grid);
      const int x_lo = int(int64_t(cx) * W / spec.grid), x_hi = int(int64_t(cx + 1) * W / spec.grid);
      const double s = rng.uniform(spec.box_min, spec.box_max);
      Region r;
      r.image = b;
      r.cell = cell;
      r.h = std::clamp(int(std::lround(s * (y_hi - y_lo))), 1, y_hi - y_lo);
      r.w = std::clamp(int(std::lround(s * (x_hi - x_lo))), 1, x_hi - x_lo);
      r.y0 = y_lo + rng.uniform_int(0, (y_hi - y_lo) - r.h);
      r.x0 = x_lo + rng.uniform_int(0, (x_hi - x_lo) - r.w);
      r.flip = spec.flip && rng.uniform() < 0.5;
      out->push_back(r);
    }
  }
}

namespace {
// PyTorch's source index for align_corners=False (area_pixel_compute_source_index, then
// the clamp of upsample_bilinear2d): two taps and the weight of the second.
struct Tap {
  int i0, i1;
  float l1;
};
std::vector<Tap> taps(int in, int out) {
  std::vector<Tap> t(out);
  const double scale = double(in) / out;
  for (int o = 0; o < out; ++o) {
    double src = (o + 0.5) * scale - 0.5;
    if (src < 0) src = 0;
    int i0 = int(src);
    if (i0 > in - 1) i0 = in - 1;
    const int i1 = i0 < in - 1 ? i0 + 1 : i0;
    t[o] = Tap{i0, i1, float(src - i0)};
  }
  return t;
}
}  // namespace

void crop_resize_forward(float* out, const float* image, int C, int H, int W, const Region& r, int outH, int outW) {
  const std::vector<Tap> ty = taps(r.h, outH), tx = taps(r.w, outW);
  for (int c = 0; c < C; ++c) {
    const float* img = image + int64_t(c) * H * W;
    float* o = out + int64_t(c) * outH * outW;
    for (int oy = 0; oy < outH; ++oy) {
      const Tap& a = ty[oy];
      const float* r0 = img + int64_t(r.y0 + a.i0) * W + r.x0;
      const float* r1 = img + int64_t(r.y0 + a.i1) * W + r.x0;
      float* orow = o + int64_t(oy) * outW;
      for (int ox = 0; ox < outW; ++ox) {
        const Tap& b = tx[r.flip ? outW - 1 - ox : ox];
        const float top = r0[b.i0] + b.l1 * (r0[b.i1] - r0[b.i0]);
        const float bot = r1[b.i0] + b.l1 * (r1[b.i1] - r1[b.i0]);
        orow[ox] = top + a.l1 * (bot - top);
      }
    }
  }
}

void crop_resize_backward(float* dimage, const float* dout, int C, int H, int W, const Region& r, int outH, int outW) {
  const std::vector<Tap> ty = taps(r.h, outH), tx = taps(r.w, outW);
  for (int c = 0; c < C; ++c) {
    float* img = dimage + int64_t(c) * H * W;
    const float* d = dout + int64_t(c) * outH * outW;
    for (int oy = 0; oy < outH; ++oy) {
      const Tap& a = ty[oy];
      float* r0 = img + int64_t(r.y0 + a.i0) * W + r.x0;
      float* r1 = img + int64_t(r.y0 + a.i1) * W + r.x0;
      const float* drow = d + int64_t(oy) * outW;
      for (int ox = 0; ox < outW; ++ox) {
        const Tap& b = tx[r.flip ? outW - 1 - ox : ox];
        // forward: (1−ly)((1−lx)·p00 + lx·p01) + ly((1−lx)·p10 + lx·p11)
        const float g = drow[ox];
        const float g0 = g * (1.0f - a.l1), g1 = g * a.l1;
        r0[b.i0] += g0 * (1.0f - b.l1);
        r0[b.i1] += g0 * b.l1;
        r1[b.i0] += g1 * (1.0f - b.l1);
        r1[b.i1] += g1 * b.l1;
      }
    }
  }
}

}  // namespace spdfq::synth
