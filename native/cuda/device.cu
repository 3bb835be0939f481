#include "device.h"

#include <cuda_runtime.h>

#include "cuda_check.h"

namespace spdfq::cuda {

namespace {
std::string mib(int64_t bytes) { return std::to_string((bytes + (int64_t(1) << 20) - 1) >> 20) + " MiB"; }
}  // namespace

int device_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why) {
      *why = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
      if (e == cudaErrorInsufficientDriver)  // also what a machine without any NVIDIA driver reports
        *why += " (no NVIDIA driver is loaded, or it is older than the CUDA " + std::to_string(CUDART_VERSION / 1000) +
                "." + std::to_string(CUDART_VERSION % 1000 / 10) + " runtime this addon was built with)";
    }
    (void)cudaGetLastError();
    return 0;
  }
  if (n == 0 && why) *why = "the CUDA driver reports no devices";
  return n;
}

std::vector<DeviceInfo> list_devices(std::string* why) {
  std::vector<DeviceInfo> out;
  const int n = device_count(why);
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p{};
    const cudaError_t e = cudaGetDeviceProperties(&p, i);
    if (e != cudaSuccess) {
      if (why) *why = "cudaGetDeviceProperties(" + std::to_string(i) + "): " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
      (void)cudaGetLastError();
      return {};
    }
    DeviceInfo d;
    d.index = i;
    d.name = p.name;
    d.major = p.major;
    d.minor = p.minor;
    d.memory_bytes = int64_t(p.totalGlobalMem);
    d.multiprocessors = p.multiProcessorCount;
    out.push_back(std::move(d));
  }
  return out;
}

std::string device_description(int index) {
  cudaDeviceProp p{};
  CUDA_CHECK(cudaGetDeviceProperties(&p, index));
  return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
         std::to_string(p.multiProcessorCount) + " SMs, " + std::to_string(int64_t(p.totalGlobalMem) >> 30) + " GiB)";
}

void require_device(int index) {
  std::string why;
  const int n = device_count(&why);
  if (n == 0) fail("E_CONFIG", "device 'cuda:" + std::to_string(index) + "': no CUDA device is usable (" + why + ")");
  if (index < 0 || index >= n)
    fail("E_CONFIG", "device 'cuda:" + std::to_string(index) + "': this machine has " + std::to_string(n) +
                         " CUDA device(s), cuda:0 to cuda:" + std::to_string(n - 1));
  cudaDeviceProp p{};
  CUDA_CHECK(cudaGetDeviceProperties(&p, index));
  if (p.major < 8)
    fail("E_CONFIG", "device 'cuda:" + std::to_string(index) + "' (" + p.name + ", sm_" + std::to_string(p.major) +
                         std::to_string(p.minor) + ") is older than sm_80, which the CUDA backend needs");
}

DeviceGuard::DeviceGuard(int index) {
  CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != index) CUDA_CHECK(cudaSetDevice(index));
}

DeviceGuard::~DeviceGuard() {
  int now = -1;
  if (cudaGetDevice(&now) == cudaSuccess && now != previous_ && previous_ >= 0) (void)cudaSetDevice(previous_);
}

MemInfo mem_info() {
  size_t f = 0, t = 0;
  CUDA_CHECK(cudaMemGetInfo(&f, &t));
  return MemInfo{int64_t(f), int64_t(t)};
}

DeviceBuffer::DeviceBuffer(int64_t bytes, const char* what) {
  if (bytes <= 0) bytes = 256;
  CUDA_CHECK(cudaGetDevice(&device_));
  const cudaError_t e = cudaMalloc(&ptr_, size_t(bytes));
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    ptr_ = nullptr;
    size_t f = 0, t = 0;
    std::string have = cudaMemGetInfo(&f, &t) == cudaSuccess
                           ? ", the device has " + mib(int64_t(f)) + " free of " + mib(int64_t(t))
                           : std::string();
    fail("E_MEMORY", std::string("CUDA out of memory: ") + what + " needs " + mib(bytes) + " on cuda:" +
                         std::to_string(device_) + have);
  }
  if (e != cudaSuccess) {
    ptr_ = nullptr;
    throw_cuda_error(e, "cudaMalloc", __FILE__, __LINE__);
  }
  bytes_ = bytes;
}

void DeviceBuffer::reset() {
  if (ptr_) {
    int now = -1;
    const bool switch_device = cudaGetDevice(&now) == cudaSuccess && now != device_;
    if (switch_device) (void)cudaSetDevice(device_);
    (void)cudaFree(ptr_);  // a destructor must not throw; a failed free leaks at worst
    if (switch_device) (void)cudaSetDevice(now);
  }
  ptr_ = nullptr;
  bytes_ = 0;
}

DeviceBuffer::~DeviceBuffer() { reset(); }

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_), device_(o.device_) {
  o.ptr_ = nullptr;
  o.bytes_ = 0;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    device_ = o.device_;
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

}  // namespace spdfq::cuda
