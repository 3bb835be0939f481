// The image-quality statistics of `compare` against closed forms: the Fréchet distance
// of two Gaussians, the eigen-decomposition it rests on, attention entropy extremes.

import { symmetricEigen, sqrtPsd, matmul } from '../lib/compare/linalg';
import { frechetDistance, clsAttentionEntropy, classCosine } from '../lib/compare/feature-stats';
import { randn, rng } from './helpers/random';

test('symmetric eigen-decomposition reconstructs the matrix; sqrtPsd squares back', () => {
  const n = 12;
  const r = rng(2);
  const b = Float64Array.from(randn(n * n, r));
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) a[i * n + j] += b[i * n + k] * b[j * n + k];
  const { values, vectors } = symmetricEigen(a, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += vectors[i * n + k] * values[k] * vectors[j * n + k];
    expect(Math.abs(s - a[i * n + j])).toBeLessThan(1e-8 * (1 + Math.abs(a[i * n + j])));
  }
  const root = sqrtPsd(a, n);
  const sq = matmul(root, root, n);
  sq.forEach((v, i) => expect(Math.abs(v - a[i])).toBeLessThan(1e-7 * (1 + Math.abs(a[i]))));
});

test('Fréchet distance: 0 for one set against itself, the closed form for shifted and scaled Gaussians', () => {
  const d = 4;
  const n = 20000;
  const r = rng(3);
  const x = randn(n * d, r);
  expect(Math.abs(frechetDistance(x, n, x, n, d))).toBeLessThan(1e-6);
  // y = 2x + 1: ‖μ‖² = d, Tr(Σ1 + Σ2 − 2(Σ1^½ Σ2 Σ1^½)^½) = d(1 + 4 − 4) = d → 2d in total.
  const y = Float32Array.from(x, (v) => 2 * v + 1);
  expect(frechetDistance(x, n, y, n, d)).toBeCloseTo(2 * d, 1);
});

test('class-token attention entropy: log(patches) for uniform attention, 0 for one-hot', () => {
  const B = 2, H = 3, N = 5, prefix = 1;
  const uniform = new Float32Array(B * H * N * N).fill(1 / N);
  expect(clsAttentionEntropy([uniform], B, H, N, prefix)).toBeCloseTo(Math.log(N - prefix), 6);
  const peaked = new Float32Array(B * H * N * N);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) peaked[((b * H + h) * N) * N + 2] = 1;
  expect(clsAttentionEntropy([peaked], B, H, N, prefix)).toBeCloseTo(0, 6);
});

test('class-conditional cosine: 1 for identical directions of the same class, ignores unlabelled images', () => {
  const d = 3;
  const real = new Float32Array([1, 0, 0, 0, 1, 0]);
  const realLabels = new Int32Array([0, 1]);
  const x = new Float32Array([2, 0, 0, 0, 0, 5]);
  expect(classCosine(x, new Int32Array([0, -1]), real, realLabels, d)).toBeCloseTo(1, 6);
  expect(classCosine(x, new Int32Array([1, -1]), real, realLabels, d)).toBeCloseTo(0, 6);
});
