// What this build and this machine can run on: backends() lists the engines compiled into
// the addon ('cpu', and 'cuda' when built with SPDFQ_WITH_CUDA); cudaDevices() lists the
// CUDA devices the driver reports, or none with the reason (no driver, no device, a
// driver too old for the runtime the addon was built with). Neither ever throws: a
// machine without a GPU or driver is an answer here, not an error.
#include <napi.h>

#include <string>
#include <vector>

#ifdef SPDFQ_WITH_CUDA
#include "../cuda/device.h"
#endif

namespace spdfq::binding {

namespace {

Napi::Value Backends(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env());
  a.Set(uint32_t(0), "cpu");
#ifdef SPDFQ_WITH_CUDA
  a.Set(uint32_t(1), "cuda");
#endif
  return a;
}

// cudaDevices() → { count, devices: [{ index, name, computeCapability: 'M.m', memoryBytes,
//   multiprocessors, usable }], reason } — reason is '' when at least one device is usable.
Napi::Value CudaDevices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  Napi::Array list = Napi::Array::New(env);
  std::string reason;
  int usable = 0;
#ifdef SPDFQ_WITH_CUDA
  const std::vector<cuda::DeviceInfo> devices = cuda::list_devices(&reason);
  for (const auto& d : devices) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", d.index);
    o.Set("name", d.name);
    o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    o.Set("memoryBytes", double(d.memory_bytes));
    o.Set("multiprocessors", d.multiprocessors);
    // The backend's kernels need sm_80 (cuda/device.cu's require_device says the same).
    const bool ok = d.major >= 8;
    o.Set("usable", ok);
    usable += ok ? 1 : 0;
    list.Set(list.Length(), o);
  }
  if (!devices.empty() && usable == 0) reason = "no CUDA device is sm_80 or newer, which the CUDA backend needs";
  if (usable > 0) reason.clear();
#else
  reason = "this build of spdfq-native has no CUDA backend (compiled without the CUDA toolkit)";
#endif
  out.Set("count", usable);
  out.Set("devices", list);
  out.Set("reason", reason);
  return out;
}

}  // namespace

void register_backends(Napi::Env env, Napi::Object exports) {
  exports.Set("backends", Napi::Function::New(env, Backends));
  exports.Set("cudaDevices", Napi::Function::New(env, CudaDevices));
}

}  // namespace spdfq::binding
