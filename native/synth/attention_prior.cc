// Gaussian-mixture attention priors (see attention_prior.h for the distribution).
#include "attention_prior.h"

#include <algorithm>
#include <cmath>

#include "../core/errors.h"

namespace spdfq::synth {

void sample_attention_prior(float* out, int gh, int gw, const PriorSpec& spec, Rng& rng,
                            std::vector<PriorComponent>* comps) {
  const int k = rng.uniform_int(1, spec.components_max);
  // A grid smaller than 3·std_min/… would make the upper bound fall below the lower one;
  // the range then collapses to std_min rather than inverting.
  const double hi_y = std::max<double>(spec.std_min, gh * double(spec.std_max_fraction));
  const double hi_x = std::max<double>(spec.std_min, gw * double(spec.std_max_fraction));
  PriorComponent c[64];
  const int kk = std::min(k, 64);
  double wsum = 0.0;
  for (int i = 0; i < kk; ++i) {
    c[i].mu_y = float(rng.uniform(0.0, double(gh - 1)));
    c[i].mu_x = float(rng.uniform(0.0, double(gw - 1)));
    c[i].sd_y = float(rng.uniform(spec.std_min, hi_y));
    c[i].sd_x = float(rng.uniform(spec.std_min, hi_x));
    const double e = rng.exponential();
    c[i].weight = float(e);
    wsum += e;
  }
  for (int i = 0; i < kk; ++i) c[i].weight = float(c[i].weight / wsum);

  // The normalized 2-D density, so a wide component spreads its weight instead of
  // outweighing a narrow one; the map is renormalized over the patch centres afterwards.
  std::vector<double> acc(size_t(gh) * gw, 0.0);
  for (int i = 0; i < kk; ++i) {
    const double norm = c[i].weight / (6.283185307179586 * double(c[i].sd_y) * c[i].sd_x);
    for (int r = 0; r < gh; ++r) {
      const double dy = (r - double(c[i].mu_y)) / c[i].sd_y;
      for (int q = 0; q < gw; ++q) {
        const double dx = (q - double(c[i].mu_x)) / c[i].sd_x;
        acc[size_t(r) * gw + q] += norm * std::exp(-0.5 * (dy * dy + dx * dx));
      }
    }
  }
  double total = 0.0;
  for (double v : acc) total += v;
  // Means lie inside the grid and std ≥ std_min > 0, so the nearest patch centre carries a
  // density of at least exp(−½·(0.5/std_min)²·2)/…, far above underflow: total > 0.
  if (!(total > 0.0)) fail("E_NUMERIC", "attention prior: the mixture underflowed on the patch grid");
  for (size_t j = 0; j < acc.size(); ++j) out[j] = float(acc[j] / total);
  if (comps) comps->insert(comps->end(), c, c + kk);
}

namespace {

// What both samplers check of the spec, and the table shape they share.
void check_components(const PriorSpec& spec) {
  if (spec.components_max < 1 || spec.components_max > 64)
    fail("E_CONFIG", "apa components: expected an integer in [1, 64], found " + std::to_string(spec.components_max));
}

AttentionPriors empty_priors(int images, int sets, int heads, int gh, int gw) {
  AttentionPriors p;
  p.images = images;
  p.sets = sets;
  p.heads = heads;
  p.grid_h = gh;
  p.grid_w = gw;
  p.maps.resize(size_t(images) * sets * heads * gh * gw);
  return p;
}

}  // namespace

AttentionPriors sample_attention_priors(int images, int sets, int heads, int gh, int gw, const PriorSpec& spec,
                                        uint64_t seed) {
  check_components(spec);
  if (images < 0 || sets < 1 || heads < 1 || gh < 1 || gw < 1)
    fail("E_CONFIG", "attention priors: expected images ≥ 0, sets, heads and grid ≥ 1");
  AttentionPriors p = empty_priors(images, sets, heads, gh, gw);
  p.counts.resize(size_t(images) * sets * heads);
  for (int b = 0; b < images; ++b) {
    Rng rng = Rng::stream(seed, Stream::Priors, uint64_t(b));
    for (int s = 0; s < sets; ++s)
      for (int h = 0; h < heads; ++h) {
        const size_t before = p.components.size();
        const size_t idx = (size_t(b) * sets + s) * heads + h;
        sample_attention_prior(p.maps.data() + idx * gh * gw, gh, gw, spec, rng, &p.components);
        p.counts[idx] = int(p.components.size() - before);
      }
  }
  return p;
}

AttentionPriors sample_window_priors(int images, int sets, int heads, int gh, int gw, int wh, int ww, int group,
                                     const PriorSpec& spec, uint64_t seed) {
  check_components(spec);
  if (images < 0 || sets < 1 || heads < 1 || gh < 1 || gw < 1 || wh < 1 || ww < 1 || group < 0)
    fail("E_CONFIG", "window attention priors: expected images ≥ 0, sets, heads, grid and window ≥ 1, group ≥ 0");
  const int tiles_y = (gh + wh - 1) / wh, tiles_x = (gw + ww - 1) / ww, tiles = tiles_y * tiles_x;
  AttentionPriors p = empty_priors(images, sets, heads, gh, gw);
  p.window_h = wh;
  p.window_w = ww;
  p.counts.resize(size_t(images) * sets * heads * tiles);
  std::vector<float> tile(size_t(wh) * ww);
  for (int b = 0; b < images; ++b) {
    // Its own stream per (image, group): group g's draws do not depend on the other groups'.
    Rng rng = Rng::stream(seed, Stream::Priors, uint64_t(b) | (uint64_t(group + 1) << 40));
    for (int s = 0; s < sets; ++s)
      for (int h = 0; h < heads; ++h) {
        const size_t idx = (size_t(b) * sets + s) * heads + h;
        float* map = p.maps.data() + idx * gh * gw;
        for (int t = 0; t < tiles; ++t) {
          const size_t before = p.components.size();
          sample_attention_prior(tile.data(), wh, ww, spec, rng, &p.components);
          p.counts[idx * tiles + t] = int(p.components.size() - before);
          // The tile's part inside the grid (the rest lies on padding tokens).
          const int y0 = (t / tiles_x) * wh, x0 = (t % tiles_x) * ww;
          for (int r = 0; r < wh && y0 + r < gh; ++r)
            for (int q = 0; q < ww && x0 + q < gw; ++q) map[(y0 + r) * gw + x0 + q] = tile[size_t(r) * ww + q];
        }
      }
  }
  return p;
}

}  // namespace spdfq::synth
