// The model-agnostic trainer (trainModel) on a tiny Swin: it learns a separable toy task
// in a few steps, a run resumed from its checkpoint ends bit for bit where an
// uninterrupted one does, and weight decay spares Swin's bias tables, norms and biases.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createSwin, randomSwinWeights, completeSwinConfig, swinParamSpecs } from '../lib/swin';
import { trainModel, decayMask, top1 } from '../lib/train/trainer';
import { loadCheckpoint, saveCheckpoint } from '../lib/train/checkpoint';
import { LabelledImages } from '../lib/data/labelled-images';
import { randn, rng } from './helpers/random';

const config = completeSwinConfig({
  imageSize: 8, channels: 3, patchSize: 2, windowSize: 2, embedDim: 8, depths: [2, 1], numHeads: [1, 2], mlpRatio: 2, numClasses: 3,
});

/** Class k: channel k brighter by 1.5 everywhere, on unit noise (separable by colour). */
function toy(count: number, seed: number): LabelledImages {
  const r = rng(seed);
  const images = randn(count * 3 * 64, r);
  const labels = Int32Array.from({ length: count }, (_, i) => i % 3);
  for (let i = 0; i < count; i++) for (let p = 0; p < 64; p++) images[i * 192 + labels[i] * 64 + p] += 1.5;
  return { images, labels, count, channels: 3, height: 8, width: 8 };
}

const recipe = { epochs: 3, batch: 8, lr: 3e-3, cropPadding: 1, hflip: true, padFill: [0, 0, 0], warmupEpochs: 0 };

test('training decreases the loss and learns the toy task', async () => {
  const model = createSwin(config, randomSwinWeights(config, 1), { threads: 1 });
  try {
    const train = toy(48, 1);
    const test = toy(30, 2);
    const losses: number[] = [];
    const res = await trainModel(model, train, { ...recipe, epochs: 4, onStep: (s) => losses.push(s.loss) });
    expect(losses).toHaveLength(4 * 6);
    const first = losses.slice(0, 3).reduce((a, b) => a + b) / 3;
    const last = losses.slice(-3).reduce((a, b) => a + b) / 3;
    expect(first).toBeGreaterThan(1.0); // ln 3 = 1.10 at chance
    expect(last).toBeLessThan(0.75 * first);
    expect(res.epochs[3].loss).toBeLessThan(res.epochs[0].loss);
    expect(await top1(model, test)).toBeGreaterThan(0.8);
  } finally {
    await model.dispose();
  }
});

async function paramsAfter(resumeAt: number | null): Promise<Float32Array> {
  const set = toy(24, 3);
  const model = createSwin(config, randomSwinWeights(config, 1), { threads: 1 });
  try {
    if (resumeAt === null) {
      await trainModel(model, set, recipe);
      return await model.exclusive(async () => model.nativeHandle().getParams());
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-swin-ckpt-'));
    await expect(
      trainModel(model, set, {
        ...recipe,
        onEpoch: (e, state) => {
          saveCheckpoint(dir, state, { recipe: 'swin test' });
          if (e.epoch === resumeAt) throw new Error('interrupted');
        },
      }),
    ).rejects.toThrow('interrupted');
    const saved = loadCheckpoint(dir)!;
    expect(saved.state.epoch).toBe(resumeAt);
    // A fresh model with other weights: everything must come from the checkpoint.
    const fresh = createSwin(config, randomSwinWeights(config, 99), { threads: 1 });
    try {
      const res = await trainModel(fresh, set, { ...recipe, resumeFrom: saved.state });
      expect(res.epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
      return await fresh.exclusive(async () => fresh.nativeHandle().getParams());
    } finally {
      await fresh.dispose();
    }
  } finally {
    await model.dispose();
  }
}

test('resuming a Swin run after epoch 1 or 2 gives the weights of an uninterrupted run, bit for bit', async () => {
  const straight = await paramsAfter(null);
  for (const at of [1, 2]) {
    const resumed = await paramsAfter(at);
    expect(Buffer.from(resumed.buffer).equals(Buffer.from(straight.buffer))).toBe(true);
  }
});

test('weight decay: on Linear and conv weights only, not on bias tables, norms or biases', () => {
  const specs = swinParamSpecs(config);
  const mask = decayMask(specs, specs.reduce((s, p) => s + p.size, 0));
  const decayed = specs.filter((s) => mask[s.offset] === 1).map((s) => s.name);
  expect(decayed.some((n) => n.includes('relative_position_bias_table'))).toBe(false);
  expect(decayed.some((n) => n.endsWith('.bias'))).toBe(false);
  expect(decayed).toEqual(expect.arrayContaining(['features.0.0.weight', 'features.1.0.attn.qkv.weight', 'features.1.0.mlp.0.weight', 'features.2.reduction.weight', 'head.weight']));
  // Every LayerNorm weight (1-D) is spared, the patch embedding's norm (features.0.2) included.
  expect(decayed.filter((n) => specs.find((s) => s.name === n)!.shape.length < 2)).toEqual([]);
  expect(specs.filter((s) => s.name.includes('relative_position_bias_table')).length).toBe(3);
  expect(() => decayMask(specs, 5)).toThrow(/cover \d+ floats, the model's arena holds 5/);
});
