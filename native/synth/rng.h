// Seeded random numbers for synthesis, written out (not <random>'s distributions, whose
// algorithms differ between standard libraries) so that a seed gives the same images on
// every platform. SplitMix64 (Steele et al., 2014) is small, passes BigCrush, and makes
// independent streams cheap: each purpose (init, labels, priors, each step) gets its own
// stream derived from (seed, purpose, index), so switching one part off or changing the
// number of images does not shift the random numbers any other part sees.
#pragma once

#include <cmath>
#include <cstdint>

namespace spdfq::synth {

// Purposes of the derived streams (stable numbers: changing one changes every result).
enum class Stream : uint64_t { Init = 1, Labels = 2, Priors = 3, TvTarget = 4, Step = 5, Regions = 6 };

class Rng {
 public:
  explicit Rng(uint64_t state) : s_(state) {}
  // An independent stream for (seed, purpose, index): the three words are mixed through
  // SplitMix64's finalizer so neighbouring indices give unrelated states.
  static Rng stream(uint64_t seed, Stream purpose, uint64_t index = 0) {
    uint64_t s = mix(seed ^ 0x9E3779B97F4A7C15ull);
    s = mix(s ^ (uint64_t(purpose) * 0xD1B54A32D192ED03ull));
    s = mix(s ^ (index + 0x632BE59BD9B4E019ull));
    return Rng(s);
  }

  uint64_t next_u64() {
    s_ += 0x9E3779B97F4A7C15ull;
    return mix(s_);
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [lo, hi] (inclusive); the modulo bias is below 2^-40 for our ranges.
  int uniform_int(int lo, int hi) {
    const uint64_t span = uint64_t(int64_t(hi) - int64_t(lo) + 1);
    return int(int64_t(lo) + int64_t(next_u64() % span));
  }
  // Standard normal by Box–Muller (both values used, so no state is cached across calls
  // that a reordering could disturb: normal_pair fills two at a time).
  void normal_pair(double* a, double* b) {
    const double u1 = 1.0 - uniform();  // (0, 1]: log stays finite
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    *a = r * std::cos(6.283185307179586 * u2);
    *b = r * std::sin(6.283185307179586 * u2);
  }
  double normal() {
    double a, b;
    normal_pair(&a, &b);
    return a;
  }
  // Exp(1): normalized, a vector of these is a Dirichlet(1, …, 1) draw.
  double exponential() { return -std::log(1.0 - uniform()); }

 private:
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t s_;
};

}  // namespace spdfq::synth
