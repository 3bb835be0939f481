// quantize() end to end on small models: every stage runs, reconstruction lowers each
// block's output error, more bits mean a closer model, options are validated, and the
// source model is left untouched.

import { createVit, VitModel } from '../lib/vit';
import { completeVitConfig, VitConfigInput } from '../lib/vit-config';
import { quantize } from '../lib/quant/quantize';
import { planQuantization } from '../lib/quant/quant-config';
import { randn, rng } from './helpers/random';
import { scaledRandomWeights } from './helpers/weights';

const CFG: VitConfigInput = { imageSize: 16, channels: 3, patchSize: 4, embedDim: 32, depth: 2, numHeads: 4, mlpDim: 64, numClasses: 6 };

function weightsFor(config: VitConfigInput, seed: number): Map<string, Float32Array> {
  return scaledRandomWeights(config, seed);
}

async function setup(config: VitConfigInput = CFG): Promise<{ model: VitModel; images: Float32Array; n: number }> {
  const model = await createVit(config, weightsFor(config, 3), { threads: 2 });
  const n = 16;
  return { model, images: randn(n * model.imageLength(), rng(5)), n };
}

function relDiff(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  a.forEach((v, i) => {
    num += (v - b[i]) ** 2;
    den += b[i] ** 2;
  });
  return Math.sqrt(num / den);
}

test('W8A8 is close to full precision, W4A4 further away, W3A3 further still', async () => {
  const { model, images, n } = await setup();
  const fp = (await model.forward(images, n)).logits;
  const errs: number[] = [];
  for (const bits of ['w8a8', 'w4a4', 'w3a3'] as const) {
    const q = await quantize(model, images, n, { bits, reconstruction: false, threads: 2 });
    errs.push(relDiff(await q.forward(images, n), fp));
    await q.dispose();
  }
  expect(errs[1]).toBeGreaterThan(errs[0]);
  expect(errs[2]).toBeGreaterThan(errs[1]);
  // log√2 keeps a √2 relative step at any bit width, so at 8 bits a uniform softmax
  // quantizer is much closer; with it W8A8 is within a few percent of full precision.
  const uniform = await quantize(model, images, n, { bits: 'w8a8', probs: 'uniform', reconstruction: false, threads: 2 });
  expect(relDiff(await uniform.forward(images, n), fp)).toBeLessThan(0.05);
  await uniform.dispose();
  // The source model is untouched.
  expect(Array.from((await model.forward(images, n)).logits)).toEqual(Array.from(fp));
  await model.dispose();
});

test('block reconstruction lowers every block’s output error and reports progress', async () => {
  const { model, images, n } = await setup();
  const seen: number[] = [];
  const q = await quantize(model, images, n, {
    bits: 'w4a4',
    // The blocks alone (lr 1e-3 would make the 4-bit patch weights' updates oscillate).
    reconstruction: { iters: 60, lr: 1e-3, embed: false, head: false },
    threads: 2,
    onProgress: (p) => p.reconstruct && seen.push(p.reconstruct.iter),
  });
  expect(q.report.reconstruction).toHaveLength(2);
  for (const b of q.report.reconstruction) expect(b.mseAfter).toBeLessThan(b.mseBefore);
  expect(seen.length).toBeGreaterThan(0);
  expect(Math.max(...seen)).toBe(60);
  await q.dispose();
  await model.dispose();
});

test('every quantized model kind runs: post-norm (no reparameterization), distilled without qkv bias, PSAQ preset', async () => {
  const variants: [VitConfigInput, Parameters<typeof quantize>[3]][] = [
    [{ ...CFG, classToken: false, pooling: 'mean', normPlacement: 'post' }, { bits: 'w6a6', reconstruction: { iters: 5 } }],
    [{ ...CFG, distToken: true, qkvBias: false }, { bits: 'w4a8', reconstruction: { iters: 5 } }],
    [CFG, { preset: 'psaq', bits: 'w8a8', reconstruction: false }],
  ];
  for (const [config, options] of variants) {
    const { model, images, n } = await setup(config);
    const fp = (await model.forward(images, n)).logits;
    const q = await quantize(model, images, n, { ...options, threads: 2 });
    const out = await q.forward(images, n);
    expect(out.every(Number.isFinite)).toBe(true);
    expect(relDiff(out, fp)).toBeLessThan(0.5);
    await q.dispose();
    await model.dispose();
  }
});

test('options are validated with expected vs received', () => {
  const c = completeVitConfig(CFG);
  expect(() => planQuantization(c, { bits: 'w5a5' as never })).toThrow(/bits: expected one of w8a8, w6a6, w4a8, w4a4, w3a3 or \{ weight, act \}, received 'w5a5'/);
  expect(() => planQuantization(c, { bits: { weight: 9, act: 4 } })).toThrow(/bits.weight: expected an integer number of bits in \[2, 8\], received 9/);
  expect(() => planQuantization(c, { overrides: { 'blocks.9.fc2_in': 8 } })).toThrow(/'blocks.9.fc2_in' names no quantized weight or activation site/);
  const plan = planQuantization(c, { firstLastBits: 8, bits: 'w4a4' });
  expect(plan.weights.find((w) => w.name === 'head.weight')!.spec.bits).toBe(8);
  expect(plan.weights.find((w) => w.name === 'blocks.0.mlp.fc1.weight')!.spec.bits).toBe(4);
  expect(plan.reconstruction!.iters).toBe(200); // docs/results.md, "The papers' budget"
  expect(plan.reconstruction!.checkEvery).toBe(10);
  expect(planQuantization(c, { bits: 'w6a6' }).reconstruction!.iters).toBe(200);
});

test('calibration images are checked', async () => {
  const { model, images, n } = await setup();
  await expect(quantize(model, images.subarray(0, 10), n)).rejects.toThrow(/calibration images: expected a Float32Array of 16 × 768 floats, received 10/);
  const bad = images.slice();
  bad[5] = NaN;
  await expect(quantize(model, bad, n)).rejects.toMatchObject({ code: 'E_NUMERIC' });
  await model.dispose();
});

test('inputRange: the image quantizer covers the known pixel range, not the calibration images\' range', async () => {
  const { model, images, n } = await setup();
  // Calibration images that use only a sliver of the pixel range.
  const narrow = images.map((v) => v * 0.05);
  const q = await quantize(model, narrow, n, { bits: 'w8a8', reconstruction: false, threads: 2, inputRange: [-2, 3] });
  const pin = q.sites.find((s) => s.site === 'patch_in')!;
  expect((pin.qmin - pin.zero) * pin.scale).toBeCloseTo(-2, 2);
  expect((pin.qmax - pin.zero) * pin.scale).toBeCloseTo(3, 2);
  const q2 = await quantize(model, narrow, n, { bits: 'w8a8', reconstruction: false, threads: 2 });
  const pin2 = q2.sites.find((s) => s.site === 'patch_in')!;
  expect((pin2.qmax - pin2.zero) * pin2.scale).toBeLessThan(1);
  await q.dispose();
  await q2.dispose();
  await model.dispose();
});
