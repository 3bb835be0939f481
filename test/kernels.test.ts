// Kernel-level checks through the addon: every SIMD GEMM variant this CPU runs against
// gemm_ref on awkward shapes; the shared element-wise math against double-precision
// formulas; cross-entropy against the PyTorch fixture.

import { nativeAddon, GemmVariantName } from '../lib/native';
import { loadEngineFixture } from './helpers/fixtures';
import { expectClose } from './helpers/compare';
import { randn, rng } from './helpers/random';

const addon = nativeAddon();
const features = addon.cpuFeatures();
const variants: GemmVariantName[] = ['auto'];
if (features.avx2) variants.push('avx2');
if (features.avx512) variants.push('avx512');

// [M, N, K]: not multiples of any vector width, 1×1, tall-skinny, short-wide, K = 1, empty.
const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 1, 37], [3, 5, 7], [17, 33, 65], [31, 15, 1], [5000, 3, 7], [2, 1500, 9], [197, 197, 64],
  [197, 64, 197], [129, 257, 100], [64, 48, 513], [0, 5, 3], [4, 0, 3], [4, 5, 0],
];

describe.each(variants)('gemm %s vs gemm_ref', (variant) => {
  const r = rng(3);
  test.each(SHAPES)('M=%i N=%i K=%i, all transposes, strided, alpha/beta', (M, N, K) => {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const pad = 3; // leading dimensions larger than the rows
        const lda = (transA ? M : K) + pad;
        const ldb = (transB ? K : N) + pad;
        const ldc = N + pad;
        const A = randn(Math.max(1, (transA ? K : M) * lda), r);
        const B = randn(Math.max(1, (transB ? N : K) * ldb), r);
        for (const [alpha, beta] of [[1, 0], [0.5, 1], [-1.25, 0.75]]) {
          const C0 = randn(Math.max(1, M * ldc), r);
          if (beta === 0) for (let i = 0; i < C0.length; i++) if (i % 7 === 0) C0[i] = NaN; // beta 0 must not read C
          const ref = C0.slice();
          const got = C0.slice();
          addon.gemm('ref', transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, ref, ldc);
          addon.gemm(variant, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, got, ldc);
          // fp32 accumulation error bound: K·ε·Σ|a||b| ≲ K·ε·K (unit normals); 1e-5·√K relative suffices.
          const tol = 2e-5 * Math.sqrt(Math.max(K, 1));
          for (let i = 0; i < M; i++) {
            for (let j = N; j < ldc; j++) {
              // padding columns of C are never written
              const idx = i * ldc + j;
              if (idx < got.length && !Object.is(got[idx], C0[idx])) throw new Error(`wrote outside C at row ${i} col ${j}`);
            }
          }
          const rows = (a: Float32Array) => Array.from({ length: M * N }, (_, t) => a[Math.floor(t / N) * ldc + (t % N)]);
          expectClose(`${variant} tA=${transA} tB=${transB} a=${alpha} b=${beta}`, rows(got), rows(ref), tol);
        }
      }
    }
  });
});

/** erf in double, independent of ours. */
const erf = (x: number): number => {
  // Maclaurin series below 3 (terms stay < e^9, so double keeps ~1e-12); above, the
  // asymptotic series of erfc, whose first omitted term is < 1e-9 there.
  const ax = Math.abs(x);
  if (ax < 3) {
    let sum = 0;
    let term = x;
    for (let n = 0; n < 120; n++) {
      sum += term / (2 * n + 1);
      term *= (-x * x) / (n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  const z = 1 / (2 * ax * ax);
  const series = 1 - z + 3 * z ** 2 - 15 * z ** 3 + 105 * z ** 4 - 945 * z ** 5;
  return Math.sign(x) * (1 - (Math.exp(-ax * ax) / (ax * Math.sqrt(Math.PI))) * series);
};

/** The MLP activations in double precision, keyed by VitConfig.activation. */
const ACTIVATIONS: Record<string, (x: number) => number> = {
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  'gelu-tanh': (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  'quick-gelu': (x) => x / (1 + Math.exp(-1.702 * x)),
  relu: (x) => Math.max(x, 0),
  silu: (x) => x / (1 + Math.exp(-x)),
};
/** Central differences; ReLU's kink by PyTorch's convention (0 at 0). */
const derivative = (kind: string, x: number): number =>
  kind === 'relu' ? (x > 0 ? 1 : 0) : (ACTIVATIONS[kind](x + 1e-5) - ACTIVATIONS[kind](x - 1e-5)) / 2e-5;

describe('element-wise math (core/fast_math.h)', () => {
  const xs = new Float32Array(4001).map((_, i) => -10 + (20 * i) / 4000);
  test('exp is within 3e-7 relative of Math.exp', () => {
    const y = addon.elementwise('exp', xs);
    xs.forEach((x, i) => expect(Math.abs(y[i] - Math.exp(x)) / Math.exp(x)).toBeLessThan(3e-7));
  });
  test('erf is within 5e-7 of the series', () => {
    const y = addon.elementwise('erf', xs);
    xs.forEach((x, i) => expect(Math.abs(y[i] - erf(x))).toBeLessThan(5e-7));
  });
  test('the MLP activations (GELU exact and tanh, QuickGELU, SiLU, ReLU) and their derivatives', () => {
    // the addon's names of the functions in core/fast_math.h
    const fns: Record<string, string> = { gelu: 'gelu_erf', 'gelu-tanh': 'gelu_tanh', 'quick-gelu': 'quick_gelu', relu: 'relu', silu: 'silu' };
    const cases: [string, (x: number) => number][] = [];
    for (const [kind, f] of Object.entries(ACTIVATIONS)) cases.push([fns[kind], f], [`${fns[kind]}_grad`, (x) => derivative(kind, x)]);
    for (const [fn, f] of cases) {
      const y = addon.elementwise(fn, xs);
      xs.forEach((x, i) => {
        const want = f(x);
        if (!(Math.abs(y[i] - want) <= 2e-6 * Math.max(1, Math.abs(want)))) throw new Error(`${fn}(${x}) = ${y[i]}, expected ${want}`);
      });
    }
  });
});

describe('cross-entropy vs PyTorch', () => {
  const fx = loadEngineFixture('deit_cls');
  const t = (n: string) => fx.tensors.get(n)!.data;
  const K = fx.config.numClasses;
  test('hard labels: loss and gradient', () => {
    const labels = Int32Array.from(t('ce.labels'));
    const res = addon.crossEntropy(t('logits'), labels, fx.batch, K, false);
    expect(res.loss).toBeCloseTo(t('ce.hard_loss')[0], 5);
    expectClose('ce.hard_grad_logits', res.dlogits, t('ce.hard_grad_logits'), 1e-5);
  });
  test('soft targets: loss and gradient', () => {
    const res = addon.crossEntropy(t('logits'), t('ce.soft_targets'), fx.batch, K, true);
    expect(res.loss).toBeCloseTo(t('ce.soft_loss')[0], 5);
    expectClose('ce.soft_grad_logits', res.dlogits, t('ce.soft_grad_logits'), 1e-5);
  });
  test('a label out of range is a RangeError, not a crash', () => {
    expect(() => addon.crossEntropy(t('logits'), new Int32Array([0, K]), fx.batch, K, false)).toThrow(/labels\[1\]: expected a class in \[0, 9\], received 10/);
  });
});

// Every row-kernel table this CPU runs (native/cpu/rows_*.cc: the same loops compiled for
// baseline x86-64, AVX2 and AVX-512), on lengths that are not multiples of any vector
// width, against double-precision formulas.
interface RowKernelAddon {
  rowKernel(isa: string, op: string, ...args: unknown[]): unknown;
}
const rows = addon as unknown as RowKernelAddon;
const isas = ['generic', 'auto'];
if (features.avx2) isas.push('avx2');
if (features.avx512) isas.push('avx512');

describe.each(isas)('row kernels (%s) vs double-precision formulas', (isa) => {
  const LENGTHS = [1, 7, 16, 17, 50, 197];
  // Largest error relative to `scale` (default: the largest |want|). Where the result is
  // a difference of larger terms (softmax and LayerNorm backward), the scale is the size
  // of those terms: float32 rounding is relative to them, not to the small difference.
  const maxRel = (got: Float32Array, want: number[], scale = Math.max(...want.map(Math.abs))) =>
    Math.max(...want.map((w, i) => Math.abs(got[i] - w))) / Math.max(scale, 1e-30);
  test.each(LENGTHS)('softmax and its backward, row length %i', (n) => {
    const R = 3;
    const x = randn(R * n, rng(n)).map((v) => v * 4);
    const y = rows.rowKernel(isa, 'softmax', x, R, n) as Float32Array;
    const d = randn(R * n, rng(n + 1));
    const dx = rows.rowKernel(isa, 'softmax_backward', d, y, R, n) as Float32Array;
    for (let r = 0; r < R; r++) {
      const xs = Array.from(x.subarray(r * n, (r + 1) * n));
      const m = Math.max(...xs);
      const e = xs.map((v) => Math.exp(v - m));
      const sum = e.reduce((a, b) => a + b, 0);
      const p = e.map((v) => v / sum);
      expect(maxRel(y.subarray(r * n, (r + 1) * n), p)).toBeLessThan(2e-6);
      const ds = Array.from(d.subarray(r * n, (r + 1) * n));
      const dot = p.reduce((a, v, j) => a + v * ds[j], 0);
      const terms = Math.max(...p.map((v, j) => v * (Math.abs(ds[j]) + Math.abs(dot))));
      expect(maxRel(dx.subarray(r * n, (r + 1) * n), p.map((v, j) => v * (ds[j] - dot)), terms)).toBeLessThan(1e-5);
    }
  });
  test.each(LENGTHS)('LayerNorm forward and input gradient, row length %i', (D) => {
    const R = 5;
    const x = randn(R * D, rng(D)).map((v, i) => v * 3 + (i % 3));
    const w = randn(D, rng(D + 1));
    const b = randn(D, rng(D + 2));
    const eps = 1e-6;
    const out = rows.rowKernel(isa, 'layernorm', x, w, b, R, D, eps) as { y: Float32Array; mean: Float32Array; rstd: Float32Array };
    const g = randn(R * D, rng(D + 3));
    const dx = rows.rowKernel(isa, 'layernorm_backward', g, x, w, out.mean, out.rstd, R, D) as Float32Array;
    for (let r = 0; r < R; r++) {
      const xs = Array.from(x.subarray(r * D, (r + 1) * D));
      const mean = xs.reduce((a, v) => a + v, 0) / D;
      const variance = xs.reduce((a, v) => a + (v - mean) ** 2, 0) / D;
      const rstd = 1 / Math.sqrt(variance + eps);
      const xhat = xs.map((v) => (v - mean) * rstd);
      expect(Math.abs(out.mean[r] - mean)).toBeLessThan(1e-5 * Math.max(1, Math.abs(mean)));
      expect(Math.abs(out.rstd[r] - rstd) / rstd).toBeLessThan(1e-5);
      expect(maxRel(out.y.subarray(r * D, (r + 1) * D), xhat.map((v, i) => v * w[i] + b[i]))).toBeLessThan(1e-5);
      // dx = rstd·(dŷ − mean(dŷ) − x̂·mean(dŷ·x̂)), dŷ = g·w: the LayerNorm input gradient.
      const dy = Array.from(g.subarray(r * D, (r + 1) * D), (v, i) => v * w[i]);
      const m1 = dy.reduce((a, v) => a + v, 0) / D;
      const m2 = dy.reduce((a, v, i) => a + v * xhat[i], 0) / D;
      const terms = rstd * Math.max(...dy.map((v, i) => Math.abs(v) + Math.abs(m1) + Math.abs(xhat[i] * m2)));
      expect(maxRel(dx.subarray(r * D, (r + 1) * D), dy.map((v, i) => rstd * (v - m1 - xhat[i] * m2)), terms)).toBeLessThan(1e-5);
    }
  });
  test('the MLP activations and their gradients on 1,001 points', () => {
    const x = new Float32Array(1001).map((_, i) => -8 + (16 * i) / 1000);
    const dout = randn(1001, rng(4));
    for (const [kind, f] of Object.entries(ACTIVATIONS)) {
      const y = rows.rowKernel(isa, 'activation', x, kind) as Float32Array;
      const dy = rows.rowKernel(isa, 'activation_grad', x, dout, kind) as Float32Array;
      // The overwrite form (the engine's backward scratch) gives the same values over garbage.
      const dyOver = rows.rowKernel(isa, 'activation_grad', x, dout, kind, false) as Float32Array;
      // (+ 0: ReLU's zero gradient is −0 from dout < 0 when written, +0 when accumulated)
      expect(Array.from(dyOver, (v) => v + 0)).toEqual(Array.from(dy, (v) => v + 0));
      x.forEach((v, i) => {
        if (!(Math.abs(y[i] - f(v)) <= 2e-6 * Math.max(1, Math.abs(f(v))))) throw new Error(`${isa} ${kind}(${v}) = ${y[i]}, expected ${f(v)}`);
        const want = dout[i] * derivative(kind, v);
        if (!(Math.abs(dy[i] - want) <= 1e-5 * Math.max(1, Math.abs(want)))) throw new Error(`${isa} ${kind}'(${v}) = ${dy[i]}, expected ${want}`);
      });
    }
    expect(() => rows.rowKernel(isa, 'activation', x, 'gelu-fast')).toThrow(/kind: expected one of 'gelu', 'gelu-tanh', 'quick-gelu', 'relu', 'silu', received 'gelu-fast'/);
  });
});

test('the engine runs the best row-kernel table this CPU supports', () => {
  expect(rows.rowKernel('auto', 'name')).toBe(features.avx512 ? 'avx512' : features.avx2 ? 'avx2' : 'generic');
  expect(() => rows.rowKernel('sse9', 'softmax')).toThrow(/isa: expected 'generic', 'avx2', 'avx512' or 'auto', received 'sse9'/);
});
