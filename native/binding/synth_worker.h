// The JavaScript side of data-free image synthesis (native/synth): the long loop as an
// AsyncProgressQueueWorker with a Promise, progress callbacks and a cancel function, the
// objective at given images (for gradient checks), the plan, and the kernel-level entry
// points the tests check in isolation. The TypeScript layer (lib/synth) validates and
// fills every option first; here each field is re-read strictly (TypeError/RangeError
// naming the field) into a plain synth::SynthConfig before any work is queued.
#pragma once

#include <napi.h>

#include "../core/vit_config.h"
#include "../synth/synth_config.h"

namespace spdfq::binding {

// Adds synthesize, synthObjective, synthPlan and synthKernels to the module's exports.
void registerSynth(Napi::Env env, Napi::Object exports);

// The kernel entry points (synth_kernels.cc), as an object of functions.
Napi::Object synth_kernels(Napi::Env env);

// Reads the plain config object lib/synth/native-synth.ts builds (every field present).
synth::SynthConfig parse_synth_config(const Napi::Object& o);

}  // namespace spdfq::binding
