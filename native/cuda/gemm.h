// Single-precision GEMM on the GPU, the CPU engine's contract (native/cpu/gemm.h) plus
// strided batching and a bias epilogue:
//
//   C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C  (+ bias[n] when bias != nullptr)
//
// Row-major, leading dimensions in elements; op(A) = A (M×K) or Aᵀ (A stored K×M), op(B) =
// B (K×N) or Bᵀ (B stored N×K) — Linear forward is NT on PyTorch's [out, in] weight,
// dinp is NN, dW is TN. beta == 0: C is written, never read (it may hold NaN).
//
// Batching covers attention's per-(image, head) products, which read q/k/v in place
// inside the [tokens, 3D] rows: batch index z runs over batch_outer × batch_inner, and
// matrix z starts at X + (z / batch_inner)·stride_outer + (z % batch_inner)·stride_inner.
//
// Two kernels: TF32 tensor cores (wmma m16n16k8, operands rounded to TF32 — 10 explicit
// mantissa bits — products accumulated in FP32) and plain FP32 FMA (the GPU reference).
// No alignment requirement on pointers or leading dimensions: tiles are staged through
// shared memory with bounds checks. No cuBLAS.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "gemm_math.h"

namespace spdfq::cuda {

struct GemmArgs {
  bool transA = false, transB = false;
  int M = 0, N = 0, K = 0;
  float alpha = 1.0f;
  const float* A = nullptr;
  int64_t lda = 0;
  const float* B = nullptr;
  int64_t ldb = 0;
  float beta = 0.0f;
  float* C = nullptr;
  int64_t ldc = 0;
  const float* bias = nullptr;  // [N], added after alpha/beta (Linear forward)

  int batch_outer = 1, batch_inner = 1;
  int64_t strideA_outer = 0, strideA_inner = 0;
  int64_t strideB_outer = 0, strideB_inner = 0;
  int64_t strideC_outer = 0, strideC_inner = 0;
};

// Validates the shapes (E_TENSOR on a leading dimension too small, sizes < 0) and launches
// on `stream`; M, N or K of 0 is a no-op apart from the beta scaling when K == 0.
void gemm(const GemmArgs& g, GemmMath math, cudaStream_t stream);

// The two kernels' launchers (gemm() dispatches; tests and the benchmark call them directly).
void gemm_tf32(const GemmArgs& g, cudaStream_t stream);
void gemm_fp32(const GemmArgs& g, cudaStream_t stream);

}  // namespace spdfq::cuda
