// Quantizer math against independent TypeScript references: the ONNX
// QuantizeLinear/DequantizeLinear formulas, RepQ-ViT's log√2 quantizer, the percentile
// search by MSE, and the exactness of the LayerNorm reparameterization.

import { nativeAddon } from '../lib/native';
import { ChannelQuantizer, TensorQuantizer } from '../lib/native';
import { reparameterizeLayerNorm } from '../lib/quant/reparam';
import { randn, rng } from './helpers/random';

const addon = nativeAddon();

/** Round half to even, as ONNX QuantizeLinear specifies. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** ONNX: y = saturate(round(x / scale) + zp); x̂ = (y − zp)·scale, in float32 steps. */
function onnxQdq(x: number, q: TensorQuantizer): number {
  const f = Math.fround;
  const scale = f(q.scale); // the scale tensor is float32
  const y = Math.min(Math.max(roundHalfEven(f(x / scale)) + q.zero, q.qmin), q.qmax);
  return f(f(y - q.zero) * scale);
}

/** RepQ-ViT's log√2 quantizer (its official code's formula). */
function log2Ref(x: number, delta: number, bits: number): number {
  if (!(x > 0)) return 0;
  const q = roundHalfEven(-2 * Math.log2(x / delta));
  if (q >= 2 ** bits) return 0;
  const qc = Math.max(q, 0);
  return delta * 2 ** -Math.ceil(qc / 2) * (qc % 2 === 1 ? Math.SQRT2 : 1);
}

describe('fake quantization', () => {
  const r = rng(1);
  const x = randn(20000, r, 3);
  // exact ties land on .5 after division by the scale
  for (let i = 0; i < 200; i++) x[i] = (i - 100) * 0.25;
  test.each([
    [{ kind: 'uniform', bits: 8, scale: 0.05, zero: 128, qmin: 0, qmax: 255 }],
    [{ kind: 'uniform', bits: 4, scale: 0.5, zero: 7, qmin: 0, qmax: 15 }],
    [{ kind: 'uniform', bits: 8, scale: 0.03, zero: 0, qmin: -127, qmax: 127 }],
    [{ kind: 'uniform', bits: 3, scale: 0.5, zero: 2, qmin: 0, qmax: 7 }],
  ] as [TensorQuantizer][])('uniform %o equals the ONNX QDQ formula', (q) => {
    const y = addon.fakeQuant(x, q);
    x.forEach((v, i) => {
      const want = onnxQdq(v, q);
      if (y[i] !== want) throw new Error(`x=${v}: got ${y[i]}, ONNX formula gives ${want}`);
    });
  });
  test('log√2 equals RepQ-ViT’s formula', () => {
    const probs = new Float32Array(5000).map((_, i) => (i === 0 ? 0 : Math.fround(Math.exp(-r() * 20))));
    for (const bits of [3, 4, 8]) {
      const y = addon.fakeQuant(probs, { kind: 'log2', bits, scale: 0.9, zero: 0, qmin: 0, qmax: 2 ** bits - 1 });
      probs.forEach((v, i) => {
        const want = log2Ref(v, 0.9, bits);
        if (Math.abs(y[i] - want) > 1e-6 * Math.max(want, 1e-30)) throw new Error(`bits ${bits} x=${v}: got ${y[i]}, want ${want}`);
      });
    }
  });
});

describe('percentile search by MSE', () => {
  function quantile(sorted: Float64Array, p: number): number {
    const pos = p * (sorted.length - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, sorted.length - 1);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
  }
  function refSearch(x: Float32Array, bits: number, percentiles: number[]): TensorQuantizer {
    const sorted = Float64Array.from(x).sort();
    const levels = 2 ** bits - 1;
    const cands: [number, number][] = [[sorted[0], sorted[sorted.length - 1]], ...percentiles.map((p) => [quantile(sorted, 1 - p), quantile(sorted, p)] as [number, number])];
    let best: TensorQuantizer | null = null;
    let bestErr = Infinity;
    for (const [lo0, hi0] of cands) {
      const lo = Math.min(Math.fround(lo0), 0);
      const hi = Math.max(Math.fround(hi0), 0);
      const scale = Math.fround((hi - lo) / levels);
      const zero = Math.min(Math.max(roundHalfEven(Math.fround(-lo / scale)), 0), levels);
      const q: TensorQuantizer = { kind: 'uniform', bits, scale, zero, qmin: 0, qmax: levels };
      const y = addon.fakeQuant(x, q);
      let err = 0;
      x.forEach((v, i) => (err += (y[i] - v) ** 2));
      if (err / x.length < bestErr) {
        bestErr = err / x.length;
        best = q;
      }
    }
    return best!;
  }
  test.each([4, 8])('%i-bit per tensor on heavy-tailed data matches the TS reference', (bits) => {
    const r = rng(bits);
    const x = randn(30000, r).map((v) => (r() < 0.001 ? v * 40 : v) + 0.3);
    const got = addon.quantSearch(x, 1, x.length, -1, { kind: 'uniform', bits, symmetric: false, method: 'percentile', percentiles: [0.999, 0.9999, 0.99999] });
    const want = refSearch(x, bits, [0.999, 0.9999, 0.99999]);
    expect(got.zero).toBe(want.zero);
    expect(Math.abs(got.scale - want.scale) / want.scale).toBeLessThan(1e-5);
    // The outliers make MinMax a poor choice at 4 bits: the search must clip.
    if (bits === 4) expect(got.scale).toBeLessThan((Math.max(...x) - Math.min(...x)) / 15);
  });
  test('per channel: each row searched on its own', () => {
    const r = rng(9);
    const w = randn(6 * 50, r);
    for (let i = 0; i < 50; i++) w[3 * 50 + i] *= 10; // one wide channel
    const q = addon.quantSearch(w, 6, 50, 0, { kind: 'uniform', bits: 4, symmetric: false, method: 'minmax', percentiles: [] }) as ChannelQuantizer;
    expect(q.scales).toHaveLength(6);
    for (let c = 0; c < 6; c++) {
      const row = Array.from(w.subarray(c * 50, c * 50 + 50));
      const lo = Math.min(0, ...row);
      const hi = Math.max(0, ...row);
      expect(q.scales[c]).toBeCloseTo((hi - lo) / 15, 5);
    }
  });
  test('NaN in calibration data is a clear error', () => {
    const x = new Float32Array([1, 2, NaN]);
    expect(() => addon.quantSearch(x, 1, 3, -1, { kind: 'uniform', bits: 8, symmetric: false, method: 'minmax', percentiles: [] })).toThrow(/NaN or Inf/);
  });
});

describe('RepQ-ViT LayerNorm reparameterization', () => {
  test('per-tensor quantization after reparameterization gives the per-channel result exactly', () => {
    const r = rng(4);
    const D = 16;
    const O = 7;
    const rows = 40;
    const gamma = randn(D, r, 0.5).map((v) => v + 1);
    const beta = randn(D, r, 0.3);
    const W = randn(O * D, r, 0.3);
    const bias = randn(O, r, 0.1);
    // Normalized inputs x̂ (what LayerNorm produces before γ, β), with channel-dependent spread.
    const xhat = randn(rows * D, r);
    const ln = (g: Float32Array, b: Float32Array) => Float32Array.from(xhat, (v, i) => v * g[i % D] + b[i % D]);
    const x = ln(gamma, beta);
    const q = addon.quantSearch(x, rows, D, 1, { kind: 'uniform', bits: 4, symmetric: false, method: 'minmax', percentiles: [] }) as ChannelQuantizer;
    const rep = reparameterizeLayerNorm(q, gamma, beta, W, bias);
    const x2 = ln(rep.gamma, rep.beta);
    // Integer codes: per-channel on x vs per-tensor on x'.
    const code = (v: number, s: number, z: number, lo: number, hi: number) => Math.min(Math.max(roundHalfEven(v / s) + z, lo), hi);
    let mismatches = 0;
    for (let i = 0; i < rows * D; i++) {
      const c = i % D;
      // The integer codes themselves are equal (z̃ − z_c is folded into β').
      const a = code(x[i], q.scales[c], q.zeros[c], q.qmin, q.qmax);
      const b = code(x2[i], rep.quantizer.scale, rep.quantizer.zero, q.qmin, q.qmax);
      if (a !== b) mismatches++;
    }
    // Float rounding of γ/r can move a value sitting exactly on a rounding boundary; allow 0.5 %.
    expect(mismatches).toBeLessThanOrEqual(Math.ceil(0.005 * rows * D));
    // The Linear outputs on dequantized inputs agree in float.
    let maxErr = 0;
    let scale = 0;
    for (let n = 0; n < rows; n++) {
      for (let o = 0; o < O; o++) {
        let y1 = bias[o];
        let y2 = rep.bias[o];
        for (let c = 0; c < D; c++) {
          const i = n * D + c;
          const d1 = (code(x[i], q.scales[c], q.zeros[c], q.qmin, q.qmax) - q.zeros[c]) * q.scales[c];
          const d2 = (code(x2[i], rep.quantizer.scale, rep.quantizer.zero, q.qmin, q.qmax) - rep.quantizer.zero) * rep.quantizer.scale;
          y1 += W[o * D + c] * d1;
          y2 += rep.weight[o * D + c] * d2;
        }
        maxErr = Math.max(maxErr, Math.abs(y1 - y2));
        scale = Math.max(scale, Math.abs(y1));
      }
    }
    expect(maxErr / scale).toBeLessThan(0.02 + 1e-5);
    // And without quantization the reparameterized model is the same function.
    const lin = (xs: Float32Array, w: Float32Array, b: Float32Array, shift: Float64Array | null) => {
      const out: number[] = [];
      for (let n = 0; n < rows; n++) for (let o = 0; o < O; o++) {
        let y = b[o];
        for (let c = 0; c < D; c++) y += w[o * D + c] * xs[n * D + c];
        out.push(y);
      }
      void shift;
      return out;
    };
    const y1 = lin(x, W, bias, null);
    const y2 = lin(x2, rep.weight, rep.bias, null);
    y1.forEach((v, i) => expect(Math.abs(v - y2[i])).toBeLessThan(1e-4 * (1 + Math.abs(v))));
  });
});
