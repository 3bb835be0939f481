// The CUDA device as the engine sees it: which devices exist, a guard that makes one
// current for the calling thread (the binding runs passes on libuv worker threads, and the
// current device is per thread), and device memory as RAII buffers whose allocation
// failure is a clear E_MEMORY message (bytes asked, bytes free, what for).
//
// Plain C++ (no CUDA headers): the binding includes it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace spdfq::cuda {

// Number of usable CUDA devices; 0 (with the reason in *why) when there is no driver or
// no device. Never throws.
int device_count(std::string* why = nullptr);
// What the driver reports about one device (for cudaDevices() in JavaScript).
struct DeviceInfo {
  int index = 0;
  std::string name;           // "NVIDIA H200"
  int major = 0, minor = 0;   // compute capability; the backend needs major >= 8
  int64_t memory_bytes = 0;   // total global memory
  int multiprocessors = 0;
};
// Every device the driver reports, usable or not; empty with the reason in *why when there
// is none (no driver, no device, or a driver error). Never throws.
std::vector<DeviceInfo> list_devices(std::string* why = nullptr);
// "NVIDIA H200 (sm_90, 132 SMs, 140 GiB)" for device `index`; throws E_CUDA when it does not exist.
std::string device_description(int index);
// Throws E_CONFIG when `index` is not a usable device (the message lists what exists).
void require_device(int index);

// Makes `index` current for this thread for the guard's lifetime; restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

struct MemInfo {
  int64_t free_bytes = 0, total_bytes = 0;
};
MemInfo mem_info();  // of the current device

// One cudaMalloc, freed on destruction (on the device current when it was made).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  // Throws E_MEMORY: "CUDA out of memory: <what> needs X MiB, the device has Y MiB free of Z MiB".
  DeviceBuffer(int64_t bytes, const char* what);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return ptr_; }
  float* floats() const { return static_cast<float*>(ptr_); }
  int64_t bytes() const { return bytes_; }
  explicit operator bool() const { return ptr_ != nullptr; }
  void reset();

 private:
  void* ptr_ = nullptr;
  int64_t bytes_ = 0;
  int device_ = -1;
};

// Bump planner over one buffer (as the CPU arena): with base == nullptr it only counts.
// Every piece starts on a 256-byte boundary (what cudaMalloc itself guarantees).
struct DeviceBump {
  char* base = nullptr;
  int64_t used = 0;
  template <class T>
  T* take(int64_t count) {
    T* p = base ? reinterpret_cast<T*>(base + used) : nullptr;
    used += (count * int64_t(sizeof(T)) + 255) / 256 * 256;
    return p;
  }
  float* floats(int64_t n) { return take<float>(n); }
};

}  // namespace spdfq::cuda
