// Run-time CPU feature detection with cpuid + xgetbv. A feature counts only if the CPU
// has it AND the OS saves the matching register state on context switches (XCR0):
// a kernel using ymm/zmm registers on an OS that does not save them corrupts other
// processes' state or faults, so the cpuid bit alone is not enough.
//
// Compiled with plain flags (no -mavx…): this file runs on every x86-64 CPU.
#include "cpu_features.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace spdfq::cpu {

namespace {

#if defined(__x86_64__)

// xgetbv via inline asm: the _xgetbv intrinsic would need -mxsave on this file.
unsigned long long read_xcr0() {
  unsigned int lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned int a = 0, b = 0, c = 0, d = 0;
  const unsigned int max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 1 || !__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool fma = c & (1u << 12);
  const bool osxsave = c & (1u << 27);
  const bool avx = c & (1u << 28);
  if (!osxsave || !avx) return f;  // xgetbv itself faults without OSXSAVE

  const unsigned long long xcr0 = read_xcr0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;     // SSE + AVX (upper ymm) state
  const bool os_zmm = (xcr0 & 0xE6) == 0xE6;   // + opmask, ZMM_Hi256, Hi16_ZMM state
  if (!os_ymm || max_leaf < 7) return f;

  unsigned int b7 = 0, c7 = 0, d7 = 0, a7 = 0;
  __cpuid_count(7, 0, a7, b7, c7, d7);
  const unsigned int max_sub7 = a7;
  const bool avx2 = b7 & (1u << 5);
  const bool avx512f = b7 & (1u << 16);
  const bool avx512dq = b7 & (1u << 17);
  const bool avx512bw = b7 & (1u << 30);
  const bool avx512vl = b7 & (1u << 31);
  const bool avx512vnni = c7 & (1u << 11);

  bool avxvnni = false;
  if (max_sub7 >= 1) {
    unsigned int a71 = 0, b71 = 0, c71 = 0, d71 = 0;
    __cpuid_count(7, 1, a71, b71, c71, d71);
    avxvnni = a71 & (1u << 4);
  }

  f.avx2_fma = avx2 && fma;
  // The AVX-512 kernels are compiled with -mavx512vl/bw/dq/-mavx2/-mfma as well as
  // -mavx512f, so the compiler is free to emit any of those encodings: require the whole
  // Skylake-X/Zen 4 baseline (this only excludes Xeon Phi, which lacks VL/BW/DQ).
  f.avx512f = os_zmm && avx512f && avx512vl && avx512bw && avx512dq && f.avx2_fma;
  f.avx512_vnni = f.avx512f && avx512vnni;
  f.avx_vnni = f.avx2_fma && avxvnni;
  return f;
}

#else

CpuFeatures detect() { return CpuFeatures{}; }  // non-x86: scalar reference only

#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();  // thread-safe one-time init (C++11)
  return features;
}

}  // namespace spdfq::cpu
