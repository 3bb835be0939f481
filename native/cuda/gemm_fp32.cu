// FP32 GEMM on the FMA units: the GPU reference for the TF32 kernel (same tiles, same
// staging, full single precision). 128 threads, each accumulating an 8×4 block of the
// 64×64 tile: rows ty·8 … ty·8+7, columns tx, tx+16, tx+32, tx+48.
#include "cuda_check.h"
#include "gemm_tile.cuh"

namespace spdfq::cuda {

namespace {

using namespace gemm_detail;

struct Identity {
  __device__ __forceinline__ float operator()(float x) const { return x; }
};

template <bool TA, bool TB>
__global__ void __launch_bounds__(kThreads, 4) k_gemm_fp32(GemmArgs g, int z0) {
  __shared__ __align__(128) float smem[kSmemAB];
  float* As = smem;
  float* Bs = smem + kBM * kLdAs;
  const BatchPtrs p = batch_ptrs(g, z0 + int(blockIdx.z));
  const int tid = int(threadIdx.x), tx = tid % 16, ty = tid / 16;
  const int m0 = int(blockIdx.x) * kBM, n0 = int(blockIdx.y) * kBN;

  float acc[8][4];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;

  float ra[kAPer], rb[kBPer];
  Stager sa = make_stager<true, TA>(p.A, g.lda, g.M, g.K, m0, tid);
  Stager sb = make_stager<false, TB>(p.B, g.ldb, g.N, g.K, n0, tid);
  stage_load(ra, sa);
  stage_load(rb, sb);
  for (int k0 = 0; k0 < g.K; k0 += kBK) {
    store_a<TA>(As, ra, tid, Identity{});
    store_b<TB>(Bs, rb, tid, Identity{});
    __syncthreads();
    if (k0 + kBK < g.K) {
      stage_advance(sa);
      stage_advance(sb);
      stage_load(ra, sa);
      stage_load(rb, sb);
    }
#pragma unroll 8
    for (int k = 0; k < kBK; ++k) {
      float a[8], b[4];
#pragma unroll
      for (int i = 0; i < 8; ++i) a[i] = As[(ty * 8 + i) * kLdAs + k];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Bs[k * kLdBs + tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int gm = m0 + ty * 8 + i, gn = n0 + tx + 16 * j;
      if (gm < g.M && gn < g.N) write_c(g, p.C, gm, gn, acc[i][j]);
    }
}

template <bool TA, bool TB>
void launch(const GemmArgs& g, cudaStream_t stream) {
  const int batches = g.batch_outer * g.batch_inner;
  for (int z0 = 0; z0 < batches; z0 += 65535) {
    const int nz = batches - z0 < 65535 ? batches - z0 : 65535;
    const dim3 grid(unsigned((g.M + kBM - 1) / kBM), unsigned((g.N + kBN - 1) / kBN), unsigned(nz));
    k_gemm_fp32<TA, TB><<<grid, dim3(kThreads), 0, stream>>>(g, z0);
    CUDA_CHECK_LAUNCH("k_gemm_fp32");
  }
}

}  // namespace

void gemm_fp32(const GemmArgs& g, cudaStream_t stream) {
  if (g.transA)
    g.transB ? launch<true, true>(g, stream) : launch<true, false>(g, stream);
  else
    g.transB ? launch<false, true>(g, stream) : launch<false, false>(g, stream);
}

}  // namespace spdfq::cuda
