// Synthesis on a Swin (docs/swin.md, "Stage: synthesis"): the window APA loss against a
// float64 reference computed here from the model's attention outputs and torchvision's
// window index arithmetic (lib/onnx/swin-geometry.ts, not the engine's tables), the whole
// objective's gradient against central differences through the model to the pixels (APA,
// PSAQ-ViT's window entropy, the full SPDFQ objective), short runs that lower their loss and
// repeat bit for bit, every method on an imported Swin from the CLI, and clear errors.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { nativeAddon } from '../lib/native';
import { windowGeometry, windowSources } from '../lib/onnx/swin-geometry';
import { createSwin, completeSwinConfig, SwinConfigInput, SwinModel } from '../lib/swin';
import { nativeSynthConfig, resolveSynthesisOptions, SynthesisOptions } from '../lib/synth/options';
import { synthModelShape } from '../lib/synth/model-shape';
import { synthesisObjective, synthesize } from '../lib/synth/synthesize';
import { cli } from './helpers/cli';
import { randn, rng } from './helpers/random';
import { SWIN_FIXTURE_DIR } from './helpers/swin-fixtures';
import { sizableSwinWeights } from './helpers/synth-model';

// 10×10 images, patch 2: stage 0 is a 5×5 grid under 3×3 windows (padded to 6×6: 4 windows
// with padding rows; odd blocks shifted by 1, masked), stage 1 a 3×3 grid in one window.
const TINY: SwinConfigInput = {
  imageSize: 10, channels: 2, patchSize: 2, embedDim: 4, depths: [2, 2], numHeads: [2, 2], windowSize: 3,
  mlpRatio: 2, numClasses: 3,
};
const PRE = { mean: [0.5, 0.5], std: [0.5, 0.5] };
// No jitter and no flip: the priors stay where they were drawn, so the reference below reads
// them as the result returns them.
const STILL: SynthesisOptions = { preprocess: PRE, rollFractions: [0], flip: false, seed: 3 };

function tinySwin(seed = 7): SwinModel {
  return createSwin(TINY, sizableSwinWeights(TINY, seed), { threads: 1, reference: true });
}

/** Σ over the aligned blocks of (l/L) Σ_b Σ_h mean_w ℓ(a, p) / B, in float64, from the
 *  attention outputs and the prior maps. */
async function referenceApa(model: SwinModel, x: Float32Array, B: number, o: SynthesisOptions, form: 'kl' | 'mse'): Promise<number> {
  const c = model.config;
  const stageOf = c.depths.flatMap((d, s) => Array<number>(d).fill(s));
  const indexIn = c.depths.flatMap((d) => Array.from({ length: d }, (_, i) => i));
  const drawn = await synthesize(model, { ...o, iters: 0 });
  await model.forward(x, B);
  const L = stageOf.length;
  let total = 0;
  for (const l of drawn.options.apa.blocks) {
    const s = stageOf[l - 1], i = indexIn[l - 1];
    let gh = c.imageHeight / c.patchSize, gw = c.imageWidth / c.patchSize;
    for (let k = 0; k < s; k++) [gh, gw] = [Math.ceil(gh / 2), Math.ceil(gw / 2)];
    const geo = windowGeometry(gh, gw, c.windowSize, i % 2 === 1);
    const slots = windowSources(geo);
    const table = drawn.windowPriors!.find((t) => t.stage === s)!;
    const [, sets, heads] = table.shape;
    const att = (await model.output(`attention.${s}.${i}`)).data;
    const nW = geo.windowsY * geo.windowsX, N = geo.tokens;
    let block = 0;
    for (let b = 0; b < B; b++)
      for (let h = 0; h < heads; h++) {
        const map = table.maps.subarray(((b * sets) * heads + h) * gh * gw, ((b * sets) * heads + h + 1) * gh * gw);
        for (let w = 0; w < nW; w++) {
          const real = Array.from({ length: N }, (_, t) => t).filter((t) => slots[w * N + t] >= 0);
          const base = ((b * nW + w) * heads + h) * N * N;
          const col = real.map((j) => real.reduce((acc, q) => acc + att[base + q * N + j], 0));
          const cs = col.reduce((a, v) => a + v, 0);
          const pr = real.map((j) => map[slots[w * N + j]]);
          const ps = pr.reduce((a, v) => a + v, 0);
          let loss = 0;
          real.forEach((_, j) => {
            const a = col[j] / cs, p = pr[j] / ps;
            loss += form === 'kl' ? p * Math.log(p / a) : (a - p) ** 2 / real.length;
          });
          block += loss / nW;
        }
      }
    total += (l / L) * block;
  }
  return total / B;
}

/** Directional and single-pixel central differences of the objective at step `step`
 *  against its gradient (the bar of test/synth.gradcheck.test.ts). */
async function checkGradient(model: SwinModel, options: SynthesisOptions, step: number, alpha: number): Promise<void> {
  const c = completeSwinConfig(TINY);
  const B = options.images!;
  const r = rng(40 + step);
  const x = randn(B * c.channels * c.imageHeight * c.imageWidth, r, 0.6);
  const { grad } = await synthesisObjective(model, options, x, step, alpha, true);
  const g = grad!;
  expect(Math.sqrt(g.reduce((a, v) => a + v * v, 0))).toBeGreaterThan(1e-6);
  const total = async (y: Float32Array) => (await synthesisObjective(model, options, y, step, alpha, false)).losses.total;
  const h = 2e-3;
  const dirs = [...Array(3)].map(() => {
    const v = randn(x.length, r);
    const norm = Math.sqrt(v.reduce((a, e) => a + e * e, 0));
    return v.map((e) => e / norm);
  });
  const order = Array.from(g.keys()).sort((a, b) => Math.abs(g[b]) - Math.abs(g[a])).slice(0, 3);
  for (const i of order) dirs.push(Float32Array.from(x, (_, k) => (k === i ? 1 : 0)));
  for (const v of dirs) {
    const fd = ((await total(x.map((e, k) => e + h * v[k]))) - (await total(x.map((e, k) => e - h * v[k])))) / (2 * h);
    const an = g.reduce((a, e, k) => a + e * v[k], 0);
    expect(Math.abs(fd - an)).toBeLessThan(0.02 * Math.abs(an) + 1e-4);
  }
}

describe('window APA on a Swin', () => {
  test.each(['kl', 'mse'] as const)('the %s loss equals a float64 reference from the attention outputs', async (form) => {
    const model = tinySwin();
    const B = 2;
    const o: SynthesisOptions = { ...STILL, method: 'spdfq', images: B, msr: false, apa: { loss: form, alpha: 1 } };
    const x = randn(B * 2 * 10 * 10, rng(9), 0.6);
    const { losses } = await synthesisObjective(model, o, x, 0, 1, false);
    const ref = await referenceApa(model, x, B, o, form);
    expect(ref).toBeGreaterThan(0);
    expect(Math.abs(losses.apa - ref)).toBeLessThan(1e-5 * ref);
    await model.dispose();
  });

  test('the priors tile each stage by windows, one mixture per tile, and differ per image, head and stage', async () => {
    const model = tinySwin();
    const r = await synthesize(model, { ...STILL, method: 'spdfq', images: 2, iters: 0, apa: { blocks: 'all' } });
    expect(r.priors).toBeNull();
    expect(r.windowPriors!.map((t) => [t.stage, t.shape, t.window, t.blocks])).toEqual([
      [0, [2, 1, 2, 5, 5], [3, 3], [1, 2]],
      [1, [2, 1, 2, 3, 3], [3, 3], [3, 4]],
    ]);
    // Stage 1 is one 3×3 window: its map is one mixture summing to 1.
    const t1 = r.windowPriors![1];
    expect(t1.maps.subarray(0, 9).reduce((a, v) => a + v, 0)).toBeCloseTo(1, 5);
    // Stage 0: the top-left tile lies inside the 5×5 grid and sums to 1.
    const m0 = r.windowPriors![0].maps;
    let tile = 0;
    for (let y = 0; y < 3; y++) for (let q = 0; q < 3; q++) tile += m0[y * 5 + q];
    expect(tile).toBeCloseTo(1, 5);
    expect(Array.from(m0.subarray(0, 25))).not.toEqual(Array.from(m0.subarray(25, 50)));
    await model.dispose();
  });

  test('the gradient matches central differences through the model to the pixels (APA alone, shifted and padded windows)', async () => {
    const model = tinySwin();
    await checkGradient(model, { ...STILL, method: 'spdfq', images: 2, msr: false, ceWeight: 0, tv: { weight: 0 },
      apa: { loss: 'relative-mse', alpha: 5, blocks: 'all', priorPerBlock: true } }, 0, 5);
    await model.dispose();
  });

  test('the full SPDFQ objective (APA as KL, MSR, soft labels, TV, jitter) matches central differences', async () => {
    const model = tinySwin(8);
    await checkGradient(model, { preprocess: PRE, seed: 5, method: 'spdfq', images: 2, iters: 10, sl: true, apa: { alpha: 1 } }, 2, 1);
    await model.dispose();
  });
});

describe("PSAQ-ViT's patch-similarity entropy on a Swin", () => {
  // The value against float64: per block, each window's real rows' head-mean A·V features,
  // cosine similarities within the window, all windows of an image in one KDE evaluated at
  // 10 points between the batch-wide min and max, trapezoid entropy of f(p + 1e-4). (Its
  // gradient is not checked by differences of the total: PSAQ-ViT's endpoints carry no
  // gradient but move with the pixels, as for the ViT in test/synth.gradcheck.test.ts.)
  test('the window entropy equals a float64 reference from the attention outputs', async () => {
    const model = tinySwin(9);
    const c = model.config, B = 2;
    const o: SynthesisOptions = { ...STILL, rollFractions: [0, 0], method: 'psaq', images: B, ceWeight: 0, tv: { weight: 0 } };
    const x = randn(B * 2 * 10 * 10, rng(12), 0.6);
    const { losses } = await synthesisObjective(model, o, x, 0, 0, false);
    await model.forward(x, B);
    const h = 0.01, points = 10;
    let pse = 0;
    for (const [s, d] of c.depths.entries())
      for (let i = 0; i < d; i++) {
        let gh = c.imageHeight / c.patchSize, gw = c.imageWidth / c.patchSize;
        for (let k = 0; k < s; k++) [gh, gw] = [Math.ceil(gh / 2), Math.ceil(gw / 2)];
        const geo = windowGeometry(gh, gw, c.windowSize, i % 2 === 1);
        const slots = windowSources(geo);
        const { data: av, shape } = await model.output(`attention_values.${s}.${i}`);
        const [, nW, N, D] = shape;
        const H = c.numHeads[s], hd = D / H;
        const sims: number[][] = [];
        for (let b = 0; b < B; b++) {
          const all: number[] = [];
          for (let w = 0; w < nW; w++) {
            const feats = Array.from({ length: N }, (_, t) => t).filter((t) => slots[w * N + t] >= 0).map((t) => {
              const row = ((b * nW + w) * N + t) * D;
              return Array.from({ length: hd }, (_, j) => { let f = 0; for (let q = 0; q < H; q++) f += av[row + q * hd + j]; return f / H; });
            });
            const unit = feats.map((f) => { const n = Math.max(Math.hypot(...f), 1e-8); return f.map((v) => v / n); });
            for (const u of unit) for (const v of unit) all.push(u.reduce((a, e, j) => a + e * v[j], 0));
          }
          sims.push(all);
        }
        const lo = Math.min(...sims.flat()), hi = Math.max(...sims.flat());
        for (const all of sims) {
          const t = Array.from({ length: points }, (_, k) => lo + ((hi - lo) * k) / (points - 1));
          const f = t.map((tk) => {
            const p = all.reduce((a, sm) => a + Math.exp(-((tk - sm) ** 2) / (2 * h * h)), 0) / (all.length * h * Math.sqrt(2 * Math.PI)) + 1e-4;
            return -p * Math.log(p);
          });
          let ent = 0;
          for (let k = 1; k < points; k++) ent += ((t[k] - t[k - 1]) * (f[k] + f[k - 1])) / 2;
          pse -= ent / B;
        }
      }
    expect(Math.abs(losses.pse - pse)).toBeLessThan(2e-3 * Math.abs(pse) + 1e-5);
    await model.dispose();
  });
});

describe('short runs on a tiny Swin', () => {
  test.each([
    ['spdfq', { msr: false }],
    ['psaq', {}],
    ['inversion', {}],
  ] as const)('%s lowers its loss and repeats bit for bit for a seed', async (method, extra) => {
    const model = tinySwin(11);
    const o: SynthesisOptions = { preprocess: PRE, method, images: 2, iters: 12, seed: 4, ...extra };
    const a = await synthesize(model, o);
    const b = await synthesize(model, o);
    expect(a.stepsDone).toBe(12);
    const first = a.losses[0], last = a.losses[a.losses.length - 1];
    expect(last.total).toBeLessThan(first.total);
    expect(Buffer.from(b.images.buffer).equals(Buffer.from(a.images.buffer))).toBe(true);
    await model.dispose();
  });

  test('noise needs no passes and has the model\'s shape', async () => {
    const model = tinySwin();
    const r = await synthesize(model, { preprocess: PRE, method: 'noise', images: 3 });
    expect(r.shape).toEqual([3, 2, 10, 10]);
    await model.dispose();
  });
});

describe('bad input on a Swin gets coded errors', () => {
  test('the class query, blocks past the last, wrong image lengths, and the native re-check', async () => {
    const model = tinySwin();
    await expect(synthesize(model, { preprocess: PRE, apa: { query: 'class' } })).rejects.toMatchObject({
      code: 'E_CONFIG', message: expect.stringMatching(/apa.query/) });
    await expect(synthesize(model, { preprocess: PRE, apa: { blocks: [5] } })).rejects.toMatchObject({ code: 'E_CONFIG' });
    await expect(synthesisObjective(model, { preprocess: PRE, images: 2 }, new Float32Array(7), 0, 1)).rejects.toMatchObject({
      code: 'E_TENSOR', message: expect.stringMatching(/400 floats/) });
    const shape = synthModelShape(model.config);
    const cfg = { ...nativeSynthConfig(shape, resolveSynthesisOptions(shape, { preprocess: PRE, images: 2 })), apaQuery: 'class' as const };
    expect(() => nativeAddon().synthPlan(model.nativeHandle(), cfg)).toThrow(/apa_query: expected 'mean' for a model without a class token/);
    const blocks = { ...cfg, apaQuery: 'mean' as const, pseBlocks: [4], pse: true };
    expect(() => nativeAddon().synthPlan(model.nativeHandle(), blocks)).toThrow(/pse_blocks\[\]: expected a block index in \[0, blocks\)/);
    await model.dispose();
  });
});

describe('the CLI on an imported Swin', () => {
  const file = path.join(SWIN_FIXTURE_DIR, 'swin_pad_op17.onnx');

  test.each(['spdfq', 'psaq', 'inversion', 'noise'])('synth --method %s writes the images', async (method) => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), `swin-synth-${method}-`));
    const r = await cli(['synth', '--model', file, '--method', method, '--images', '2', '--iters', '2', '--out', out, '--no-pngs', '--no-progress', '--threads', '1', '--force']);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    expect(r.stderr).toMatch(new RegExp(`2 ${method} images`));
    expect(fs.existsSync(path.join(out, 'images.npy'))).toBe(true);
    fs.rmSync(out, { recursive: true, force: true });
  });

  test('quantize takes it too (its result is checked in test/swin.quant.test.ts)', async () => {
    const out = path.join(os.tmpdir(), `swin-q-${process.pid}.onnx`);
    const r = await cli(['quantize', '--model', file, '--calib', 'noise', '--images', '4', '--out', out]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    fs.rmSync(out, { force: true });
  });
});
