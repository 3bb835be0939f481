// SwinModel's flat parameter arena (getParams / setParams) and flat gradients (getGrads),
// as the trainer drives them: the arena is the named weights back to back in paramSpecs
// order, setParams changes what the next pass computes, and the flat gradients sliced by
// the specs' shapes alone are PyTorch's autograd gradients by name.

import { createSwin, randomSwinWeights, swinParamSpecs, completeSwinConfig } from '../lib/swin';
import { relError } from './helpers/compare';
import { randn, rng } from './helpers/random';
import { loadSwinFixture, swinFixtureWeights } from './helpers/swin-fixtures';

const tiny = completeSwinConfig({
  imageSize: 8, channels: 3, patchSize: 2, windowSize: 2, embedDim: 8, depths: [2, 1], numHeads: [1, 2], mlpRatio: 2, numClasses: 3,
});

/** Slices of `flat` by consecutive shapes, ignoring the specs' own offsets. */
function sliceByShapes(flat: Float32Array): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  let off = 0;
  for (const s of swinParamSpecs(tiny)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    out.set(s.name, flat.subarray(off, off + n));
    off += n;
  }
  expect(off).toBe(flat.length);
  return out;
}

test('getParams returns the named weights back to back; setParams replaces them for the next pass', async () => {
  const a = randomSwinWeights(tiny, 1);
  const b = randomSwinWeights(tiny, 2);
  const model = createSwin(tiny, a, { threads: 1 });
  const other = createSwin(tiny, b, { threads: 1 });
  try {
    const flat = await model.exclusive(async () => model.nativeHandle().getParams());
    for (const [name, w] of sliceByShapes(flat)) expect({ name, w: Array.from(w) }).toEqual({ name, w: Array.from(a.get(name)!) });
    const x = randn(2 * 3 * 64, rng(5));
    const before = await model.forward(x, 2);
    const flatB = await other.exclusive(async () => other.nativeHandle().getParams());
    await model.exclusive(async () => model.nativeHandle().setParams(flatB));
    expect(Array.from(await model.forward(x, 2))).toEqual(Array.from(await other.forward(x, 2)));
    expect(Array.from(await model.forward(x, 2))).not.toEqual(Array.from(before));
    // getWeights / setWeights are the same arena by name.
    await model.setWeights(a);
    expect(Array.from(await model.forward(x, 2))).toEqual(Array.from(before));
    expect([...(await model.getWeights()).keys()]).toEqual(swinParamSpecs(tiny).map((s) => s.name));
    // A wrong length is refused by the binding, naming the argument.
    expect(() => model.nativeHandle().setParams(new Float32Array(3))).toThrow(/params: expected \d+ floats, received 3/);
  } finally {
    await model.dispose();
    await other.dispose();
  }
});

test('backwardWeights leaves the flat gradients that backward({ weightGrads }) returns by name', async () => {
  const model = createSwin(tiny, randomSwinWeights(tiny, 3), { threads: 1 });
  try {
    const x = randn(2 * 3 * 64, rng(6));
    const dl = randn(2 * 3, rng(7));
    // Gradients of other images first, so a backwardWeights that left them would be seen.
    await model.forward(randn(2 * 3 * 64, rng(8)), 2);
    await model.backward(dl, { weightGrads: true });
    await model.forward(x, 2);
    await model.backwardWeights(dl);
    const flat = await model.exclusive(async () => model.nativeHandle().getGrads());
    await model.forward(x, 2);
    const named = (await model.backward(dl, { weightGrads: true })).weightGrads!;
    for (const [name, g] of sliceByShapes(flat)) expect({ name, g: Array.from(g) }).toEqual({ name, g: Array.from(named.get(name)!) });
    expect(flat.some((v) => v !== 0)).toBe(true);
  } finally {
    await model.dispose();
  }
});

test('the flat gradients sliced by shape are autograd\'s gradients of torchvision\'s Swin (fixture swin_small)', async () => {
  const fx = loadSwinFixture('swin_small');
  const model = createSwin(fx.config, swinFixtureWeights(fx), { threads: 1 });
  try {
    await model.forward(fx.tensors.get('input')!.data, fx.batch);
    await model.backwardWeights(fx.tensors.get('grad.logits')!.data);
    const flat = await model.exclusive(async () => model.nativeHandle().getGrads());
    let off = 0;
    let checked = 0;
    for (const s of model.paramSpecs) {
      const n = s.shape.reduce((a, b) => a * b, 1);
      const ref = fx.tensors.get(`grad.param.${s.name}`);
      if (ref) {
        expect({ name: s.name, err: relError(flat.subarray(off, off + n), ref.data) <= 1e-4 }).toEqual({ name: s.name, err: true });
        checked++;
      }
      off += n;
    }
    expect(checked).toBeGreaterThanOrEqual(4); // bias tables, a merge, a norm, the head …
  } finally {
    await model.dispose();
  }
});
