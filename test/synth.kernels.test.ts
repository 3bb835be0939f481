// The synthesis kernels in isolation, each against an independent reference written here
// (plain double-precision TypeScript following the papers' and PyTorch's definitions) and
// each gradient against central finite differences of its own loss.

import { nativeAddon } from '../lib/native';
import { randn, rng } from './helpers/random';

const K = nativeAddon().synthKernels;

/** Central differences of f along unit coordinate i of x (x restored afterwards). */
function fd(f: () => number, x: Float32Array, i: number, h: number): number {
  const x0 = x[i];
  x[i] = x0 + h;
  const up = f();
  x[i] = x0 - h;
  const down = f();
  x[i] = x0;
  return (up - down) / (2 * h);
}

function softmaxRows(x: Float32Array, rows: number, n: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let j = 0; j < n; j++) mx = Math.max(mx, x[r * n + j]);
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.exp(x[r * n + j] - mx);
    for (let j = 0; j < n; j++) out[r * n + j] = Math.exp(x[r * n + j] - mx) / s;
  }
  return out;
}

describe('APA loss', () => {
  // Reference: the model map (class row or mean over queries, patch columns, renormalized)
  // and the loss form's definition, in double.
  type Form = 'mse' | 'relative-mse' | 'kl';
  function mapLoss(a: Float64Array, p: Float32Array, form: Form): number {
    let d2 = 0, pp = 0, kl = 0;
    for (let j = 0; j < a.length; j++) {
      d2 += (a[j] - p[j]) ** 2;
      pp += p[j] ** 2;
      kl += p[j] * Math.log(p[j] / a[j]);
    }
    return form === 'mse' ? d2 / a.length : form === 'relative-mse' ? d2 / pp : kl;
  }
  function reference(att: Float32Array, pri: Float32Array, B: number, H: number, N: number, prefix: number, q: 'class' | 'mean', form: Form = 'mse'): number {
    const P = N - prefix;
    let loss = 0;
    for (let bh = 0; bh < B * H; bh++) {
      const c = new Float64Array(P);
      const rows = q === 'class' ? [0] : Array.from({ length: N }, (_, i) => i);
      for (const i of rows) for (let j = 0; j < P; j++) c[j] += att[(bh * N + i) * N + prefix + j];
      const s = c.reduce((a, v) => a + v, 0);
      loss += mapLoss(c.map((v) => v / s), pri.subarray(bh * P, (bh + 1) * P), form);
    }
    return loss;
  }

  test.each([
    ['class token, one prefix token', 'class', 1, 'mse'],
    ['class token, class + distillation tokens', 'class', 2, 'mse'],
    ['mean over queries, no prefix', 'mean', 0, 'mse'],
    ['relative MSE, class token', 'class', 1, 'relative-mse'],
    ['relative MSE, mean over queries', 'mean', 0, 'relative-mse'],
    ['KL divergence, class token', 'class', 1, 'kl'],
    ['KL divergence, class + distillation tokens', 'class', 2, 'kl'],
    ['KL divergence, mean over queries', 'mean', 0, 'kl'],
  ] as const)('%s (%s): value matches the reference and the gradient matches finite differences', (_n, q, prefix, form) => {
    const B = 2, H = 3, P = 9, N = P + prefix;
    const r = rng(5);
    const att = softmaxRows(randn(B * H * N * N, r, 2), B * H * N, N);
    const pri = softmaxRows(randn(B * H * P, r, 1), B * H, P);
    const res = K.apaLoss(att, pri, B, H, N, prefix, q, form);
    expect(res.loss).toBeCloseTo(reference(att, pri, B, H, N, prefix, q, form), form === 'mse' ? 10 : 7);
    const f = () => K.apaLoss(att, pri, B, H, N, prefix, q, form).loss;
    let checked = 0;
    for (let i = 0; i < att.length; i += 7) {
      // A step relative to the entry: KL's −p/a curves sharply where a is small.
      const num = fd(f, att, i, Math.min(1e-3, 0.02 * att[i]));
      expect(Math.abs(num - res.grad[i])).toBeLessThan(2e-3 * Math.abs(res.grad[i]) + 2e-6);
      if (res.grad[i] !== 0) checked++;
    }
    expect(checked).toBeGreaterThan(5);
    // Entries outside the aligned query rows and the patch columns carry no gradient.
    for (let bh = 0; bh < B * H; bh++)
      for (let i = 0; i < N; i++)
        for (let j = 0; j < N; j++) {
          const g = res.grad[(bh * N + i) * N + j];
          if (j < prefix || (q === 'class' && i > 0)) expect(g).toBe(0);
        }
  });

  test('the loss is zero when attention equals the prior', () => {
    const B = 1, H = 2, N = 5, prefix = 1, P = 4;
    const pri = softmaxRows(randn(B * H * P, rng(1)), B * H, P);
    const att = new Float32Array(B * H * N * N).fill(1 / N);
    for (let h = 0; h < H; h++) for (let j = 0; j < P; j++) att[h * N * N + prefix + j] = pri[h * P + j] * 0.8; // row 0: 0.2 to the class token
    for (const form of ['mse', 'relative-mse'] as const) expect(K.apaLoss(att, pri, B, H, N, prefix, 'class', form).loss).toBeLessThan(1e-12);
    // KL(p ‖ a) in float32 maps: zero up to the rounding of a = p.
    expect(Math.abs(K.apaLoss(att, pri, B, H, N, prefix, 'class', 'kl').loss)).toBeLessThan(1e-6);
  });

  test('relative MSE and KL keep their size as the token grid grows; MSE falls as 1/P²', () => {
    // Attention and prior drawn the same way on a 7×7 and a 14×14 grid: the paper's MSE
    // shrinks with the grid while the scale-free forms stay of order one.
    const sizes = [49, 196].map((P) => {
      const r = rng(11);
      const N = P + 1;
      const att = softmaxRows(randn(N * N, r, 0.5), N, N);
      const pri = softmaxRows(randn(P, r, 0.5), 1, P);
      return Object.fromEntries((['mse', 'relative-mse', 'kl'] as const).map((f) => [f, K.apaLoss(att, pri, 1, 1, N, 1, 'class', f).loss]));
    });
    expect(sizes[0].mse / sizes[1].mse).toBeGreaterThan(8);
    for (const f of ['relative-mse', 'kl']) {
      expect(sizes[0][f] / sizes[1][f]).toBeGreaterThan(0.3);
      expect(sizes[0][f] / sizes[1][f]).toBeLessThan(3);
    }
  });
});

describe('attention priors', () => {
  test('maps are normalized GMM densities of the returned components', () => {
    const B = 3, S = 2, H = 3, gh = 5, gw = 7;
    const p = K.attentionPriors(B, S, H, gh, gw, 5, 0.5, 1 / 3, 42);
    let c = 0;
    for (let m = 0; m < B * S * H; m++) {
      const ref = new Float64Array(gh * gw);
      let wsum = 0;
      for (let k = 0; k < p.counts[m]; k++, c++) {
        const [w, my, mx, sy, sx] = p.components.subarray(c * 5, c * 5 + 5);
        wsum += w;
        for (let y = 0; y < gh; y++)
          for (let x = 0; x < gw; x++) ref[y * gw + x] += (w / (2 * Math.PI * sy * sx)) * Math.exp(-0.5 * (((y - my) / sy) ** 2 + ((x - mx) / sx) ** 2));
      }
      expect(wsum).toBeCloseTo(1, 5);
      const s = ref.reduce((a, v) => a + v, 0);
      const map = p.maps.subarray(m * gh * gw, (m + 1) * gh * gw);
      expect(map.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 5);
      map.forEach((v, i) => expect(v).toBeCloseTo(ref[i] / s, 6));
    }
    expect(c * 5).toBe(p.components.length);
  });

  test('sampler statistics: k ~ U{1..K}, means uniform on the grid, std in range, Dirichlet(1) weights', () => {
    const Kmax = 5, g = 14, n = 4000;
    const p = K.attentionPriors(n, 1, 1, g, g, Kmax, 0.5, 1 / 3, 7);
    const hist = new Array(Kmax + 1).fill(0);
    p.counts.forEach((k) => hist[k]++);
    expect(hist[0]).toBe(0);
    // Each count has probability 1/5: 800 expected, binomial sd ≈ 25; allow 5 sd.
    for (let k = 1; k <= Kmax; k++) expect(Math.abs(hist[k] - n / Kmax)).toBeLessThan(5 * Math.sqrt((n * (1 / Kmax) * (1 - 1 / Kmax))));
    const comps = p.components.length / 5;
    let muSum = 0, muMin = Infinity, muMax = -Infinity, sdMin = Infinity, sdMax = -Infinity, sdSum = 0;
    for (let i = 0; i < comps; i++) {
      const [, my, mx, sy, sx] = p.components.subarray(i * 5, i * 5 + 5);
      muSum += my + mx;
      muMin = Math.min(muMin, my, mx);
      muMax = Math.max(muMax, my, mx);
      sdMin = Math.min(sdMin, sy, sx);
      sdMax = Math.max(sdMax, sy, sx);
      sdSum += sy + sx;
    }
    expect(muMin).toBeGreaterThanOrEqual(0);
    expect(muMax).toBeLessThanOrEqual(g - 1);
    expect(muSum / (2 * comps)).toBeCloseTo((g - 1) / 2, 0); // U[0, 13]: mean 6.5, sd of the mean ≈ 0.04
    expect(sdMin).toBeGreaterThanOrEqual(0.5);
    expect(sdMax).toBeLessThanOrEqual(g / 3);
    expect(Math.abs(sdSum / (2 * comps) - (0.5 + g / 3) / 2)).toBeLessThan(0.05);
    // Dirichlet(1,1): the first weight of two-component maps is U(0,1): mean ½, variance 1/12.
    let c = 0;
    const firsts: number[] = [];
    for (let m = 0; m < n; m++) {
      if (p.counts[m] === 2) firsts.push(p.components[c * 5]);
      c += p.counts[m];
    }
    const mean = firsts.reduce((a, v) => a + v, 0) / firsts.length;
    const vari = firsts.reduce((a, v) => a + (v - mean) ** 2, 0) / firsts.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.04);
    expect(Math.abs(vari - 1 / 12)).toBeLessThan(0.01);
  });

  test('seeded: the same seed gives the same maps, image b does not depend on the image count', () => {
    const a = K.attentionPriors(4, 1, 2, 4, 4, 5, 0.5, 1 / 3, 3);
    const b = K.attentionPriors(6, 1, 2, 4, 4, 5, 0.5, 1 / 3, 3);
    const c = K.attentionPriors(4, 1, 2, 4, 4, 5, 0.5, 1 / 3, 4);
    expect(Array.from(b.maps.subarray(0, a.maps.length))).toEqual(Array.from(a.maps));
    expect(Array.from(c.maps)).not.toEqual(Array.from(a.maps));
  });

  test('jitterPrior: an integer-patch roll is an exact roll, a flip mirrors, the sum is kept', () => {
    const gh = 3, gw = 4, patch = 8;
    const prior = softmaxRows(randn(gh * gw, rng(2)), 1, gh * gw);
    const rolled = K.jitterPrior(prior, gh, gw, patch, false, patch, -2 * patch);
    for (let y = 0; y < gh; y++) for (let x = 0; x < gw; x++) expect(rolled[y * gw + x]).toBeCloseTo(prior[((y - 1 + gh) % gh) * gw + ((x + 2) % gw)], 6);
    const flipped = K.jitterPrior(prior, gh, gw, patch, true, 0, 0);
    for (let y = 0; y < gh; y++) for (let x = 0; x < gw; x++) expect(flipped[y * gw + x]).toBeCloseTo(prior[y * gw + gw - 1 - x], 6);
    const frac = K.jitterPrior(prior, gh, gw, patch, true, 3, -5);
    expect(frac.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 5);
  });
});

describe('PSAQ-ViT patch-similarity entropy', () => {
  // Reference straight from PSAQ-ViT's code: head mean of A·V, drop prefix tokens, cosine
  // similarity matrix, Gaussian KDE (h) at linspace(lo, hi, points), trapz of −p·log p.
  function reference(av: Float32Array, B: number, N: number, D: number, H: number, prefix: number, h: number, points: number, lo: number, hi: number): number[] {
    const hd = D / H, P = N - prefix;
    const out: number[] = [];
    for (let b = 0; b < B; b++) {
      const F = Array.from({ length: P }, (_, i) =>
        Array.from({ length: hd }, (_, j) => {
          let s = 0;
          for (let k = 0; k < H; k++) s += av[(b * N + prefix + i) * D + k * hd + j];
          return s / H;
        }));
      const S: number[] = [];
      for (let i = 0; i < P; i++)
        for (let j = 0; j < P; j++) {
          let d = 0, ni = 0, nj = 0;
          for (let k = 0; k < hd; k++) {
            d += F[i][k] * F[j][k];
            ni += F[i][k] ** 2;
            nj += F[j][k] ** 2;
          }
          S.push(d / Math.sqrt(ni * nj));
        }
      const t = Array.from({ length: points }, (_, k) => lo + ((hi - lo) * k) / (points - 1));
      const f = t.map((tk) => {
        const p = S.reduce((a, s) => a + Math.exp(-((tk - s) ** 2) / (2 * h * h)), 0) / (S.length * h * Math.sqrt(2 * Math.PI)) + 1e-4;
        return -p * Math.log(p);
      });
      let H_ = 0;
      for (let k = 0; k + 1 < points; k++) H_ += ((t[k + 1] - t[k]) * (f[k] + f[k + 1])) / 2;
      out.push(H_);
    }
    return out;
  }

  test('entropy and range match the reference; the gradient matches finite differences with the range held', () => {
    const B = 2, N = 7, D = 6, H = 2, prefix = 1;
    const av = randn(B * N * D, rng(9));
    // A wider bandwidth than PSAQ-ViT's 0.01 keeps the finite differences of this small
    // example smooth; the kernel is the same code for every bandwidth.
    const bw = 0.15, points = 10;
    const res = K.patchSimilarityEntropy(av, B, N, D, H, prefix, bw, points);
    const ref = reference(av, B, N, D, H, prefix, bw, points, res.lo, res.hi);
    res.perImage.forEach((v, b) => expect(v).toBeCloseTo(ref[b], 5));
    expect(res.entropy).toBeCloseTo(ref[0] + ref[1], 5);
    expect(res.hi).toBeCloseTo(1, 5); // the diagonal is included
    const f = () => K.patchSimilarityEntropy(av, B, N, D, H, prefix, bw, points, res.lo, res.hi).entropy;
    let nonzero = 0;
    for (let i = 0; i < av.length; i++) {
      const num = fd(f, av, i, 2e-3);
      const an = res.grad[i];
      const tokenIsPrefix = Math.floor(i / D) % N < prefix;
      if (tokenIsPrefix) expect(an).toBe(0);
      expect(Math.abs(num - an)).toBeLessThan(0.03 * Math.abs(an) + 2e-3);
      if (Math.abs(an) > 1e-3) nonzero++;
    }
    expect(nonzero).toBeGreaterThan(20);
  });

  test('with PSAQ-ViT bandwidth 0.01 the value still matches the reference', () => {
    const B = 1, N = 10, D = 8, H = 2;
    const av = randn(B * N * D, rng(3));
    const res = K.patchSimilarityEntropy(av, B, N, D, H, 1, 0.01, 10);
    expect(res.entropy).toBeCloseTo(reference(av, B, N, D, H, 1, 0.01, 10, res.lo, res.hi)[0], 4);
  });
});

describe('total variation', () => {
  function reference(x: Float32Array, B: number, C: number, H: number, W: number, form: 'l2' | 'l1'): number {
    const dirs = [[0, 0, 0, 1], [0, 0, 1, 0], [1, 0, 0, 1], [0, 0, 1, 1]];
    let total = 0;
    for (const [ya, xa, yb, xb] of dirs) {
      let s = 0, n = 0;
      for (let p = 0; p < B * C; p++)
        for (let y = 0; y + Math.max(ya, yb) < H; y++)
          for (let xx = 0; xx + Math.max(xa, xb) < W; xx++) {
            const d = x[p * H * W + (y + ya) * W + xx + xa] - x[p * H * W + (y + yb) * W + xx + xb];
            s += form === 'l2' ? d * d : Math.abs(d);
            n++;
          }
      total += form === 'l2' ? Math.sqrt(s) : s / n;
    }
    return total;
  }
  test.each(['l2', 'l1'] as const)('%s: value matches the four-direction reference, gradient matches finite differences', (form) => {
    const B = 2, C = 2, H = 4, W = 5;
    const x = randn(B * C * H * W, rng(4));
    const res = K.totalVariation(x, B, C, H, W, form);
    expect(res.loss).toBeCloseTo(reference(x, B, C, H, W, form), 5);
    const f = () => K.totalVariation(x, B, C, H, W, form).loss;
    for (let i = 0; i < x.length; i++) expect(fd(f, x, i, 1e-3)).toBeCloseTo(res.grad[i], 2);
  });
});

describe('MSR regions and the crop-resize pair', () => {
  test('regions never overlap, stay inside the image and their cells, and m ~ U{1..K}', () => {
    const B = 500, H = 30, W = 23, Kmax = 4;
    const r = K.sampleRegions(B, H, W, Kmax, 2, 0.5, 1.0, true, 11);
    const per = new Array(B).fill(0);
    const boxes: number[][][] = Array.from({ length: B }, () => []);
    for (let i = 0; i < r.length / 7; i++) {
      const [b, cell, y0, x0, h, w] = r.subarray(i * 7, i * 7 + 7);
      per[b]++;
      expect(y0).toBeGreaterThanOrEqual(0);
      expect(x0).toBeGreaterThanOrEqual(0);
      expect(y0 + h).toBeLessThanOrEqual(H);
      expect(x0 + w).toBeLessThanOrEqual(W);
      const cy = Math.floor(cell / 2), cx = cell % 2;
      const ylo = Math.floor((cy * H) / 2), yhi = Math.floor(((cy + 1) * H) / 2), xlo = Math.floor((cx * W) / 2), xhi = Math.floor(((cx + 1) * W) / 2);
      expect(y0).toBeGreaterThanOrEqual(ylo);
      expect(y0 + h).toBeLessThanOrEqual(yhi);
      expect(x0).toBeGreaterThanOrEqual(xlo);
      expect(x0 + w).toBeLessThanOrEqual(xhi);
      // side = s × cell side with s in [0.5, 1]; one s for both axes (rounded)
      expect(h).toBeGreaterThanOrEqual(Math.round(0.5 * (yhi - ylo)));
      for (const [oy, ox, oh, ow] of boxes[b]) {
        const overlap = y0 < oy + oh && oy < y0 + h && x0 < ox + ow && ox < x0 + w;
        expect(overlap).toBe(false);
      }
      boxes[b].push([y0, x0, h, w]);
    }
    const hist = [0, 0, 0, 0, 0];
    per.forEach((m) => hist[m]++);
    expect(hist[0]).toBe(0);
    for (let m = 1; m <= Kmax; m++) expect(Math.abs(hist[m] - B / Kmax)).toBeLessThan(5 * Math.sqrt(B * 0.25 * 0.75));
  });

  // PyTorch F.interpolate(mode='bilinear', align_corners=False) on the crop, written out.
  function torchBilinear(img: Float32Array, C: number, H: number, W: number, [y0, x0, h, w, flip]: number[], oh: number, ow: number): Float32Array {
    const src = (o: number, inn: number, out: number) => Math.max(0, (o + 0.5) * (inn / out) - 0.5);
    const out = new Float32Array(C * oh * ow);
    for (let c = 0; c < C; c++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          const sy = src(oy, h, oh), sx = src(flip ? ow - 1 - ox : ox, w, ow);
          const y1 = Math.min(Math.floor(sy), h - 1), x1 = Math.min(Math.floor(sx), w - 1);
          const y2 = Math.min(y1 + 1, h - 1), x2 = Math.min(x1 + 1, w - 1);
          const ly = sy - y1, lx = sx - x1;
          const at = (y: number, x: number) => img[c * H * W + (y0 + y) * W + x0 + x];
          out[c * oh * ow + oy * ow + ox] =
            (1 - ly) * ((1 - lx) * at(y1, x1) + lx * at(y1, x2)) + ly * ((1 - lx) * at(y2, x1) + lx * at(y2, x2));
        }
    return out;
  }

  test.each([
    [[2, 3, 5, 4, 0], 'upsample'],
    [[0, 0, 9, 11, 1], 'whole image, flipped'],
    [[4, 1, 1, 1, 0], 'one pixel'],
  ] as const)('forward matches PyTorch bilinear; backward is its exact adjoint and stays in the box (%s)', (box, _name) => {
    const C = 2, H = 9, W = 11, oh = 9, ow = 11;
    const r = rng(12);
    const img = randn(C * H * W, r);
    const out = K.cropResize(img, C, H, W, [...box] as [number, number, number, number, number], oh, ow);
    const ref = torchBilinear(img, C, H, W, [...box], oh, ow);
    out.forEach((v, i) => expect(v).toBeCloseTo(ref[i], 5));
    const y = randn(C * oh * ow, r);
    const back = K.cropResizeBackward(y, C, H, W, [...box] as [number, number, number, number, number], oh, ow);
    let lhs = 0, rhs = 0;
    for (let i = 0; i < out.length; i++) lhs += out[i] * y[i];
    for (let i = 0; i < img.length; i++) rhs += img[i] * back[i];
    expect(lhs).toBeCloseTo(rhs, 3);
    const [y0, x0, h, w] = box;
    for (let c = 0; c < C; c++)
      for (let yy = 0; yy < H; yy++)
        for (let xx = 0; xx < W; xx++) {
          const inside = yy >= y0 && yy < y0 + h && xx >= x0 && xx < x0 + w;
          if (!inside) expect(back[c * H * W + yy * W + xx]).toBe(0);
        }
  });
});

describe('augmentation, soft labels, Adam and the schedule', () => {
  test('roll + flip follow torch.roll then torch.flip, and the backward is the adjoint', () => {
    const B = 2, C = 1, H = 4, W = 5;
    const x = randn(B * C * H * W, rng(1));
    const [flip, dy, dx] = [true, 1, -2];
    const out = K.augment(x, B, C, H, W, flip, dy, dx);
    for (let p = 0; p < B * C; p++)
      for (let y = 0; y < H; y++)
        for (let xx = 0; xx < W; xx++) {
          const rx = W - 1 - xx; // flip after roll
          const sy = (((y - dy) % H) + H) % H, sx = (((rx - dx) % W) + W) % W;
          expect(out[p * H * W + y * W + xx]).toBe(x[p * H * W + sy * W + sx]);
        }
    const g = randn(x.length, rng(2));
    const back = K.augmentBackward(g, B, C, H, W, flip, dy, dx);
    let a = 0, b = 0;
    for (let i = 0; i < x.length; i++) {
      a += out[i] * g[i];
      b += x[i] * back[i];
    }
    expect(a).toBeCloseTo(b, 5);
  });

  test('soft labels are softmax of Z (zero except the relevant classes)', () => {
    const Kc = 10;
    const cls = Int32Array.from([3, 7, 3]);
    const z = Float32Array.from([6, 9, 8]);
    const t = K.softLabels(Kc, cls, z);
    const Z = new Array(Kc).fill(0);
    Z[3] = 8; // a class listed twice keeps its larger logit
    Z[7] = 9;
    const e = Z.map((v) => Math.exp(v));
    const s = e.reduce((a, v) => a + v, 0);
    t.forEach((v, k) => expect(v).toBeCloseTo(e[k] / s, 6));
  });

  test('Adam matches torch.optim.Adam; the schedule matches PSAQ-ViT lr_cosine_policy', () => {
    const n = 5;
    const x = Float32Array.from([0.5, -1, 2, 0, 3]);
    const m = new Float32Array(n), v = new Float32Array(n);
    const xr = Array.from(x), mr = new Array(n).fill(0), vr = new Array(n).fill(0);
    const [lr, b1, b2, eps] = [0.25, 0.5, 0.9, 1e-8];
    for (let t = 1; t <= 4; t++) {
      const g = Float32Array.from(xr.map((xi, i) => Math.sin(xi * (i + 1) + t)));
      K.adamStep(x, g, m, v, t, lr, b1, b2, eps);
      for (let i = 0; i < n; i++) {
        mr[i] = b1 * mr[i] + (1 - b1) * g[i];
        vr[i] = b2 * vr[i] + (1 - b2) * g[i] * g[i];
        const denom = Math.sqrt(vr[i]) / Math.sqrt(1 - b2 ** t) + eps;
        xr[i] -= (lr / (1 - b1 ** t)) * (mr[i] / denom);
      }
    }
    x.forEach((v2, i) => expect(v2).toBeCloseTo(xr[i], 5));
    const policy = (it: number, warm: number, iters: number, base: number) =>
      it < warm ? (base * (it + 1)) / warm : 0.5 * (1 + Math.cos((Math.PI * (it - warm)) / (iters - warm))) * base;
    for (const it of [0, 1, 50, 99, 100, 101, 300, 499]) expect(K.cosineLr(it, 500, 100, 0.2)).toBeCloseTo(policy(it, 100, 500, 0.2), 12);
  });
});
