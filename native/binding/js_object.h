// Reading plain-data objects that cross from JavaScript (the model config, the synthesis
// config, quantizers, reconstruction settings): one strict reader for every field kind.
// The TypeScript layer validates and fills every field first (the defaults live there,
// lib/synth/options.ts and lib/quant/quant-config.ts), so a missing or mistyped field is a
// bug on that side and is reported by its path: "<what>.<key>: expected …, received …".
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace spdfq::binding {

class JsObject {
 public:
  // `what` names the object in messages ("synth config", "config", "quantizer").
  JsObject(const Napi::Value& v, std::string what) : what_(std::move(what)) {
    if (!v.IsObject() || v.IsArray()) throw Napi::TypeError::New(v.Env(), what_ + ": expected an object");
    o_ = v.As<Napi::Object>();
  }

  const Napi::Object& object() const { return o_; }
  bool has(const char* key) const { return !o_.Get(key).IsUndefined(); }
  Napi::Value get(const char* key) const { return o_.Get(key); }

  double number(const char* key) const {
    Napi::Value v = o_.Get(key);
    if (!v.IsNumber()) throw type_error(key, "a number", v);
    return v.As<Napi::Number>().DoubleValue();
  }
  int integer(const char* key) const {
    const double v = number(key);
    if (v != std::floor(v) || v < -2147483648.0 || v > 2147483647.0)
      throw Napi::RangeError::New(o_.Env(), path(key) + ": expected a 32-bit integer, received " + std::to_string(v));
    return int(v);
  }
  bool boolean(const char* key) const {
    Napi::Value v = o_.Get(key);
    if (!v.IsBoolean()) throw type_error(key, "a boolean", v);
    return v.As<Napi::Boolean>().Value();
  }
  std::string string(const char* key) const {
    Napi::Value v = o_.Get(key);
    if (!v.IsString()) throw type_error(key, "a string", v);
    return v.As<Napi::String>().Utf8Value();
  }
  template <class T>
  std::vector<T> numbers(const char* key) const {
    Napi::Value v = o_.Get(key);
    if (!v.IsArray()) throw type_error(key, "an array of numbers", v);
    Napi::Array a = v.As<Napi::Array>();
    std::vector<T> out(a.Length());
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value e = a.Get(i);
      if (!e.IsNumber()) throw type_error((std::string(key) + "[" + std::to_string(i) + "]").c_str(), "a number", e);
      out[i] = T(e.As<Napi::Number>().DoubleValue());
    }
    return out;
  }
  // One of the named values of an enum.
  template <class E>
  E choice(const char* key, std::initializer_list<std::pair<const char*, E>> options) const {
    return choose<E>(string(key), options, path(key), o_.Env());
  }
  // The same with a named table (an array of {name, value} pairs) shared with other readers.
  template <class E, size_t N>
  E choice(const char* key, const std::pair<const char*, E> (&options)[N]) const {
    return choose<E>(string(key), options, path(key), o_.Env());
  }
  // `s` looked up in `options`; a RangeError naming `what` and every option otherwise.
  template <class E, class Options>
  static E choose(const std::string& s, const Options& options, const std::string& what, Napi::Env env) {
    std::string names;
    for (const auto& p : options) {
      if (s == p.first) return p.second;
      names += std::string(names.empty() ? "" : ", ") + "'" + p.first + "'";
    }
    throw Napi::RangeError::New(env, what + ": expected one of " + names + ", received '" + s + "'");
  }
  JsObject child(const char* key) const { return JsObject(o_.Get(key), path(key)); }

 private:
  std::string path(const std::string& key) const { return what_ + "." + key; }
  Napi::TypeError type_error(const std::string& key, const char* expected, const Napi::Value& v) const {
    return Napi::TypeError::New(o_.Env(), path(key) + ": expected " + expected + ", received " + describe(v));
  }
  static std::string describe(const Napi::Value& v) {
    if (v.IsUndefined()) return "nothing";
    if (v.IsNull()) return "null";
    if (v.IsString()) return "'" + v.As<Napi::String>().Utf8Value() + "'";
    if (v.IsNumber()) return std::to_string(v.As<Napi::Number>().DoubleValue());
    if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? "true" : "false";
    if (v.IsArray()) return "an array";
    return "an object";
  }

  Napi::Object o_;
  std::string what_;
};

}  // namespace spdfq::binding
