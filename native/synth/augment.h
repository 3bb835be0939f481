// The per-step jitter of the whole images (DeepInversion, PSAQ-ViT): a random roll with
// wrap-around (torch.roll) by (dy, dx) pixels, then an optional horizontal flip.
#pragma once

#include <cstdint>

namespace spdfq::synth {

struct StepAugment {
  bool flip = false;
  int dy = 0, dx = 0;  // roll offsets, rows and columns
};

// out = flip(roll(x)) for B images [B, C, H, W] (out must not alias x).
void augment_forward(float* out, const float* x, int B, int C, int H, int W, const StepAugment& a);
// The adjoint: ADDS roll⁻¹(flip(dout)) into dx.
void augment_backward(float* dx, const float* dout, int B, int C, int H, int W, const StepAugment& a);

}  // namespace spdfq::synth
