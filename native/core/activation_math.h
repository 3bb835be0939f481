// The MLP activations (VitConfig::activation) as compile-time choices over core/fast_math.h,
// so each backend's loop or kernel is instantiated once per kind with no branch inside.
#pragma once

#include <type_traits>
#include <utility>

#include "fast_math.h"
#include "vit_config.h"

namespace spdfq {

template <Activation A>
SPDFQ_HD float activate(float x) {
  if constexpr (A == Activation::GeluErf) return gelu_erf(x);
  else if constexpr (A == Activation::GeluTanh) return gelu_tanh(x);
  else if constexpr (A == Activation::QuickGelu) return quick_gelu(x);
  else if constexpr (A == Activation::Relu) return relu(x);
  else return silu(x);
}

// d activate / dx at x.
template <Activation A>
SPDFQ_HD float activate_grad(float x) {
  if constexpr (A == Activation::GeluErf) return gelu_erf_grad(x);
  else if constexpr (A == Activation::GeluTanh) return gelu_tanh_grad(x);
  else if constexpr (A == Activation::QuickGelu) return quick_gelu_grad(x);
  else if constexpr (A == Activation::Relu) return relu_grad(x);
  else return silu_grad(x);
}

template <Activation A>
using ActivationTag = std::integral_constant<Activation, A>;

// Calls f(ActivationTag<a>{}): the runtime kind turned into a template argument
// (inside f: `constexpr Activation A = decltype(tag)::value;`).
template <class F>
void with_activation(Activation a, F&& f) {
  switch (a) {
    case Activation::GeluErf: f(ActivationTag<Activation::GeluErf>{}); break;
    case Activation::GeluTanh: f(ActivationTag<Activation::GeluTanh>{}); break;
    case Activation::QuickGelu: f(ActivationTag<Activation::QuickGelu>{}); break;
    case Activation::Relu: f(ActivationTag<Activation::Relu>{}); break;
    case Activation::Silu: f(ActivationTag<Activation::Silu>{}); break;
  }
}

}  // namespace spdfq
