// Checks on every tensor and number that crosses from JavaScript (the TypeScript layer
// validates first; this is the second line, as in onnxruntime's binding): a TypeError or
// RangeError naming the argument, the expected and the received value.
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

namespace spdfq::binding {

inline Napi::Float32Array float32_arg(const Napi::CallbackInfo& info, size_t i, const char* name,
                                      int64_t expected_length) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(env, std::string(name) + ": expected a Float32Array");
  }
  Napi::Float32Array a = info[i].As<Napi::Float32Array>();
  if (expected_length >= 0 && int64_t(a.ElementLength()) != expected_length) {
    throw Napi::RangeError::New(env, std::string(name) + ": expected " + std::to_string(expected_length) +
                                         " floats, received " + std::to_string(a.ElementLength()));
  }
  return a;
}

// A new Float32Array holding a copy of n floats (results never alias engine memory, which
// the next pass overwrites).
inline Napi::Float32Array copy_floats(Napi::Env env, const float* src, int64_t n) {
  Napi::Float32Array a = Napi::Float32Array::New(env, size_t(n));
  std::memcpy(a.Data(), src, size_t(n) * sizeof(float));
  return a;
}

// Copies argument i, a Float32Array of exactly n floats, into dst: the flat parameter
// arena's setter (setParams) of every model class.
inline void copy_float32_arg(const Napi::CallbackInfo& info, size_t i, const char* name, float* dst, int64_t n) {
  Napi::Float32Array a = float32_arg(info, i, name, n);
  std::memcpy(dst, a.Data(), size_t(n) * sizeof(float));
}

inline int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsNumber())
    throw Napi::TypeError::New(env, std::string(name) + ": expected an integer");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v == std::floor(v)) || v < double(lo) || v > double(hi))
    throw Napi::RangeError::New(env, std::string(name) + ": expected an integer in [" + std::to_string(lo) + ", " +
                                         std::to_string(hi) + "], received " + std::to_string(v));
  return int64_t(v);
}

inline bool bool_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsBoolean())
    throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

// Error with a `code` property matching lib/errors.ts.
inline Napi::Error coded_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Value().Set("code", Napi::String::New(env, code));
  return e;
}

}  // namespace spdfq::binding
