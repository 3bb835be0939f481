// Single-precision GEMM: the one kernel the ViT engine spends most of its time in.
//
//   C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C
//
// All matrices are row-major with leading dimensions in elements. op(A) is A (stored M×K,
// lda ≥ K) or Aᵀ (A stored K×M, lda ≥ M); likewise op(B) is B (K×N, ldb ≥ N) or Bᵀ
// (B stored N×K, ldb ≥ K) — so Linear forward is gemm(NT) with PyTorch's [out,in] weight.
// beta == 0 means C is overwritten and never read (it may hold NaN); beta == 1 accumulates.
//
// Three levels, as in ggml: `gemm_ref` (scalar, the truth), `gemm_avx2` (AVX2+FMA) and
// `gemm_avx512` (AVX-512F), the latter two compiled with their own ISA flags and chosen
// at run time by `gemm` from the CPU's features. Every variant is single-threaded: the
// engine parallelizes by splitting rows of C across its thread pool.
#pragma once

#include <cstddef>

namespace spdfq::cpu {

struct GemmArgs {
  bool transA = false;
  bool transB = false;
  int M = 0, N = 0, K = 0;
  float alpha = 1.0f;
  const float* A = nullptr;
  int lda = 0;
  const float* B = nullptr;
  int ldb = 0;
  float beta = 0.0f;
  float* C = nullptr;
  int ldc = 0;
};

enum class GemmVariant { Ref, Avx2, Avx512, Auto };

void gemm_ref(const GemmArgs& g);
void gemm_avx2(const GemmArgs& g);
void gemm_avx512(const GemmArgs& g);

// Best variant this CPU supports (Auto), or the one asked for; asking for a variant the
// CPU cannot run falls back to the best supported one (see gemm_variant_supported).
void gemm(const GemmArgs& g, GemmVariant v = GemmVariant::Auto);
bool gemm_variant_supported(GemmVariant v);
const char* gemm_variant_name(GemmVariant v);

}  // namespace spdfq::cpu
