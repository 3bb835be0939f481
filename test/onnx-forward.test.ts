/** @jest-environment ./test/helpers/shared-realm-environment.js */
// NEEDS THE NATIVE ENGINE (lib/vit.ts, built addon). For every fixture, our engine's logits
// equal onnxruntime-node's on the same random input (max abs error ≤ 1e-4 × max |logit|),
// and an fp32 export with new weights runs in onnxruntime exactly as our forward does.

import * as path from 'path';
import { SpdfqError } from '../lib/errors';
import { exportFp32 } from '../lib/onnx/export-fp32';
import { loadModel } from '../lib/onnx/load-model';
import { listFixtures, LOGIT_TOLERANCE, ortLogits, randomImages, referenceInput, relativeError, seededValues, tmpDir } from './fixtures/onnx/helpers';

describe.each(listFixtures().map((f) => [f.name, f] as const))('%s', (_name, f) => {
  test('engine logits = onnxruntime logits', async () => {
    const model = await loadModel(f.path, { threads: 1 });
    try {
      const batch = 3;
      const images = randomImages(model.config, batch, 21);
      const ours = await model.forward(images, batch);
      const theirs = await ortLogits(f.path, model.inputName, model.outputName, images, model.config, batch);
      expect(relativeError(theirs, ours)).toBeLessThan(LOGIT_TOLERANCE);
      const reference = await model.forward(referenceInput(model.config, f.meta.referenceBatch), f.meta.referenceBatch);
      expect(relativeError(f.meta.torchLogits, reference)).toBeLessThan(LOGIT_TOLERANCE);
    } finally {
      await model.dispose();
    }
  });

  test('fp32 export with new weights: onnxruntime on the file = our forward', async () => {
    const model = await loadModel(f.path, { threads: 1 });
    const weights = new Map<string, Float32Array>();
    let k = 0;
    for (const [name, w] of model.weights) {
      const noise = seededValues(w.length, 31 * k++ + 5, 0.05);
      weights.set(name, w.map((v, i) => 0.9 * v + noise[i]));
    }
    const out = path.join(tmpDir('fwd-export'), 'model.onnx');
    await exportFp32(model, weights, out);
    const exported = await loadModel(out, { threads: 1 });
    try {
      const batch = 2;
      const images = randomImages(model.config, batch, 4);
      const ours = await exported.forward(images, batch);
      const theirs = await ortLogits(out, model.inputName, model.outputName, images, model.config, batch);
      expect(relativeError(theirs, ours)).toBeLessThan(LOGIT_TOLERANCE);
    } finally {
      await exported.dispose();
      await model.dispose();
    }
  });
});

test('forward checks the image buffer before calling the engine', async () => {
  const f = listFixtures()[0];
  const model = await loadModel(f.path);
  await expect(model.forward(new Float32Array(7), 1)).rejects.toThrow(SpdfqError);
  await expect(model.forward(new Float32Array(7), 1)).rejects.toThrow(/expected 1 images of \[3, 32, 32\] = 3072 floats/);
  await expect(model.forward(new Float32Array(0), 0)).rejects.toThrow(/batch must be a positive integer/);
  await model.dispose();
});
