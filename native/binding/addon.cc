// Module entry of spdfq_native.node: the VitModel and SwinModel classes plus the kernel-level functions
// the tests and the benchmark call directly (GEMM variants, cross-entropy, element-wise
// math), so every kernel is testable against its reference from JavaScript.
#include <napi.h>

#include <chrono>
#include <string>

#include "../core/errors.h"
#include "../core/fast_math.h"
#include "../cpu/cpu_features.h"
#include "../cpu/gemm.h"
#include "../cpu/ops.h"
#include "tensor_args.h"
#include "swin_model_wrap.h"
#include "vit_model_wrap.h"
#include "synth_worker.h"

namespace spdfq::binding {

void register_quant(Napi::Env env, Napi::Object exports);     // quant_binding.cc
void register_row_kernels(Napi::Env env, Napi::Object exports);  // row_kernels_binding.cc
void register_backends(Napi::Env env, Napi::Object exports);  // backends.cc

namespace {

cpu::GemmVariant parse_variant(Napi::Env env, const std::string& s) {
  if (s == "ref") return cpu::GemmVariant::Ref;
  if (s == "avx2") return cpu::GemmVariant::Avx2;
  if (s == "avx512") return cpu::GemmVariant::Avx512;
  if (s == "auto") return cpu::GemmVariant::Auto;
  throw Napi::RangeError::New(env, "gemm variant: expected 'ref', 'avx2', 'avx512' or 'auto', received '" + s + "'");
}

Napi::Value CpuFeaturesJs(const Napi::CallbackInfo& info) {
  const auto& f = cpu::cpu_features();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("avx2", f.avx2_fma);
  o.Set("avx512", f.avx512f);
  o.Set("avx512vnni", f.avx512_vnni);
  o.Set("avxvnni", f.avx_vnni);
  // The variant gemm(Auto) runs on this CPU.
  const cpu::GemmVariant best = cpu::gemm_variant_supported(cpu::GemmVariant::Avx512) ? cpu::GemmVariant::Avx512
                                : cpu::gemm_variant_supported(cpu::GemmVariant::Avx2)   ? cpu::GemmVariant::Avx2
                                                                                        : cpu::GemmVariant::Ref;
  o.Set("gemm", cpu::gemm_variant_name(best));
  return o;
}

// gemm(variant, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, repeats?) → seconds of the best repeat.
// Synchronous: only tests and the benchmark call it, on matrices they own.
Napi::Value GemmJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "variant: expected a string");
  const auto v = parse_variant(env, info[0].As<Napi::String>().Utf8Value());
  if (v != cpu::GemmVariant::Auto && !cpu::gemm_variant_supported(v))
    throw coded_error(env, "E_NATIVE", std::string("this CPU cannot run the ") + cpu::gemm_variant_name(v) + " GEMM");
  cpu::GemmArgs g;
  g.transA = bool_arg(info, 1, "transA");
  g.transB = bool_arg(info, 2, "transB");
  const int64_t lim = int64_t(1) << 30;
  g.M = int(int_arg(info, 3, "M", 0, lim));
  g.N = int(int_arg(info, 4, "N", 0, lim));
  g.K = int(int_arg(info, 5, "K", 0, lim));
  if (!info[6].IsNumber()) throw Napi::TypeError::New(env, "alpha: expected a number");
  g.alpha = info[6].As<Napi::Number>().FloatValue();
  g.lda = int(int_arg(info, 8, "lda", 1, lim));
  g.ldb = int(int_arg(info, 10, "ldb", 1, lim));
  if (!info[11].IsNumber()) throw Napi::TypeError::New(env, "beta: expected a number");
  g.beta = info[11].As<Napi::Number>().FloatValue();
  g.ldc = int(int_arg(info, 13, "ldc", 1, lim));
  const int64_t a_rows = g.transA ? g.K : g.M, a_cols = g.transA ? g.M : g.K;
  const int64_t b_rows = g.transB ? g.N : g.K, b_cols = g.transB ? g.K : g.N;
  if (g.lda < a_cols || g.ldb < b_cols || g.ldc < g.N)
    throw Napi::RangeError::New(env, "gemm: a leading dimension is smaller than its row length");
  auto need = [](int64_t rows, int64_t cols, int64_t ld) { return rows == 0 ? 0 : (rows - 1) * ld + cols; };
  Napi::Float32Array A = float32_arg(info, 7, "A", -1);
  Napi::Float32Array B = float32_arg(info, 9, "B", -1);
  Napi::Float32Array C = float32_arg(info, 12, "C", -1);
  if (int64_t(A.ElementLength()) < need(a_rows, a_cols, g.lda) ||
      int64_t(B.ElementLength()) < need(b_rows, b_cols, g.ldb) ||
      int64_t(C.ElementLength()) < need(g.M, g.N, g.ldc))
    throw Napi::RangeError::New(env, "gemm: an operand is shorter than its dimensions and leading dimension require");
  g.A = A.Data();
  g.B = B.Data();
  g.C = C.Data();
  const int repeats = info.Length() > 14 ? int(int_arg(info, 14, "repeats", 1, 1000)) : 1;
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    cpu::gemm(g, v);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = s < best ? s : best;
  }
  return Napi::Number::New(env, best);
}

// crossEntropy(logits, targets, B, K, soft) → { loss, dlogits }; hard targets hold class indices.
Napi::Value CrossEntropyJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int B = int(int_arg(info, 2, "batch", 1, 1 << 24));
  const int K = int(int_arg(info, 3, "classes", 1, 1 << 24));
  const bool soft = bool_arg(info, 4, "soft");
  Napi::Float32Array logits = float32_arg(info, 0, "logits", int64_t(B) * K);
  Napi::Float32Array dl = Napi::Float32Array::New(env, size_t(B) * K);
  double loss;
  if (soft) {
    Napi::Float32Array t = float32_arg(info, 1, "targets", int64_t(B) * K);
    loss = cpu::cross_entropy_soft(dl.Data(), logits.Data(), t.Data(), B, K);
  } else {
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      throw Napi::TypeError::New(env, "labels: expected an Int32Array");
    Napi::Int32Array y = info[1].As<Napi::Int32Array>();
    if (int64_t(y.ElementLength()) != B)
      throw Napi::RangeError::New(env, "labels: expected " + std::to_string(B) + " entries");
    for (int b = 0; b < B; ++b)
      if (y[b] < 0 || y[b] >= K)
        throw Napi::RangeError::New(env, "labels[" + std::to_string(b) + "]: expected a class in [0, " +
                                             std::to_string(K - 1) + "], received " + std::to_string(y[b]));
    loss = cpu::cross_entropy_hard(dl.Data(), logits.Data(), y.Data(), B, K);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", loss);
  o.Set("dlogits", dl);
  return o;
}

// elementwise(fn, x) → Float32Array: the shared element-wise math, for accuracy tests.
Napi::Value ElementwiseJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "fn: expected a string");
  const std::string fn = info[0].As<Napi::String>().Utf8Value();
  Napi::Float32Array x = float32_arg(info, 1, "x", -1);
  Napi::Float32Array y = Napi::Float32Array::New(env, x.ElementLength());
  float (*f)(float) = nullptr;
  if (fn == "exp") f = fast_exp;
  else if (fn == "erf") f = fast_erf;
  else if (fn == "tanh") f = fast_tanh;
  else if (fn == "gelu_erf") f = gelu_erf;
  else if (fn == "gelu_erf_grad") f = gelu_erf_grad;
  else if (fn == "gelu_tanh") f = gelu_tanh;
  else if (fn == "gelu_tanh_grad") f = gelu_tanh_grad;
  else if (fn == "quick_gelu") f = quick_gelu;
  else if (fn == "quick_gelu_grad") f = quick_gelu_grad;
  else if (fn == "silu") f = silu;
  else if (fn == "silu_grad") f = silu_grad;
  else if (fn == "relu") f = relu;
  else if (fn == "relu_grad") f = relu_grad;
  else throw Napi::RangeError::New(env, "fn: unknown element-wise function '" + fn + "'");
  for (size_t i = 0; i < x.ElementLength(); ++i) y[i] = f(x[i]);
  return y;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("VitModel", VitModelWrap::Define(env));
  exports.Set("cpuFeatures", Napi::Function::New(env, CpuFeaturesJs));
  exports.Set("gemm", Napi::Function::New(env, GemmJs));
  exports.Set("crossEntropy", Napi::Function::New(env, CrossEntropyJs));
  exports.Set("elementwise", Napi::Function::New(env, ElementwiseJs));
  register_swin(env, exports);
  register_backends(env, exports);
  register_quant(env, exports);
  register_row_kernels(env, exports);
  registerSynth(env, exports);
  return exports;
}

}  // namespace spdfq::binding

static Napi::Object InitSpdfqNative(Napi::Env env, Napi::Object exports) { return spdfq::binding::Init(env, exports); }

NODE_API_MODULE(spdfq_native, InitSpdfqNative)
