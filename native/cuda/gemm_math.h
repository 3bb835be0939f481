// Which arithmetic the CUDA GEMMs use (plain C++: the binding and the public CudaVit
// header include it). Tf32: tensor cores, operands rounded to TF32, FP32 accumulation —
// the default for synthesis. Fp32: FMA units in full single precision — the reference
// the TF32 path is measured against, and the one `reference` mode selects.
#pragma once

namespace spdfq::cuda {

enum class GemmMath { Tf32 = 0, Fp32 = 1 };

inline const char* gemm_math_name(GemmMath m) { return m == GemmMath::Tf32 ? "tf32" : "fp32"; }

}  // namespace spdfq::cuda
