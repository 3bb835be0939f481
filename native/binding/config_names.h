// The JavaScript names of the engine's enum values (lib/vit-config.ts), for every reader
// of a config or of a kernel argument that names one.
#pragma once

#include <utility>

#include "../core/vit_config.h"

namespace spdfq::binding {

inline constexpr std::pair<const char*, Activation> kActivationNames[] = {
    {"gelu", Activation::GeluErf}, {"gelu-tanh", Activation::GeluTanh}, {"quick-gelu", Activation::QuickGelu},
    {"relu", Activation::Relu},    {"silu", Activation::Silu},
};

}  // namespace spdfq::binding
