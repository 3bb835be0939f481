// Seeded random numbers for tests (mulberry32): the same seed gives the same tensors on
// every machine, so a failing case can be replayed.

import { mulberry32 } from '../../lib/synth/random';

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randn(n: number, rand: () => number, std = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rand() || 1e-12;
    out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  }
  return out;
}

/** `n` images of `length` standard normal floats from the library's mulberry32(seed), both Box–Muller
 *  outputs of each pair used (the Swin export tests' calibration and test images). */
export function gaussianImages(n: number, length: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(n * length);
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand())), t = 2 * Math.PI * rand();
    out[i] = r * Math.cos(t);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(t);
  }
  return out;
}
