// TF32 tensor-core GEMM (sm_80+): wmma m16n16k8, FP32 accumulation. 128 threads = 4 warps
// in 2×2, each owning a 32×32 piece of the 64×64 block tile (2×2 fragments). The next
// K-tile is fetched into registers while the tensor cores work on the current one.
#include <mma.h>

#include "cuda_check.h"
#include "gemm_tile.cuh"

namespace spdfq::cuda {

namespace {

using namespace gemm_detail;
namespace wmma = nvcuda::wmma;

struct ToTf32 {
  __device__ __forceinline__ float operator()(float x) const { return wmma::__float_to_tf32(x); }
};

template <bool TA, bool TB>
__global__ void __launch_bounds__(kThreads, 4) k_gemm_tf32(GemmArgs g, int z0) {
  __shared__ __align__(128) float smem[kSmemFloats];
  float* As = smem;
  float* Bs = smem + kBM * kLdAs;
  const BatchPtrs p = batch_ptrs(g, z0 + int(blockIdx.z));
  const int tid = int(threadIdx.x), warp = tid / 32;
  const int wm = warp / 2, wn = warp % 2;
  const int m0 = int(blockIdx.x) * kBM, n0 = int(blockIdx.y) * kBN;

  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  float ra[kAPer], rb[kBPer];
  Stager sa = make_stager<true, TA>(p.A, g.lda, g.M, g.K, m0, tid);
  Stager sb = make_stager<false, TB>(p.B, g.ldb, g.N, g.K, n0, tid);
  stage_load(ra, sa);
  stage_load(rb, sb);
  for (int k0 = 0; k0 < g.K; k0 += kBK) {
    store_a<TA>(As, ra, tid, ToTf32{});
    store_b<TB>(Bs, rb, tid, ToTf32{});
    __syncthreads();
    if (k0 + kBK < g.K) {  // next tile in flight during the MMAs
      stage_advance(sa);
      stage_advance(sb);
      stage_load(ra, sa);
      stage_load(rb, sb);
    }
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 8) {
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], As + (wm * 32 + i * 16) * kLdAs + kk, kLdAs);
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], Bs + kk * kLdBs + wn * 32 + j * 16, kLdBs);
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }

  // Stage the 64×64 result in shared memory (the operand tiles are dead), then write it
  // out row-contiguously with the epilogue.
  float* Cs = smem;
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(Cs + (wm * 32 + i * 16) * kLdCs + wn * 32 + j * 16, acc[i][j], kLdCs,
                              wmma::mem_row_major);
  __syncthreads();
#pragma unroll 4
  for (int e = tid; e < kBM * kBN; e += kThreads) {
    const int m = e / kBN, n = e % kBN;
    const int gm = m0 + m, gn = n0 + n;
    if (gm < g.M && gn < g.N) write_c(g, p.C, gm, gn, Cs[m * kLdCs + n]);
  }
}

template <bool TA, bool TB>
void launch(const GemmArgs& g, cudaStream_t stream) {
  const int batches = g.batch_outer * g.batch_inner;
  const dim3 block(kThreads);
  for (int z0 = 0; z0 < batches; z0 += 65535) {
    const int nz = batches - z0 < 65535 ? batches - z0 : 65535;
    const dim3 grid(unsigned((g.M + kBM - 1) / kBM), unsigned((g.N + kBN - 1) / kBN), unsigned(nz));
    k_gemm_tf32<TA, TB><<<grid, block, 0, stream>>>(g, z0);
    CUDA_CHECK_LAUNCH("k_gemm_tf32");
  }
}

}  // namespace

void gemm_tf32(const GemmArgs& g, cudaStream_t stream) {
  if (g.transA)
    g.transB ? launch<true, true>(g, stream) : launch<true, false>(g, stream);
  else
    g.transB ? launch<false, true>(g, stream) : launch<false, false>(g, stream);
}

}  // namespace spdfq::cuda
