// The engine's TypeScript API as a user meets it: validation messages that say expected vs.
// received, errors thrown into JavaScript (never a crash), the memory budget, cancellation,
// queued concurrent calls, and work kept off the event loop.

import { createVit, randomVitWeights, VitModel } from '../lib/vit';
import { SpdfqError } from '../lib/errors';
import { VitConfigInput, vitParamSpecs, completeVitConfig } from '../lib/vit-config';
import { nativeAddon } from '../lib/native';
import { randn, rng } from './helpers/random';

const SMALL: VitConfigInput = { imageSize: 16, channels: 3, patchSize: 4, embedDim: 24, depth: 2, numHeads: 3, numClasses: 5 };
// Large enough that one forward takes a noticeable time on this machine.
const MEDIUM: VitConfigInput = { imageSize: 64, channels: 3, patchSize: 4, embedDim: 96, depth: 6, numHeads: 3, numClasses: 10 };

async function small(): Promise<VitModel> {
  return createVit(SMALL, randomVitWeights(SMALL, 1), { threads: 2 });
}

function images(config: VitConfigInput, batch: number, seed = 1): Float32Array {
  const c = completeVitConfig(config);
  return randn(batch * c.channels * c.imageHeight * c.imageWidth, rng(seed));
}

test('the native parameter layout is exactly vitParamSpecs (names, shapes, order)', async () => {
  for (const cfg of [SMALL, { ...SMALL, distToken: true, qkvBias: false }, { ...SMALL, classToken: false, normPlacement: 'post' as const }]) {
    const full = completeVitConfig(cfg);
    const native = new (nativeAddon().VitModel)(full, new Float32Array(vitParamSpecs(full).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0)), 1);
    expect(native.paramInfo().map((p) => [p.name, p.shape])).toEqual(vitParamSpecs(full).map((p) => [p.name, p.shape]));
    native.dispose();
  }
});

test('config errors name the field, the expectation and what was received', () => {
  expect(() => completeVitConfig({ ...SMALL, numHeads: 5 })).toThrow("ViT config field 'numHeads': expected a divisor of embedDim 24, received 5");
  expect(() => completeVitConfig({ ...SMALL, patchSize: 5 })).toThrow(/'patchSize': expected a divisor of the image size 16x16, received 5/);
  expect(() => completeVitConfig({ ...SMALL, pooling: 'max' as never })).toThrow(/'pooling': expected one of 'token', 'mean', 'mean-all', received "max"/);
  expect(() => completeVitConfig({ ...SMALL, classToken: false, pooling: 'token' })).toThrow(/'pooling'/);
});

test('weights: missing, extra and wrong-length tensors are named', async () => {
  const w = randomVitWeights(SMALL, 1);
  const missing = new Map(w);
  missing.delete('blocks.1.mlp.fc2.bias');
  await expect(createVit(SMALL, missing)).rejects.toThrow('missing weights for this config: blocks.1.mlp.fc2.bias');
  const extra = new Map(w).set('head_dist.weight', new Float32Array(5 * 24));
  await expect(createVit(SMALL, extra)).rejects.toThrow(/weights not used by this config.*head_dist.weight/);
  const wrong = new Map(w).set('pos_embed', new Float32Array(3));
  await expect(createVit(SMALL, wrong)).rejects.toThrow("weight 'pos_embed' [1, 17, 24]: expected 408 floats, received 3");
});

test('tensor errors say expected vs received, and the model stays usable', async () => {
  const m = await small();
  await expect(m.forward(new Float32Array(10), 1)).rejects.toThrow('images [1, 3, 16, 16]: expected 768 floats, received 10');
  await expect(m.forward(new Float64Array(768) as unknown as Float32Array, 1)).rejects.toThrow(/expected a Float32Array, received Float64Array/);
  await expect(m.forward(images(SMALL, 1), 0)).rejects.toThrow(/batch: expected an integer in \[1/);
  await expect(m.backward(new Float32Array(5))).rejects.toMatchObject({ code: 'E_STATE' });
  const out = await m.forward(images(SMALL, 2), 2);
  expect(out.logits).toHaveLength(10);
  await expect(m.backward(new Float32Array(3))).rejects.toThrow('dlogits [2, 5]: expected 10 floats, received 3');
  await expect(m.backward(new Float32Array(10), { tapAttention: [null] })).rejects.toThrow(/tapAttention: expected an array of 2 entries/);
  await expect(m.backward(new Float32Array(10), { tapAttention: [new Float32Array(4), null] })).rejects.toThrow(/tapAttention\[0\] \[2, 3, 17, 17\]: expected 1734 floats, received 4/);
  const g = await m.backward(new Float32Array(10).fill(0.1));
  expect(g.inputGrad).toHaveLength(2 * 768);
  await m.dispose();
  await expect(m.forward(images(SMALL, 1), 1)).rejects.toMatchObject({ code: 'E_STATE' });
});

test('the native side re-checks tensors even without the TypeScript layer', () => {
  const full = completeVitConfig(SMALL);
  const Native = nativeAddon().VitModel;
  expect(() => new Native(full, new Float32Array(7), 1)).toThrow(/params: expected \d+ floats, received 7/);
  expect(() => new Native({ ...full, numHeads: 5 }, new Float32Array(7), 1)).toThrow(/heads 5 must divide dim 24/);
  const n = new Native(full, new Float32Array(vitParamSpecs(full).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0)), 1);
  expect(() => n.forward(new Float32Array(5), 1)).toThrow('images: expected 768 floats, received 5');
  expect(() => n.attention(0)).toThrow(/no completed forward pass/);
  n.dispose();
});

test('activation memory: reported per batch, and a batch over the budget is a clear error', async () => {
  const m = await createVit(SMALL, randomVitWeights(SMALL, 1), { threads: 1, activationBudgetBytes: 4 << 20 });
  const b1 = m.activationBytes(1);
  const b8 = m.activationBytes(8);
  expect(b8).toBeGreaterThan(7 * b1 * 0.9);
  const fit = m.maxBatch(4 << 20);
  expect(m.activationBytes(fit)).toBeLessThanOrEqual(4 << 20);
  expect(m.activationBytes(fit + 1)).toBeGreaterThan(4 << 20);
  const err = await m.forward(images(SMALL, fit + 1), fit + 1).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(SpdfqError);
  expect((err as SpdfqError).code).toBe('E_MEMORY');
  expect((err as SpdfqError).message).toContain(`the largest batch that fits is ${fit}`);
  // Nothing is lost: the model still runs the batch that fits.
  await expect(m.forward(images(SMALL, fit), fit)).resolves.toHaveProperty('logits');
  await m.dispose();
});

test('concurrent calls are queued and give the same results as sequential ones', async () => {
  const m = await small();
  const x1 = images(SMALL, 1, 1);
  const x2 = images(SMALL, 3, 2);
  const [a, b] = await Promise.all([m.forward(x1, 1), m.forward(x2, 3)]);
  const a2 = await m.forward(x1, 1);
  expect(Array.from(a.logits)).toEqual(Array.from(a2.logits));
  expect(b.logits).toHaveLength(15);
  await m.dispose();
});

test('forward runs off the event loop and can be cancelled', async () => {
  const m = await createVit(MEDIUM, randomVitWeights(MEDIUM, 2), { threads: 1 });
  const x = images(MEDIUM, 16);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const t0 = Date.now();
  await m.forward(x, 16);
  const elapsed = Date.now() - t0;
  clearInterval(timer);
  // The timer kept firing while the native pass ran (a blocked loop would give ~0 ticks).
  if (elapsed > 20) expect(ticks).toBeGreaterThan(2);
  const ac = new AbortController();
  const p = m.forward(x, 16, { signal: ac.signal });
  setImmediate(() => ac.abort());
  await expect(p).rejects.toMatchObject({ code: 'E_CANCELLED' });
  const again = await m.forward(x.subarray(0, x.length / 16), 1);
  expect(again.logits).toHaveLength(10);
  await m.dispose();
});

test('the reference and fast kernels agree on a model with awkward sizes', async () => {
  const cfg: VitConfigInput = { imageHeight: 15, imageWidth: 25, channels: 3, patchSize: 5, embedDim: 30, depth: 2, numHeads: 5, mlpDim: 37, numClasses: 7, distToken: true };
  const w = randomVitWeights(cfg, 5);
  const fast = await createVit(cfg, w, { threads: 2 });
  const ref = await createVit(cfg, w, { reference: true });
  const x = images(cfg, 3);
  const [a, b] = [await fast.forward(x, 3), await ref.forward(x, 3)];
  const maxAbs = Math.max(...Array.from(b.logits, Math.abs));
  a.logits.forEach((v, i) => expect(Math.abs(v - b.logits[i])).toBeLessThan(1e-5 * maxAbs + 1e-7));
  await fast.dispose();
  await ref.dispose();
});
