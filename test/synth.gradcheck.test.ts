// The whole synthesis objective (what the loop optimizes at one step: jitter, MSR regions
// through crop + resize, soft or hard cross-entropy, APA at the attention taps, TV, PSAQ-ViT's
// entropy at the A·V taps) against finite differences on a tiny model, and micro-batching
// against the single-batch result.

import { nativeAddon } from '../lib/native';
import { SynthesisOptions } from '../lib/synth/options';
import { synthesisObjective, synthesisPlan } from '../lib/synth/synthesize';
import { createVit, VitModel } from '../lib/vit';
import { VitConfigInput } from '../lib/vit-config';
import { randn, rng } from './helpers/random';
import { sizableWeights } from './helpers/synth-model';

const TINY: VitConfigInput = { imageSize: 8, channels: 3, patchSize: 2, embedDim: 12, depth: 2, numHeads: 2, mlpDim: 16, numClasses: 5 };
const TINY_MEAN: VitConfigInput = { ...TINY, classToken: false, pooling: 'mean', depth: 3 };
const PRE = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };

async function tinyModel(config: VitConfigInput): Promise<VitModel> {
  return createVit(config, sizableWeights(config, 21), { threads: 1, reference: true });
}

/** (f(x + h·v) − f(x − h·v)) / 2h against grad·v for a few random directions v, and a few
 *  single pixels: the objective at a fixed step is a deterministic function of the images. */
async function checkGradient(model: VitModel, options: SynthesisOptions, step: number, alpha: number): Promise<void> {
  const B = options.images!;
  const L = model.imageLength();
  const r = rng(100 + step);
  const x = randn(B * L, r, 0.6);
  const { losses, grad } = await synthesisObjective(model, options, x, step, alpha, true);
  expect(grad).not.toBeNull();
  const g = grad!;
  const total = async (y: Float32Array) => (await synthesisObjective(model, options, y, step, alpha, false)).losses.total;
  expect(losses.total).toBeCloseTo(await total(x), 6);
  const h = 2e-3;
  for (let d = 0; d < 3; d++) {
    const v = randn(x.length, r);
    const norm = Math.sqrt(v.reduce((a, e) => a + e * e, 0));
    for (let i = 0; i < v.length; i++) v[i] /= norm;
    const up = x.map((e, i) => e + h * v[i]);
    const down = x.map((e, i) => e - h * v[i]);
    const fdv = ((await total(up)) - (await total(down))) / (2 * h);
    const an = g.reduce((a, e, i) => a + e * v[i], 0);
    expect(Math.abs(fdv - an)).toBeLessThan(0.02 * Math.abs(an) + 1e-4);
  }
  // Single pixels, chosen where the gradient is largest (clearly non-zero).
  const order = Array.from(g.keys()).sort((a, b) => Math.abs(g[b]) - Math.abs(g[a])).slice(0, 4);
  for (const i of order) {
    const up = x.slice(), down = x.slice();
    up[i] += h;
    down[i] -= h;
    const fdi = ((await total(up)) - (await total(down))) / (2 * h);
    expect(Math.abs(fdi - g[i])).toBeLessThan(0.02 * Math.abs(g[i]) + 1e-4);
  }
}

describe('objective gradient vs finite differences', () => {
  test('SPDFQ: APA + MSR + soft labels + TV, class-token model', async () => {
    const m = await tinyModel(TINY);
    await checkGradient(m, { method: 'spdfq', images: 3, iters: 10, preprocess: PRE, seed: 4 }, 3, 50);
    await m.dispose();
  });

  test('SPDFQ on a mean-pooled model (mean-query APA), prior per block, L1 TV, resampled region classes', async () => {
    const m = await tinyModel(TINY_MEAN);
    await checkGradient(m, {
      method: 'spdfq', images: 2, iters: 10, preprocess: PRE, seed: 2,
      apa: { priorPerBlock: true, blocks: 'all', loss: 'mse' }, msr: { regionClasses: 'resample' }, tv: { form: 'l1', weight: 0.05 },
    }, 1, 20);
    await m.dispose();
  });

  // APA's KL form (the form used when APA is on) with SPDFQ's default TV weight. The KL's log
  // makes it far more curved than the MSE: at α1 = 20 the central difference with this step
  // is itself inaccurate, so the check uses α1 = 1.
  test('SPDFQ on a mean-pooled model, APA as KL, prior per block, default L1 TV weight', async () => {
    const m = await tinyModel(TINY_MEAN);
    await checkGradient(m, {
      method: 'spdfq', images: 2, iters: 10, preprocess: PRE, seed: 2,
      apa: { priorPerBlock: true, blocks: 'all', loss: 'kl' }, msr: { regionClasses: 'resample' }, tv: { form: 'l1' },
    }, 1, 1);
    await m.dispose();
  });

  test('hard labels with MSR (SL ablated), and the plain inversion', async () => {
    const m = await tinyModel(TINY);
    await checkGradient(m, { method: 'spdfq', images: 2, iters: 10, preprocess: PRE, sl: false, apa: false }, 2, 0);
    await checkGradient(m, { method: 'inversion', images: 2, iters: 10, preprocess: PRE }, 5, 0);
    await m.dispose();
  });

  test("PSAQ-ViT's |TV − v| and hard labels (entropy weight 0: its KDE range moves with x)", async () => {
    const m = await tinyModel(TINY);
    await checkGradient(m, { method: 'psaq', images: 2, iters: 10, preprocess: PRE, pse: { weight: 0 } }, 1, 0);
    await m.dispose();
  });
});

test("PSAQ-ViT's entropy through the loop equals the kernel on the model's A·V, and its gradient the engine's backward from the kernel's tap gradient", async () => {
  const m = await tinyModel(TINY);
  const c = m.config;
  const B = 2, N = m.tokens;
  const options: SynthesisOptions = { method: 'psaq', images: B, iters: 10, preprocess: PRE, flip: false, rollFractions: [0, 0], ceWeight: 0, tv: { form: 'none' } };
  const x = randn(B * m.imageLength(), rng(8), 0.6);
  const { losses, grad } = await synthesisObjective(m, options, x, 0, 0, true);
  const fwd = await m.forward(x, B, { attentionValues: true });
  const K = nativeAddon().synthKernels;
  let pse = 0;
  const taps = fwd.attentionValues!.map((av) => {
    const r = K.patchSimilarityEntropy(av, B, N, c.embedDim, c.numHeads, 1, 0.01, 10);
    pse -= r.entropy / B;
    return r.grad.map((v) => -v / B);
  });
  expect(losses.pse).toBeCloseTo(pse, 6);
  const back = await m.backward(new Float32Array(B * c.numClasses), { tapAttentionValues: taps });
  const scale = Math.max(...Array.from(back.inputGrad, Math.abs));
  expect(scale).toBeGreaterThan(0);
  grad!.forEach((v, i) => expect(Math.abs(v - back.inputGrad[i])).toBeLessThan(1e-4 * scale));
  await m.dispose();
});

test('micro-batching is exact: a tight memory budget gives the losses and gradient of one batch', async () => {
  const m = await tinyModel(TINY);
  const base: SynthesisOptions = { method: 'spdfq', images: 5, iters: 10, preprocess: PRE, seed: 9 };
  const whole = await synthesisPlan(m, base);
  expect(whole.chunkImages).toBe(5);
  // A budget that leaves room for activations of only about two images per pass.
  const roomy = await synthesisPlan(m, { ...base, memoryBudgetBytes: 1e12 });
  const tight = { ...base, memoryBudgetBytes: roomy.bytes - m.activationBytes(roomy.regionBatch) + m.activationBytes(2) + 50000 };
  const plan = await synthesisPlan(m, tight);
  expect(plan.chunkImages).toBeLessThan(5);
  expect(plan.regionBatch).toBeLessThan(20);
  const x = randn(5 * m.imageLength(), rng(3), 0.6);
  const a = await synthesisObjective(m, base, x, 2, 30, true);
  const b = await synthesisObjective(m, tight, x, 2, 30, true);
  for (const k of ['total', 'apa', 'cls', 'tv'] as const) expect(b.losses[k]).toBeCloseTo(a.losses[k], 5);
  const scale = Math.max(...Array.from(a.grad!, Math.abs));
  a.grad!.forEach((v, i) => expect(Math.abs(v - b.grad![i])).toBeLessThan(1e-5 * scale));
  // PSAQ-ViT with micro-batches finds the batch-wide similarity range in a first pass.
  const pa: SynthesisOptions = { method: 'psaq', images: 4, iters: 10, preprocess: PRE };
  const pb: SynthesisOptions = { ...pa, memoryBudgetBytes: (await synthesisPlan(m, pa)).bytes - m.activationBytes(4) + m.activationBytes(1) + 20000 };
  expect((await synthesisPlan(m, pb)).chunkImages).toBeLessThan(4);
  const y = randn(4 * m.imageLength(), rng(4), 0.6);
  const ra = await synthesisObjective(m, pa, y, 1, 0, true);
  const rb = await synthesisObjective(m, pb, y, 1, 0, true);
  expect(rb.losses.pse).toBeCloseTo(ra.losses.pse, 5);
  const s2 = Math.max(...Array.from(ra.grad!, Math.abs));
  ra.grad!.forEach((v, i) => expect(Math.abs(v - rb.grad![i])).toBeLessThan(1e-5 * s2));
  await m.dispose();
});
