// The native Swin backward (stage 3, docs/swin.md) against two independent references:
// (a) autograd's float64 gradients of torchvision's SwinTransformer, stored in the fixtures
//     by scripts/fixtures/swin_fixture.py for a fixed upstream logit gradient (the input
//     gradient and the weights it lists: every relative-position bias table, the merges'
//     reduction and norm weights, the patch embedding, the last block, the head), for the
//     fast and the scalar reference kernels;
// (b) central finite differences on a tiny model that pads, shifts with the mask, merges
//     an odd grid and has a stage smaller than its window: every parameter tensor and the
//     input, through the logits and through injected attention-tap gradients together;
// (c) an injected attention-tap gradient alone, checked against finite differences of
//     the scalar Σ taps·G it is the gradient of.

import { createSwin, completeSwinConfig, SwinConfigInput, swinAttentionShape, swinParamSpecs, SwinModel } from '../lib/swin';
import { agree, rmsOf, sampledInputGradient, STEP } from './helpers/finite-differences';
import { shapeSize } from '../lib/vit-config';
import { relError } from './helpers/compare';
import { randn, rng } from './helpers/random';
import { sizableSwinWeights } from './helpers/synth-model';
import { listSwinFixtures, loadSwinFixture, swinFixtureWeights } from './helpers/swin-fixtures';

// The forward test's bar (test/swin.forward.test.ts): max |error| ≤ 1e-4 of the reference's
// largest magnitude. torchvision's own float32 backward is ~1e-6 from its float64 one on
// these fixtures (their JSON `torchvisionFloat32GradRelError`).
const TOL = 1e-4;

describe.each(listSwinFixtures())('fixture %s against autograd (float64)', (name) => {
  const fx = loadSwinFixture(name);
  const grads = [...fx.tensors.keys()].filter((k) => k.startsWith('grad.') && k !== 'grad.logits');

  test('stores the input gradient, a bias table, a merge reduction and a norm weight', () => {
    expect(grads).toEqual(expect.arrayContaining([
      'grad.input', 'grad.param.features.1.1.attn.relative_position_bias_table',
      'grad.param.features.2.reduction.weight', 'grad.param.features.2.norm.weight', 'grad.param.norm.weight']));
  });

  describe.each([
    ['fast', { threads: 2 }],
    ['reference', { threads: 1, reference: true }],
  ] as const)('%s kernels', (label, options) => {
    test('the input gradient and the weight gradients match PyTorch', async () => {
      const model = createSwin(fx.config, swinFixtureWeights(fx), options);
      await model.forward(fx.tensors.get('input')!.data, fx.batch);
      const res = await model.backward(fx.tensors.get('grad.logits')!.data, { weightGrads: true });
      const errors: Record<string, number> = {};
      for (const key of grads) {
        const ref = fx.tensors.get(key)!;
        const got = key === 'grad.input' ? res.inputGrad : res.weightGrads!.get(key.slice('grad.param.'.length))!;
        expect({ key, length: got.length }).toEqual({ key, length: ref.data.length });
        errors[key.slice('grad.'.length)] = relError(got, ref.data);
      }
      // The measured errors, for the record (docs/swin.md quotes them).
      console.log(`${name} ${label}: ${Object.entries(errors).map(([k, e]) => `${k} ${e.toExponential(1)}`).join(', ')}`);
      expect(Object.entries(errors).filter(([, e]) => !(e <= TOL))).toEqual([]);
      // Without weightGrads the input gradient is the same (no weight work, same path).
      await model.forward(fx.tensors.get('input')!.data, fx.batch);
      const plain = await model.backward(fx.tensors.get('grad.logits')!.data);
      expect(plain.weightGrads).toBeUndefined();
      expect(relError(plain.inputGrad, res.inputGrad)).toBe(0);
      await model.dispose();
    });
  });
});

// 10×10 images, patch 2: a 5×5 grid under a 3×3 window (padded to 6×6, shifted by 1 with
// the mask), an odd merge to 3×3, a last stage as large as its window (no shift).
const TINY: SwinConfigInput = {
  imageSize: 10, channels: 2, patchSize: 2, embedDim: 4, depths: [2, 2], numHeads: [2, 2], windowSize: 3,
  mlpRatio: 2, numClasses: 3,
};


/** The attention tap names, one per block, stage-major (the backward's tap order). */
function tapNames(depths: number[]): string[] {
  return depths.flatMap((d, s) => Array.from({ length: d }, (_, i) => `attention.${s}.${i}`));
}

interface Probe {
  G: Float32Array;  // on the logits
  Ga: Float32Array[];  // on each block's attention probabilities
}

/** S = Σ logits·G + Σ_l Σ attention_l·Ga_l after a forward on `images`. */
async function objective(model: SwinModel, images: Float32Array, batch: number, p: Probe): Promise<number> {
  const logits = await model.forward(images, batch);
  let s = 0;
  for (let i = 0; i < logits.length; i++) s += logits[i] * p.G[i];
  const names = tapNames(model.config.depths);
  for (let l = 0; l < names.length; l++) {
    const att = (await model.output(names[l])).data;
    for (let i = 0; i < att.length; i++) s += att[i] * p.Ga[l][i];
  }
  return s;
}


describe('finite differences on a tiny padded, shifted, odd-merging Swin', () => {
  const config = completeSwinConfig(TINY);
  const batch = 2;
  const r = rng(5);
  const images = randn(batch * config.channels * config.imageHeight * config.imageWidth, r);
  const stageOf = config.depths.flatMap((d, s) => Array<number>(d).fill(s));
  const probe: Probe = {
    G: randn(batch * config.numClasses, r),
    Ga: stageOf.map((s) => randn(shapeSize(swinAttentionShape(config, s, batch)), r, 3)),
  };

  test('the tap shape is what output() returns', async () => {
    const model = createSwin(TINY, sizableSwinWeights(TINY, 1), { threads: 1 });
    await model.forward(images, batch);
    for (const [l, n] of tapNames(config.depths).entries()) {
      expect((await model.output(n)).shape).toEqual(swinAttentionShape(config, stageOf[l], batch));
    }
    expect(swinAttentionShape(config, 0, batch)).toEqual([batch, 4, 2, 9, 9]);  // 6×6 padded grid, 3×3 windows
    await model.dispose();
  });

  test('input gradient and every parameter tensor agree with central differences (logits and taps)', async () => {
    const weights = sizableSwinWeights(TINY, 11);
    const model = createSwin(TINY, weights, { threads: 1, reference: true });
    await model.forward(images, batch);
    const res = await model.backward(probe.G, { tapAttention: probe.Ga, weightGrads: true });
    const failures: string[] = [];
    failures.push(...(await sampledInputGradient((x) => objective(model, x, batch, probe), images, res.inputGrad, r)));
    // Two sampled coordinates of every parameter tensor (the model is rebuilt per change:
    // SwinModel has no setWeights yet).
    const objectiveWith = async (w: Map<string, Float32Array>) => {
      const m = createSwin(TINY, w, { threads: 1, reference: true });
      const v = await objective(m, images, batch, probe);
      await m.dispose();
      return v;
    };
    let checked = 0;
    for (const spec of model.paramSpecs) {
      const grad = res.weightGrads!.get(spec.name)!;
      const rms = rmsOf(grad);
      for (let k = 0; k < 2; k++) {
        const i = Math.floor(r() * grad.length);
        const t = weights.get(spec.name)!.slice();
        const w = new Map(weights).set(spec.name, t);
        t[i] += STEP;
        const up = await objectiveWith(w);
        t[i] -= 2 * STEP;
        const down = await objectiveWith(w);
        const fd = (up - down) / (2 * STEP);
        if (!agree(fd, grad[i], rms)) failures.push(`${spec.name}[${i}]: fd ${fd} vs ${grad[i]}`);
        checked++;
      }
    }
    expect(checked).toBe(2 * model.paramSpecs.length);
    await model.dispose();
    expect(failures).toEqual([]);
  });

  test('an injected attention-tap gradient alone matches central differences of Σ taps·G', async () => {
    const weights = sizableSwinWeights(TINY, 12);
    const zeroG = new Float32Array(probe.G.length);
    for (const l of [1, 2]) {  // a shifted, masked block of stage 0; the first of stage 1
      const p: Probe = { G: zeroG, Ga: probe.Ga.map((a, m) => (m === l ? a : new Float32Array(a.length))) };
      const model = createSwin(TINY, weights, { threads: 2 });
      await model.forward(images, batch);
      const res = await model.backward(zeroG, { tapAttention: p.Ga.map((a, m) => (m === l ? a : null)), weightGrads: true });
      expect(rmsOf(res.inputGrad)).toBeGreaterThan(0);
      expect({ l, failures: await sampledInputGradient((x) => objective(model, x, batch, p), images, res.inputGrad, r, 5) }).toEqual({ l, failures: [] });
      // Blocks after the tapped one get no gradient; the tapped block's bias table does.
      const table = (s: number, i: number) => res.weightGrads!.get(`features.${1 + 2 * s}.${i}.attn.relative_position_bias_table`)!;
      expect(rmsOf(table(stageOf[l], l === 1 ? 1 : 0))).toBeGreaterThan(0);
      expect(rmsOf(table(1, 1))).toBe(0);
      await model.dispose();
    }
  });
});

describe('backward errors are clear, not crashes', () => {
  const config = completeSwinConfig(TINY);
  const images = randn(2 * 2 * 10 * 10, rng(3));

  test('before a forward, wrong lengths, wrong tap lists', async () => {
    const model = createSwin(TINY, sizableSwinWeights(TINY, 2), { threads: 1 });
    await expect(model.backward(new Float32Array(6))).rejects.toMatchObject({ code: 'E_STATE', message: expect.stringMatching(/completed forward/) });
    await model.forward(images, 2);
    await expect(model.backward(new Float32Array(5))).rejects.toMatchObject({
      code: 'E_TENSOR', message: expect.stringMatching(/dlogits \[2, 3\]: expected 6 floats, received 5/) });
    await expect(model.backward(new Float32Array(6).fill(NaN))).rejects.toMatchObject({ code: 'E_TENSOR', message: expect.stringMatching(/finite/) });
    await expect(model.backward(new Float32Array(6), { tapAttention: [null] })).rejects.toMatchObject({
      code: 'E_TENSOR', message: expect.stringMatching(/tapAttention: expected an array of 4 entries/) });
    await expect(model.backward(new Float32Array(6), { tapAttention: [null, new Float32Array(3), null, null] })).rejects.toMatchObject({
      code: 'E_TENSOR', message: expect.stringMatching(/tapAttention\[1\] \[2, 4, 2, 9, 9\]: expected 1296 floats, received 3/) });
    await expect(model.output('attention.2.0')).rejects.toMatchObject({ code: 'E_CONFIG' });
    // The native side re-checks what skipped the TypeScript layer.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const addon = require('../lib/native').nativeAddon();
    const native = new addon.SwinModel(config, new Float32Array(swinParamSpecs(config).reduce((s, p) => s + p.size, 0)), 1);
    expect(() => native.backward(new Float32Array(6), null, false)).toThrow(/completed forward/);
    expect(() => native.getGrads()).toThrow(/no weight gradients yet/);
    await native.forward(images, 2);
    expect(() => native.backward(new Float32Array(6), [null], false)).toThrow(/one entry per block \(4\), received 1/);
    expect(() => native.backward(new Float32Array(6), [null, null, null, new Float32Array(2)], false)).toThrow(/tapAttention\[3\]: expected 324 floats/);
    await model.dispose();
  });
});
