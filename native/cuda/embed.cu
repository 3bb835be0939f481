// Patch embedding around the GEMM (native/cpu/patch_embed.cc and CpuVit::forward's token
// assembly): im2col of non-overlapping patches (column order c, ky, kx — the flattening of
// PyTorch's [D, C, p, p] weight) and its inverse scatter, then the token sequence
// [class, distillation, patches] plus the position embedding, and their backward.
#include "fast_math_cuda.h"  // first: see there
#include "cuda_check.h"
#include "launch.cuh"
#include "ops.h"

namespace spdfq::cuda {

namespace {

struct PatchGeom {
  int gh, gw, p, C, H, W;
  int64_t L;
};

PatchGeom geom(const VitConfig& c) {
  return PatchGeom{c.grid_h(), c.grid_w(), c.patch, c.channels, c.image_h, c.image_w, c.patch_len()};
}

// Element e of the patches tensor [B·P, L] ↔ its pixel in [B, C, H, W].
__device__ __forceinline__ int64_t pixel_of(const PatchGeom& g, int64_t e) {
  const int64_t row = e / g.L;
  const int l = int(e % g.L);
  const int P = g.gh * g.gw;
  const int64_t b = row / P;
  const int pidx = int(row % P), py = pidx / g.gw, px = pidx % g.gw;
  const int ch = l / (g.p * g.p), ky = (l / g.p) % g.p, kx = l % g.p;
  return ((b * g.C + ch) * g.H + py * g.p + ky) * int64_t(g.W) + px * g.p + kx;
}

__global__ void k_patchify(float* patches, const float* images, PatchGeom g, int64_t n) {
  SPDFQ_GRID_STRIDE(e, n) { patches[e] = images[pixel_of(g, e)]; }
}

__global__ void k_unpatchify(float* dimages, const float* dpatches, PatchGeom g, int64_t n) {
  SPDFQ_GRID_STRIDE(e, n) { dimages[pixel_of(g, e)] += dpatches[e]; }  // a permutation: no two e share a pixel
}

__global__ void k_embed_tokens(float* x0, const float* proj, const float* cls, const float* dist, const float* pos,
                               int N, int D, int P, int prefix, int64_t n) {
  SPDFQ_GRID_STRIDE(e, n) {
    const int i = int(e % D);
    const int64_t t = e / D;
    const int tok = int(t % N);
    const int64_t b = t / N;
    float src;
    if (tok == 0 && cls)
      src = cls[i];
    else if (tok == 1 && dist)
      src = dist[i];
    else
      src = proj[(b * P + (tok - prefix)) * D + i];
    x0[e] = src + pos[int64_t(tok) * D + i];
  }
}

// One thread per (token, channel): sums over the batch in order, so results are
// deterministic; also gathers the patch rows of dx0 into dproj.
__global__ void k_embed_tokens_backward(float* dproj, float* dpos, float* dcls, float* ddist, const float* dx0, int B,
                                        int N, int D, int P, int prefix) {
  const int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= int64_t(N) * D) return;
  const int tok = int(e / D), i = int(e % D);
  float s = 0.0f;
  for (int b = 0; b < B; ++b) {
    const float d = dx0[(int64_t(b) * N + tok) * D + i];
    s += d;
    if (tok >= prefix) dproj[(int64_t(b) * P + (tok - prefix)) * D + i] = d;
  }
  if (dpos) dpos[e] += s;
  if (tok == 0 && dcls) dcls[i] += s;
  if (tok == 1 && ddist) ddist[i] += s;
}

}  // namespace

void patchify(float* patches, const float* images, int B, const VitConfig& c, const Ctx& ctx) {
  const int64_t n = int64_t(B) * c.patches() * c.patch_len();
  if (n <= 0) return;
  k_patchify<<<grid_for(n), kBlock, 0, ctx.stream>>>(patches, images, geom(c), n);
  CUDA_CHECK_LAUNCH("k_patchify");
}

void unpatchify_accumulate(float* dimages, const float* dpatches, int B, const VitConfig& c, const Ctx& ctx) {
  const int64_t n = int64_t(B) * c.patches() * c.patch_len();
  if (n <= 0) return;
  k_unpatchify<<<grid_for(n), kBlock, 0, ctx.stream>>>(dimages, dpatches, geom(c), n);
  CUDA_CHECK_LAUNCH("k_unpatchify");
}

void embed_tokens(float* x0, const float* proj, const float* cls, const float* dist, const float* pos, int B,
                  const VitConfig& c, const Ctx& ctx) {
  const int64_t n = int64_t(B) * c.tokens() * c.dim;
  if (n <= 0) return;
  k_embed_tokens<<<grid_for(n), kBlock, 0, ctx.stream>>>(x0, proj, c.class_token ? cls : nullptr,
                                                         c.dist_token ? dist : nullptr, pos, c.tokens(), c.dim,
                                                         c.patches(), c.prefix(), n);
  CUDA_CHECK_LAUNCH("k_embed_tokens");
}

void embed_tokens_backward(float* dproj, float* dpos, float* dcls, float* ddist, const float* dx0, int B,
                           const VitConfig& c, const Ctx& ctx) {
  const int64_t n = int64_t(c.tokens()) * c.dim;
  if (n <= 0) return;
  k_embed_tokens_backward<<<unsigned((n + kBlock - 1) / kBlock), kBlock, 0, ctx.stream>>>(
      dproj, dpos, c.class_token ? dcls : nullptr, c.dist_token ? ddist : nullptr, dx0, B, c.tokens(), c.dim,
      c.patches(), c.prefix());
  CUDA_CHECK_LAUNCH("k_embed_tokens_backward");
}

}  // namespace spdfq::cuda
