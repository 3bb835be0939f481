// Roll + flip and its adjoint. Both are permutations of pixels: out[y, x] reads
// x[(y − dy) mod H, (x' − dx) mod W] with x' = W−1−x when flipped.
#include "augment.h"

namespace spdfq::synth {

namespace {
inline int wrap(int v, int n) {
  v %= n;
  return v < 0 ? v + n : v;
}
template <class F>
void for_each_pixel(int B, int C, int H, int W, const StepAugment& a, F&& fn) {
  for (int64_t p = 0; p < int64_t(B) * C; ++p) {
    const int64_t base = p * H * W;
    for (int y = 0; y < H; ++y) {
      const int sy = wrap(y - a.dy, H);
      for (int x = 0; x < W; ++x) {
        const int xr = a.flip ? W - 1 - x : x;
        fn(base + int64_t(y) * W + x, base + int64_t(sy) * W + wrap(xr - a.dx, W));
      }
    }
  }
}
}  // namespace

void augment_forward(float* out, const float* x, int B, int C, int H, int W, const StepAugment& a) {
  for_each_pixel(B, C, H, W, a, [&](int64_t o, int64_t s) { out[o] = x[s]; });
}

void augment_backward(float* dx, const float* dout, int B, int C, int H, int W, const StepAugment& a) {
  for_each_pixel(B, C, H, W, a, [&](int64_t o, int64_t s) { dx[s] += dout[o]; });
}

}  // namespace spdfq::synth
