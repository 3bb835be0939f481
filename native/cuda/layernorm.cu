// LayerNorm forward/backward, one warp per row (rows are short: D ≤ a few thousand).
// Statistics as the CPU: two-pass mean and variance in float, rstd = 1/√(var + eps)
// saved for the backward. Weight gradients go through deterministic two-stage column
// sums (per-slice partials in ctx.scratch, then a fixed-order reduction).
#include "fast_math_cuda.h"  // first: see there
#include "cuda_check.h"
#include "launch.cuh"
#include "ops.h"

namespace spdfq::cuda {

namespace {

constexpr int kRowsPerBlock = kBlock / 32;

__global__ void k_layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w,
                                    const float* b, int64_t rows, int D, float eps) {
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  const int lane = int(threadIdx.x % 32);
  if (r >= rows) return;
  const float* x = inp + r * D;
  float s = 0.0f;
  for (int i = lane; i < D; i += 32) s += x[i];
  const float m = warp_sum(s) / float(D);
  float v = 0.0f;
  for (int i = lane; i < D; i += 32) {
    const float d = x[i] - m;
    v += d * d;
  }
  const float var = warp_sum(v) / float(D);
  const float rs = 1.0f / sqrtf(var + eps);
  float* y = out + r * D;
  for (int i = lane; i < D; i += 32) y[i] = (x[i] - m) * rs * w[i] + b[i];
  if (lane == 0) {
    mean[r] = m;
    rstd[r] = rs;
  }
}

// dx += s·(dŷ − mean(dŷ) − x̂·mean(dŷ·x̂)), dŷ = g·w.
__global__ void k_layernorm_backward_x(float* dinp, const float* dout, const float* inp, const float* w,
                                       const float* mean, const float* rstd, int64_t rows, int D) {
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  const int lane = int(threadIdx.x % 32);
  if (r >= rows) return;
  const float* x = inp + r * D;
  const float* g = dout + r * D;
  const float m = mean[r], s = rstd[r];
  float sdy = 0.0f, sdyx = 0.0f;
  for (int i = lane; i < D; i += 32) {
    const float dy = g[i] * w[i];
    sdy += dy;
    sdyx += dy * (x[i] - m) * s;
  }
  sdy = warp_sum(sdy) / float(D);
  sdyx = warp_sum(sdyx) / float(D);
  float* dx = dinp + r * D;
  for (int i = lane; i < D; i += 32) {
    const float xhat = (x[i] - m) * s;
    dx[i] += s * (g[i] * w[i] - sdy - xhat * sdyx);
  }
}

// Stage 1 of dw/db: partial[slice][col] = Σ g·x̂, partial[slices + slice][col] = Σ g.
__global__ void k_layernorm_backward_w_partial(float* partial, const float* dout, const float* inp,
                                               const float* mean, const float* rstd, int64_t rows, int D,
                                               int64_t rows_per_slice, int slices) {
  __shared__ float red_w[8][33], red_b[8][33];
  const int col = int(blockIdx.x) * 32 + int(threadIdx.x);
  const int64_t r0 = int64_t(blockIdx.y) * rows_per_slice;
  const int64_t r1 = r0 + rows_per_slice < rows ? r0 + rows_per_slice : rows;
  float sw = 0.0f, sb = 0.0f;
  if (col < D)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) {
      const float g = dout[r * D + col];
      sw += g * (inp[r * D + col] - mean[r]) * rstd[r];
      sb += g;
    }
  red_w[threadIdx.y][threadIdx.x] = sw;
  red_b[threadIdx.y][threadIdx.x] = sb;
  __syncthreads();
  if (threadIdx.y == 0 && col < D) {
    float tw = 0.0f, tb = 0.0f;
#pragma unroll
    for (int y = 0; y < 8; ++y) {
      tw += red_w[y][threadIdx.x];
      tb += red_b[y][threadIdx.x];
    }
    partial[int64_t(blockIdx.y) * D + col] = tw;
    partial[int64_t(slices + blockIdx.y) * D + col] = tb;
  }
}

__global__ void k_layernorm_backward_w_finish(float* dw, float* db, const float* partial, int slices, int D) {
  const int col = int(blockIdx.x) * blockDim.x + int(threadIdx.x);
  if (col >= D) return;
  float tw = 0.0f, tb = 0.0f;
  for (int s = 0; s < slices; ++s) {
    tw += partial[int64_t(s) * D + col];
    tb += partial[int64_t(slices + s) * D + col];
  }
  if (dw) dw[col] += tw;
  if (db) db[col] += tb;
}

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                       int64_t rows, int D, float eps, const Ctx& ctx) {
  if (rows <= 0) return;
  k_layernorm_forward<<<unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock), kBlock, 0, ctx.stream>>>(
      out, mean, rstd, inp, w, b, rows, D, eps);
  CUDA_CHECK_LAUNCH("k_layernorm_forward");
}

void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                        const float* mean, const float* rstd, int64_t rows, int D, const Ctx& ctx) {
  if (rows <= 0) return;
  if (dinp) {
    k_layernorm_backward_x<<<unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock), kBlock, 0, ctx.stream>>>(
        dinp, dout, inp, w, mean, rstd, rows, D);
    CUDA_CHECK_LAUNCH("k_layernorm_backward_x");
  }
  if (dw || db) {
    if (ctx.scratch_floats < reduce_scratch_floats(D))
      fail("E_CUDA", "layernorm_backward: reduction scratch too small (internal error)");
    int slices = int((rows + 31) / 32);
    if (slices > kReduceSlices) slices = kReduceSlices;
    const int64_t per = (rows + slices - 1) / slices;
    slices = int((rows + per - 1) / per);
    k_layernorm_backward_w_partial<<<dim3(unsigned((D + 31) / 32), unsigned(slices)), dim3(32, 8), 0,
                                     ctx.stream>>>(ctx.scratch, dout, inp, mean, rstd, rows, D, per, slices);
    CUDA_CHECK_LAUNCH("k_layernorm_backward_w_partial");
    k_layernorm_backward_w_finish<<<unsigned((D + 255) / 256), 256, 0, ctx.stream>>>(dw, db, ctx.scratch, slices, D);
    CUDA_CHECK_LAUNCH("k_layernorm_backward_w_finish");
  }
}

}  // namespace spdfq::cuda
