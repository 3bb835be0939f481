// How close calibration images are to real ones, seen by the full-precision model:
// statistics of its penultimate features (the head's input) and of its attention.
//  - Fréchet distance between Gaussian fits of the two feature sets (the FID formula of
//    Heusel et al. 2017, on our model's features instead of Inception's):
//      ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½)
//  - class-conditional cosine similarity: for each image with target class c, the mean
//    cosine similarity of its feature to the real images' features of class c (ours; the
//    SPDFQ summary reports 0.44 for PSAQ-ViT images vs 0.68 for real ones without saying
//    exactly how it pairs them).
//  - class-token attention entropy over the patch tokens (nats), mean over images,
//    heads and blocks.

import { matmul, sqrtPsd } from './linalg';

export function meanCov(x: Float32Array, n: number, d: number): { mean: Float64Array; cov: Float64Array } {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j] / n;
  const cov = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < d; a++) {
      const da = x[i * d + a] - mean[a];
      for (let b = a; b < d; b++) cov[a * d + b] += (da * (x[i * d + b] - mean[b])) / Math.max(1, n - 1);
    }
  }
  for (let a = 0; a < d; a++) for (let b = 0; b < a; b++) cov[a * d + b] = cov[b * d + a];
  return { mean, cov };
}

export function frechetDistance(x: Float32Array, nx: number, y: Float32Array, ny: number, d: number): number {
  const a = meanCov(x, nx, d);
  const b = meanCov(y, ny, d);
  let dm = 0;
  for (let j = 0; j < d; j++) dm += (a.mean[j] - b.mean[j]) ** 2;
  const s1 = sqrtPsd(a.cov, d);
  const cross = sqrtPsd(matmul(matmul(s1, b.cov, d), s1, d), d);
  let tr = 0;
  for (let j = 0; j < d; j++) tr += a.cov[j * d + j] + b.cov[j * d + j] - 2 * cross[j * d + j];
  return dm + tr;
}

function cosine(a: Float32Array, ai: number, b: Float32Array, bi: number, d: number): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let j = 0; j < d; j++) {
    const x = a[ai * d + j];
    const y = b[bi * d + j];
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return ab / Math.sqrt(aa * bb + 1e-30);
}

/** Mean over images (with a class) of the mean cosine similarity to real features of that class. */
export function classCosine(x: Float32Array, labels: Int32Array, real: Float32Array, realLabels: Int32Array, d: number): number {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0) continue;
    let s = 0;
    let c = 0;
    for (let r = 0; r < realLabels.length; r++) {
      if (realLabels[r] !== labels[i]) continue;
      s += cosine(x, i, real, r, d);
      c++;
    }
    if (c > 0) {
      sum += s / c;
      count++;
    }
  }
  return count > 0 ? sum / count : NaN;
}

/** Entropy (nats) of class-token attention rows over the patch tokens, renormalized. */
export function clsAttentionEntropy(attention: Float32Array[], batch: number, heads: number, tokens: number, prefix: number): number {
  let sum = 0;
  let count = 0;
  for (const att of attention) {
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        const row = ((b * heads + h) * tokens + 0) * tokens;
        let z = 0;
        for (let j = prefix; j < tokens; j++) z += att[row + j];
        let e = 0;
        for (let j = prefix; j < tokens; j++) {
          const p = att[row + j] / z;
          if (p > 0) e -= p * Math.log(p);
        }
        sum += e;
        count++;
      }
    }
  }
  return sum / count;
}
