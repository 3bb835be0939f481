// Run-time CPU feature detection: the shipped build has no -march=native, so SIMD
// kernels are compiled per file with their own flags and picked here.
#pragma once

namespace spdfq::cpu {

struct CpuFeatures {
  bool avx2_fma = false;     // AVX2 + FMA3 (Haswell, Zen 1 and later)
  bool avx512f = false;      // AVX-512 Foundation with OS support for zmm state
  bool avx512_vnni = false;  // VPDPBUSD int8 dot products (for the quantized GEMM)
  bool avx_vnni = false;     // AVX-VNNI (256-bit VPDPBUSD without AVX-512)
};

const CpuFeatures& cpu_features();

}  // namespace spdfq::cpu
