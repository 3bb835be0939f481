// Attention Priors Alignment (APA) for one block: the MSE between the model's attention
// map over the patch tokens and the prior, and its gradient at the attention tap.
//
// The model's map for (image b, head h): c_j = Σ_{i∈Q} P[b,h,i,prefix+j] over the query
// set Q (the class token, or every token), renormalized over the patch tokens,
// a_j = c_j / Σ_k c_k (class/distillation columns excluded; the 1/|Q| of a mean cancels).
// Loss of the block: Σ_b Σ_h ℓ(a, prior), summed over images and heads (the loop applies
// the l/L weight, α and the mean over images through `scale`), with ℓ one of (ApaLoss):
//   Mse          (1/P) Σ_j (a_j − p_j)²          g_j = 2(a_j − p_j)/P
//   RelativeMse  Σ_j (a_j − p_j)² / Σ_j p_j²     g_j = 2(a_j − p_j)/Σp²
//   Kl           Σ_j p_j log(p_j / a_j)          g_j = −p_j / a_j
// where g_j = dℓ/da_j. Through the renormalization, d/dc_j = (g_j − Σ_k g_k a_k)/Σc, and
// d/dP[i,j] equals that for every query i in Q.
#pragma once

#include <cstdint>

#include "synth_config.h"

namespace spdfq::synth {

// The renormalized maps a [B, H, P] of `att` [B, H, N, N] (for reports and tests).
void apa_attention_maps(float* maps, const float* att, int B, int H, int N, int prefix, ApaQuery q);

// Returns Σ_b Σ_h ℓ(a, prior). When datt is non-null, ADDS scale · d(loss)/d att into it
// ([B, H, N, N]; entries outside the query rows and patch columns are left untouched).
// priors: [B, H, P] with the image stride `prior_image_stride` floats between images
// (H·P for contiguous priors; larger when one prior set of several is used).
double apa_loss(float* datt, const float* att, const float* priors, int64_t prior_image_stride, int B, int H, int N,
                int prefix, ApaQuery q, ApaLoss form, double scale);

// APA of windowed attention (Swin; docs/swin.md, "Stage: synthesis") for one block, `att`
// [B, nW, H, N, N]. Window w's real rows are those with slots[w·N + t] ≥ 0 (padding rows,
// which torchvision lets take part in the softmax, are left out as the ViT leaves out its
// class token): c_j = Σ_i P[b,w,h,i,j] over the real queries i (the query mean: a Swin has no
// class token) and real columns j, a = c / Σc; the prior is the map of (b, h) [grid_tokens]
// at the window's tokens, p_j = map[slots[j]] renormalized over them (uniform if it
// underflowed to 0). Loss: Σ_b Σ_h (1/nW) Σ_w ℓ(a, p), ℓ as above: a mean over windows, so
// a stage of many windows weighs as one of few. When datt is non-null, ADDS
// scale · d(loss)/d att into it. priors: [B, H, grid_tokens], image stride as apa_loss.
double window_apa_loss(float* datt, const float* att, const float* prior_maps, int64_t prior_image_stride, int B,
                       int H, int nW, int N, const int32_t* slots, int grid_tokens, ApaLoss form, double scale);

}  // namespace spdfq::synth
