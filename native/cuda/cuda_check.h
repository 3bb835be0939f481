// Every CUDA runtime call goes through CUDA_CHECK, every kernel launch is followed by
// CUDA_CHECK_LAUNCH: a failure throws spdfq::Error naming the call and file:line (the
// binding turns it into a JavaScript exception). Nothing here aborts or exits.
//
// Codes: out-of-memory errors are E_MEMORY; everything else is E_CUDA. Errors after which
// the CUDA context cannot be used again (an illegal address in a kernel, a launch failure)
// say so, since every later call in the process fails the same way.
#pragma once

#include <cuda_runtime.h>

#include <cstring>
#include <string>

#include "../core/errors.h"

namespace spdfq::cuda {

// The path from "native/" on, so messages read the same whatever the build directory.
inline const char* short_path(const char* file) {
  const char* p = std::strstr(file, "native/");
  return p ? p : file;
}

inline bool is_sticky(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
      return true;
    default:
      return false;
  }
}

[[noreturn]] inline void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line) {
  std::string msg = std::string("CUDA error in ") + call + " at " + short_path(file) + ":" + std::to_string(line) +
                    ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
  if (is_sticky(e)) msg += "; the CUDA context is unusable until the process restarts";
  // Clear the (non-sticky) error so that the next call does not report it again.
  (void)cudaGetLastError();
  throw Error(e == cudaErrorMemoryAllocation ? "E_MEMORY" : "E_CUDA", msg);
}

}  // namespace spdfq::cuda

#define CUDA_CHECK(call)                                                                  \
  do {                                                                                    \
    const cudaError_t spdfq_cuda_err_ = (call);                                           \
    if (spdfq_cuda_err_ != cudaSuccess)                                                   \
      ::spdfq::cuda::throw_cuda_error(spdfq_cuda_err_, #call, __FILE__, __LINE__);        \
  } while (0)

// After a <<<...>>> launch: reports configuration errors (bad grid, too much shared
// memory) at once; faults inside the kernel surface at the next synchronizing call.
#define CUDA_CHECK_LAUNCH(kernel_name)                                                    \
  do {                                                                                    \
    const cudaError_t spdfq_cuda_err_ = cudaGetLastError();                               \
    if (spdfq_cuda_err_ != cudaSuccess)                                                   \
      ::spdfq::cuda::throw_cuda_error(spdfq_cuda_err_, "launch of " kernel_name, __FILE__, __LINE__); \
  } while (0)
