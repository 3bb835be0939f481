// rowKernel(isa, op, ...): each instruction-set build of the row kernels (softmax, its
// backward, LayerNorm forward/backward, the MLP activations and their gradients; native/cpu/row_kernels.h)
// callable from JavaScript, so the tests check every table this CPU can run — not only
// the one the engine picks — against double-precision formulas of their own.
#include <napi.h>

#include <string>

#include "../cpu/cpu_features.h"
#include "../cpu/row_kernels.h"
#include "config_names.h"
#include "js_object.h"
#include "tensor_args.h"

namespace spdfq::binding {

namespace {

const cpu::RowKernels& table_for(Napi::Env env, const std::string& isa) {
  const auto& f = cpu::cpu_features();
  if (isa == "generic") return cpu::rows_generic::kTable;
  if (isa == "avx2") {
    if (!f.avx2_fma) throw coded_error(env, "E_NATIVE", "this CPU cannot run the avx2 row kernels");
    return cpu::rows_avx2::kTable;
  }
  if (isa == "avx512") {
    if (!f.avx512f) throw coded_error(env, "E_NATIVE", "this CPU cannot run the avx512 row kernels");
    return cpu::rows_avx512::kTable;
  }
  if (isa == "auto") return cpu::row_kernels();
  throw Napi::RangeError::New(env, "isa: expected 'generic', 'avx2', 'avx512' or 'auto', received '" + isa + "'");
}

Activation activation_arg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), "kind: expected a string");
  return JsObject::choose<Activation>(info[i].As<Napi::String>().Utf8Value(), kActivationNames, "kind", info.Env());
}

Napi::Float32Array copy_of(Napi::Env env, const Napi::Float32Array& a) {
  Napi::Float32Array out = Napi::Float32Array::New(env, a.ElementLength());
  for (size_t i = 0; i < a.ElementLength(); ++i) out[i] = a[i];
  return out;
}

// rowKernel(isa, 'softmax', x, rows, n) → softmax of each row
// rowKernel(isa, 'softmax_backward', d, p, rows, n) → p ⊙ (d − Σ p·d) per row
// rowKernel(isa, 'layernorm', x, w, b, rows, D, eps) → { y, mean, rstd }
// rowKernel(isa, 'layernorm_backward', g, x, w, mean, rstd, rows, D) → dx (from zero)
// rowKernel(isa, 'activation' | 'activation_grad', x[, dout], kind[, accumulate]) → f(x) | dout·f'(x),
//   kind as VitConfig.activation ('gelu', 'gelu-tanh', 'quick-gelu', 'relu', 'silu')
// Also returns the table's name as `isa` on the result object for 'name'.
Napi::Value RowKernelJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString()) throw Napi::TypeError::New(env, "isa, op: expected strings");
  const cpu::RowKernels& k = table_for(env, info[0].As<Napi::String>().Utf8Value());
  const std::string op = info[1].As<Napi::String>().Utf8Value();
  const int64_t lim = int64_t(1) << 26;
  if (op == "name") return Napi::String::New(env, k.name);
  if (op == "softmax") {
    const int rows = int(int_arg(info, 3, "rows", 0, lim)), n = int(int_arg(info, 4, "n", 1, lim));
    Napi::Float32Array y = copy_of(env, float32_arg(info, 2, "x", int64_t(rows) * n));
    k.softmax_rows(y.Data(), rows, n);
    return y;
  }
  if (op == "softmax_backward") {
    const int rows = int(int_arg(info, 4, "rows", 0, lim)), n = int(int_arg(info, 5, "n", 1, lim));
    Napi::Float32Array d = copy_of(env, float32_arg(info, 2, "d", int64_t(rows) * n));
    Napi::Float32Array p = float32_arg(info, 3, "p", int64_t(rows) * n);
    k.softmax_backward_rows(d.Data(), p.Data(), rows, n);
    return d;
  }
  if (op == "layernorm") {
    const int64_t rows = int_arg(info, 5, "rows", 0, lim);
    const int D = int(int_arg(info, 6, "D", 1, lim));
    if (!info[7].IsNumber()) throw Napi::TypeError::New(env, "eps: expected a number");
    Napi::Float32Array x = float32_arg(info, 2, "x", rows * D);
    Napi::Float32Array w = float32_arg(info, 3, "w", D);
    Napi::Float32Array b = float32_arg(info, 4, "b", D);
    Napi::Float32Array y = Napi::Float32Array::New(env, size_t(rows * D));
    Napi::Float32Array mean = Napi::Float32Array::New(env, size_t(rows));
    Napi::Float32Array rstd = Napi::Float32Array::New(env, size_t(rows));
    k.layernorm_rows(y.Data(), mean.Data(), rstd.Data(), x.Data(), w.Data(), b.Data(), rows, D,
                     info[7].As<Napi::Number>().FloatValue());
    Napi::Object o = Napi::Object::New(env);
    o.Set("y", y);
    o.Set("mean", mean);
    o.Set("rstd", rstd);
    return o;
  }
  if (op == "layernorm_backward") {
    const int64_t rows = int_arg(info, 7, "rows", 0, lim);
    const int D = int(int_arg(info, 8, "D", 1, lim));
    Napi::Float32Array g = float32_arg(info, 2, "g", rows * D);
    Napi::Float32Array x = float32_arg(info, 3, "x", rows * D);
    Napi::Float32Array w = float32_arg(info, 4, "w", D);
    Napi::Float32Array mean = float32_arg(info, 5, "mean", rows);
    Napi::Float32Array rstd = float32_arg(info, 6, "rstd", rows);
    Napi::Float32Array dx = Napi::Float32Array::New(env, size_t(rows * D));  // zero-filled
    k.layernorm_backward_rows(dx.Data(), g.Data(), x.Data(), w.Data(), mean.Data(), rstd.Data(), rows, D);
    return dx;
  }
  if (op == "activation") {
    Napi::Float32Array x = float32_arg(info, 2, "x", -1);
    Napi::Float32Array y = Napi::Float32Array::New(env, x.ElementLength());
    k.activation(y.Data(), x.Data(), 0, int64_t(x.ElementLength()), activation_arg(info, 3));
    return y;
  }
  if (op == "activation_grad") {
    Napi::Float32Array x = float32_arg(info, 2, "x", -1);
    Napi::Float32Array dout = float32_arg(info, 3, "dout", int64_t(x.ElementLength()));
    Napi::Float32Array dx = Napi::Float32Array::New(env, x.ElementLength());
    // Accumulating into zeros, or overwriting a buffer of garbage: both must give dout·f'(x).
    const bool accumulate = info.Length() > 5 ? bool_arg(info, 5, "accumulate") : true;
    if (!accumulate)
      for (size_t i = 0; i < dx.ElementLength(); ++i) dx[i] = 1e30f;
    k.activation_grad(dx.Data(), dout.Data(), x.Data(), 0, int64_t(x.ElementLength()), activation_arg(info, 4),
                      accumulate);
    return dx;
  }
  throw Napi::RangeError::New(env, "op: expected softmax, softmax_backward, layernorm, layernorm_backward, "
                                   "activation, activation_grad or name, received '" + op + "'");
}

}  // namespace

void register_row_kernels(Napi::Env env, Napi::Object exports) {
  exports.Set("rowKernel", Napi::Function::New(env, RowKernelJs));
}

}  // namespace spdfq::binding
