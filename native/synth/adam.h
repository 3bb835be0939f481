// The optimizer on the pixels: Adam exactly as torch.optim.Adam (bias-corrected moments,
// eps added to the corrected root), and the cosine learning-rate schedule with linear
// warm-up of PSAQ-ViT's (and DeepInversion's) lr_cosine_policy.
#pragma once

#include <cstdint>

namespace spdfq::synth {

// One Adam step at time t (1-based) on n values: updates m, v and x in place.
void adam_step(float* x, const float* g, float* m, float* v, int64_t n, int64_t t, float lr, float beta1, float beta2,
               float eps);

// Learning rate at step `step` (0-based) of a round of `iters` steps: base·(step+1)/warmup
// during warm-up, then ½(1 + cos(π·e/es))·base with e = step − warmup, es = iters − warmup.
double cosine_lr(int step, int iters, int warmup, double base);

}  // namespace spdfq::synth
