// Training checkpoints: a run interrupted after an epoch and resumed from its checkpoint
// ends with exactly the weights of the same run made in one go (same AdamW moments,
// step count, shuffle order and random stream), and a checkpoint refuses another model.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createVit, randomVitWeights } from '../lib/vit';
import { completeVitConfig } from '../lib/vit-config';
import { trainVit } from '../lib/train/trainer';
import { loadCheckpoint, saveCheckpoint, TrainState } from '../lib/train/checkpoint';
import { LabelledImages } from '../lib/data/labelled-images';
import { randn, rng } from './helpers/random';

const config = completeVitConfig({ imageSize: 8, channels: 3, patchSize: 4, embedDim: 16, depth: 2, numHeads: 2, mlpDim: 32, numClasses: 3 });

function data(): LabelledImages {
  const count = 24;
  const r = rng(3);
  return { images: randn(count * 3 * 64, r), labels: Int32Array.from({ length: count }, (_, i) => i % 3), count, channels: 3, height: 8, width: 8 };
}

const recipe = { epochs: 3, batch: 8, lr: 3e-3, cropPadding: 1, hflip: true, padFill: [0, 0, 0] };

async function weightsAfter(resumeAt: number | null): Promise<Float32Array> {
  const set = data();
  const model = await createVit(config, randomVitWeights(config, 1), { threads: 1 });
  try {
    if (resumeAt === null) {
      await trainVit(model, set, recipe);
    } else {
      // First run: stop after `resumeAt` epochs by saving then throwing out of onEpoch.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-ckpt-'));
      await expect(
        trainVit(model, set, {
          ...recipe,
          onEpoch: (e, state) => {
            saveCheckpoint(dir, state, { recipe: 'test' });
            if (e.epoch === resumeAt) throw new Error('interrupted');
          },
        }),
      ).rejects.toThrow('interrupted');
      const saved = loadCheckpoint(dir)!;
      expect(saved.meta).toEqual({ recipe: 'test' });
      expect(saved.state.epoch).toBe(resumeAt);
      expect(saved.state.history).toHaveLength(resumeAt);
      // A fresh model (other initial weights): everything must come from the checkpoint.
      const fresh = await createVit(config, randomVitWeights(config, 99), { threads: 1 });
      try {
        const res = await trainVit(fresh, set, { ...recipe, resumeFrom: saved.state });
        expect(res.epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
        return fresh.nativeHandle().getParams();
      } finally {
        await fresh.dispose();
      }
    }
    return model.nativeHandle().getParams();
  } finally {
    await model.dispose();
  }
}

describe('training checkpoints', () => {
  test('resuming after epoch 1 or 2 gives the weights of an uninterrupted run, bit for bit', async () => {
    const straight = await weightsAfter(null);
    for (const at of [1, 2]) {
      const resumed = await weightsAfter(at);
      expect(Buffer.from(resumed.buffer).equals(Buffer.from(straight.buffer))).toBe(true);
    }
  });

  test('a checkpoint of another size is refused', async () => {
    const other = completeVitConfig({ ...config, embedDim: 8, numHeads: 2, mlpDim: 16 });
    const model = await createVit(other, randomVitWeights(other, 1), { threads: 1 });
    const state: TrainState = { epoch: 1, step: 3, rngState: 5, order: new Int32Array(24), params: new Float32Array(10), adamM: new Float32Array(10), adamV: new Float32Array(10), history: [] };
    await expect(trainVit(model, data(), { ...recipe, resumeFrom: state })).rejects.toThrow(/checkpoint holds 10 parameters/);
    await model.dispose();
  });

  test('a truncated checkpoint file is reported, not misread', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-ckpt-'));
    const state: TrainState = { epoch: 1, step: 3, rngState: 5, order: new Int32Array(4), params: new Float32Array(6), adamM: new Float32Array(6), adamV: new Float32Array(6), history: [] };
    saveCheckpoint(dir, state, {});
    const bin = path.join(dir, 'checkpoint.bin');
    fs.truncateSync(bin, 20);
    expect(() => loadCheckpoint(dir)).toThrow(/expected 88 bytes for 6 parameters, found 20/);
  });
});
