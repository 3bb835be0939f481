// Quantizer arithmetic shared by the pipeline and the export, in float32 as the engine
// computes it: round half to even (ONNX QuantizeLinear's rounding, and the engine's), and
// the uniform quantizer of a range.

import type { TensorQuantizer } from '../native';

export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Uniform quantizer over [lo, hi] (widened to include 0), as native uniform_from_range /
 *  symmetric_from_absmax compute it, in float32. */
export function uniformFromRange(lo0: number, hi0: number, bits: number, symmetric: boolean): TensorQuantizer {
  const f = Math.fround;
  if (symmetric) {
    const half = 2 ** (bits - 1) - 1;
    const scale = f(Math.max(Math.abs(lo0), Math.abs(hi0)) / half);
    return { kind: 'uniform', bits, scale, zero: 0, qmin: -half, qmax: half };
  }
  const lo = Math.min(f(lo0), 0);
  const hi = Math.max(f(hi0), 0);
  const levels = 2 ** bits - 1;
  const scale = f((hi - lo) / levels);
  const zero = Math.min(Math.max(roundHalfEven(f(0 - f(lo / scale))), 0), levels);
  return { kind: 'uniform', bits, scale, zero, qmin: 0, qmax: levels };
}
