// Element-wise layers: the MLP activation (math shared with the CPU through core/fast_math.h), the
// residual add, fake quantization (core/quantizer.h), and the deterministic column sums
// behind bias gradients.
#include "fast_math_cuda.h"  // first: see there
#include "../core/activation_math.h"
#include "cuda_check.h"
#include "launch.cuh"
#include "ops.h"

namespace spdfq::cuda {

namespace {

template <Activation A>
__global__ void k_activation_forward(float* out, const float* inp, int64_t n) {
  SPDFQ_GRID_STRIDE(i, n) { out[i] = activate<A>(inp[i]); }
}

template <Activation A>
__global__ void k_activation_backward(float* dinp, const float* dout, const float* inp, int64_t n) {
  SPDFQ_GRID_STRIDE(i, n) { dinp[i] += dout[i] * activate_grad<A>(inp[i]); }
}

__global__ void k_residual(float* out, const float* a, const float* b, int64_t n) {
  SPDFQ_GRID_STRIDE(i, n) { out[i] = a[i] + b[i]; }
}

__global__ void k_fake_quant(float* data, int64_t rows, int64_t cols, int64_t ld, quant::TensorQuant q) {
  const float levels = float(int64_t(1) << q.bits);
  SPDFQ_GRID_STRIDE(i, rows * cols) {
    float* x = data + (i / cols) * ld + i % cols;
    *x = q.kind == quant::QuantKind::Uniform ? quant::fake_quant_uniform(*x, q.scale, q.zero, q.qmin, q.qmax)
                                             : quant::fake_quant_log2(*x, q.scale, levels);
  }
}

// Stage 1 of a column sum: block (32 columns × 8 row lanes) per (column group, row slice);
// partial[slice][col] = Σ over the slice's rows, lanes combined in a fixed order.
__global__ void k_colsum_partial(float* partial, const float* in, int64_t rows, int cols, int64_t ld,
                                 int64_t rows_per_slice) {
  __shared__ float red[8][33];
  const int col = int(blockIdx.x) * 32 + int(threadIdx.x);
  const int64_t r0 = int64_t(blockIdx.y) * rows_per_slice;
  const int64_t r1 = r0 + rows_per_slice < rows ? r0 + rows_per_slice : rows;
  float s = 0.0f;
  if (col < cols)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) s += in[r * ld + col];
  red[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    float t = 0.0f;
#pragma unroll
    for (int y = 0; y < 8; ++y) t += red[y][threadIdx.x];
    partial[int64_t(blockIdx.y) * cols + col] = t;
  }
}

// Stage 2: out[col] += scale · Σ_slices partial[slice][col], slices in order.
__global__ void k_colsum_finish(float* out, const float* partial, int slices, int cols, float scale) {
  const int col = int(blockIdx.x) * blockDim.x + int(threadIdx.x);
  if (col >= cols) return;
  float t = 0.0f;
  for (int s = 0; s < slices; ++s) t += partial[int64_t(s) * cols + col];
  out[col] += scale * t;
}

}  // namespace

void activation_forward(float* out, const float* inp, int64_t n, Activation kind, const Ctx& ctx) {
  if (n <= 0) return;
  with_activation(kind, [&](auto tag) {
    k_activation_forward<decltype(tag)::value><<<grid_for(n), kBlock, 0, ctx.stream>>>(out, inp, n);
  });
  CUDA_CHECK_LAUNCH("k_activation_forward");
}

void activation_backward(float* dinp, const float* dout, const float* inp, int64_t n, Activation kind, const Ctx& ctx) {
  if (n <= 0 || !dinp) return;
  with_activation(kind, [&](auto tag) {
    k_activation_backward<decltype(tag)::value><<<grid_for(n), kBlock, 0, ctx.stream>>>(dinp, dout, inp, n);
  });
  CUDA_CHECK_LAUNCH("k_activation_backward");
}

void residual_forward(float* out, const float* a, const float* b, int64_t n, const Ctx& ctx) {
  if (n <= 0) return;
  k_residual<<<grid_for(n), kBlock, 0, ctx.stream>>>(out, a, b, n);
  CUDA_CHECK_LAUNCH("k_residual");
}

void fake_quant(float* data, int64_t rows, int64_t cols, int64_t ld, const quant::TensorQuant& q, const Ctx& ctx) {
  if (q.kind == quant::QuantKind::None || rows <= 0 || cols <= 0) return;
  k_fake_quant<<<grid_for(rows * cols), kBlock, 0, ctx.stream>>>(data, rows, cols, ld, q);
  CUDA_CHECK_LAUNCH("k_fake_quant");
}

void column_sum_accumulate(float* out, const float* in, int64_t rows, int cols, int64_t ld, float scale,
                           const Ctx& ctx) {
  if (!out || rows <= 0 || cols <= 0) return;
  if (ctx.scratch_floats < int64_t(kReduceSlices) * cols)
    fail("E_CUDA", "column_sum_accumulate: reduction scratch too small (internal error)");
  // At least 32 rows per slice: fewer slices for short inputs.
  int slices = int((rows + 31) / 32);
  if (slices > kReduceSlices) slices = kReduceSlices;
  const int64_t per = (rows + slices - 1) / slices;
  slices = int((rows + per - 1) / per);
  k_colsum_partial<<<dim3(unsigned((cols + 31) / 32), unsigned(slices)), dim3(32, 8), 0, ctx.stream>>>(
      ctx.scratch, in, rows, cols, ld, per);
  CUDA_CHECK_LAUNCH("k_colsum_partial");
  k_colsum_finish<<<unsigned((cols + 255) / 256), 256, 0, ctx.stream>>>(out, ctx.scratch, slices, cols, scale);
  CUDA_CHECK_LAUNCH("k_colsum_finish");
}

}  // namespace spdfq::cuda
