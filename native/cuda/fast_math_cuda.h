// Includes core/fast_math.h (and so core/quantizer.h's math) for CUDA translation units.
//
// fast_math.h picks __int_as_float under `#if defined(__CUDACC__)`, which is also true in
// nvcc's host pass, where __int_as_float (device-only) cannot be called from the
// __host__ __device__ fast_exp: nvcc rejects the file. The proper fix is one line in
// fast_math.h (`#if defined(__CUDA_ARCH__)`); until it lands, this header maps the name to
// a __host__ __device__ equivalent while fast_math.h is read. Harmless after the fix.
// Every CUDA file includes this before ops.h, fast_math.h or quantizer.h.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

namespace spdfq::cuda {
__host__ __device__ __forceinline__ float bits_to_float(int32_t b) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(b);
#else
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
#endif
}
}  // namespace spdfq::cuda

#define __int_as_float ::spdfq::cuda::bits_to_float
#include "../core/fast_math.h"
#undef __int_as_float
