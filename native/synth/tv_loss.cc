// Total variation and its gradient (see tv_loss.h). Norms accumulate in double: the batch
// holds millions of differences.
#include "tv_loss.h"

#include <cmath>

namespace spdfq::synth {

namespace {
// The four directions as (dy_a, dx_a, dy_b, dx_b): Δ = x[y+dy_a, x+dx_a] − x[y+dy_b, x+dx_b]
// over y in [0, H−1), x in [0, W−1) (or the full extent along an axis the pair does not move).
struct Dir {
  int ya, xa, yb, xb;
};
constexpr Dir kDirs[4] = {{0, 0, 0, 1}, {0, 0, 1, 0}, {1, 0, 0, 1}, {0, 0, 1, 1}};

template <class F>
void for_pairs(const Dir& d, int B, int C, int H, int W, F&& fn) {
  const int ny = H - (d.ya != d.yb ? 1 : 0), nx = W - (d.xa != d.xb ? 1 : 0);
  for (int64_t p = 0; p < int64_t(B) * C; ++p) {
    const int64_t base = p * H * W;
    for (int y = 0; y < ny; ++y)
      for (int x = 0; x < nx; ++x) fn(base + int64_t(y + d.ya) * W + x + d.xa, base + int64_t(y + d.yb) * W + x + d.xb);
  }
}
int64_t pair_count(const Dir& d, int B, int C, int H, int W) {
  return int64_t(B) * C * (H - (d.ya != d.yb ? 1 : 0)) * (W - (d.xa != d.xb ? 1 : 0));
}
}  // namespace

double tv_loss(float* dx, const float* x, int B, int C, int H, int W, TvForm form, double scale, int mean_images) {
  if (form == TvForm::None) return 0.0;
  double total = 0.0;
  for (const Dir& d : kDirs) {
    // 'l1' means over the pairs of mean_images images (a shard: the whole batch's).
    const int64_t n = pair_count(d, mean_images > 0 ? mean_images : B, C, H, W);
    if (n == 0) continue;
    if (form == TvForm::L2) {
      double s = 0.0;
      for_pairs(d, B, C, H, W, [&](int64_t a, int64_t b) {
        const double v = double(x[a]) - x[b];
        s += v * v;
      });
      const double norm = std::sqrt(s);
      total += norm;
      // d‖Δ‖/dΔ = Δ/‖Δ‖ (0 at Δ = 0, the subgradient PyTorch's norm backward also uses).
      if (dx && norm > 0.0) {
        const float k = float(scale / norm);
        for_pairs(d, B, C, H, W, [&](int64_t a, int64_t b) {
          const float g = k * (x[a] - x[b]);
          dx[a] += g;
          dx[b] -= g;
        });
      }
    } else {
      double s = 0.0;
      for_pairs(d, B, C, H, W, [&](int64_t a, int64_t b) { s += std::fabs(double(x[a]) - x[b]); });
      total += s / double(n);
      if (dx) {
        const float k = float(scale / double(n));
        for_pairs(d, B, C, H, W, [&](int64_t a, int64_t b) {
          const float v = x[a] - x[b];
          const float g = v > 0 ? k : v < 0 ? -k : 0.0f;
          dx[a] += g;
          dx[b] -= g;
        });
      }
    }
  }
  return total;
}

}  // namespace spdfq::synth
