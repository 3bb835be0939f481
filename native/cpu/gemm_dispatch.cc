// Run-time choice of the GEMM variant. Compiled with plain flags: it must run on any
// x86-64 CPU, since it is what decides whether the AVX code may be entered at all.
#include "cpu_features.h"
#include "gemm.h"

namespace spdfq::cpu {

bool gemm_variant_supported(GemmVariant v) {
  switch (v) {
    case GemmVariant::Ref:
    case GemmVariant::Auto:
      return true;
    case GemmVariant::Avx2:
      return cpu_features().avx2_fma;
    case GemmVariant::Avx512:
      return cpu_features().avx512f;
  }
  return false;
}

const char* gemm_variant_name(GemmVariant v) {
  switch (v) {
    case GemmVariant::Ref:
      return "ref";
    case GemmVariant::Avx2:
      return "avx2";
    case GemmVariant::Avx512:
      return "avx512";
    case GemmVariant::Auto:
      return "auto";
  }
  return "unknown";
}

namespace {

using GemmFn = void (*)(const GemmArgs&);

GemmFn best_gemm() {
  if (gemm_variant_supported(GemmVariant::Avx512)) return gemm_avx512;
  if (gemm_variant_supported(GemmVariant::Avx2)) return gemm_avx2;
  return gemm_ref;
}

}  // namespace

void gemm(const GemmArgs& g, GemmVariant v) {
  static const GemmFn best = best_gemm();  // resolved once; cpuid is not free
  GemmFn fn = best;
  // An explicit request is honoured only if the CPU can run it; otherwise best supported.
  if (v == GemmVariant::Ref) fn = gemm_ref;
  else if (v == GemmVariant::Avx2 && gemm_variant_supported(v)) fn = gemm_avx2;
  else if (v == GemmVariant::Avx512 && gemm_variant_supported(v)) fn = gemm_avx512;
  fn(g);
}

}  // namespace spdfq::cpu
