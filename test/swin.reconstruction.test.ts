/** @jest-environment ./test/helpers/shared-realm-environment.js */
// Block reconstruction of a Swin (docs/swin.md, "Stage: quantization"; native/quant/
// reconstruct_swin.cc), on the swin_pad fixture (a 10×10 grid padded to its 4×3 windows,
// shifted blocks, an odd 5×5 → 3×3 merge). References: (1) each stage's loss gradient in
// its trained tensors, straight-through at 4-bit weights, against central differences of
// the same loss on a float model holding those 4-bit weights (its own weights as plain
// floats); (2) every stage's output MSE falls; (3) onnxruntime on the reconstructed model's
// QDQ export computes the engine's logits; cancellation and bad options.

import * as ort from 'onnxruntime-node';
import { completeSwinConfig, createSwin, swinParamSpecs, SwinConfig } from '../lib/swin';
import { nativeAddon, WeightQuantizer } from '../lib/native';
import { quantize } from '../lib/quant/quantize';
import { planSwinQuantization, swinStageGrids } from '../lib/quant/swin-quant-config';
import { exportQuantizedSwinOnnx } from '../lib/quant/export-swin-onnx';
import { loadSwinFixture, swinFixtureWeights } from './helpers/swin-fixtures';
import { agree, rmsOf, STEP } from './helpers/finite-differences';
import { mulberry32 } from '../lib/synth/random';
import { argmaxRows, rmsRel } from './helpers/logits';

const fx = loadSwinFixture('swin_pad');
const config = completeSwinConfig(fx.config);
const IMG = config.channels * config.imageHeight * config.imageWidth;

function gaussian(n: number, seed: number, scale = 1): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return out;
}

/** The stages of swin_pad in data-flow order: name, floats per image in and out, and the
 *  tensors reconstruction trains in it. */
function stages(c: SwinConfig): { name: string; inLen: number; outLen: number; trained: string[] }[] {
  const grids = swinStageGrids(c);
  const tokens = (s: number) => grids[s][0] * grids[s][1] * c.embedDim * 2 ** s;
  const linears = (p: string) => ['attn.qkv', 'attn.proj', 'mlp.0', 'mlp.3'].flatMap((n) => [`${p}.${n}.weight`, `${p}.${n}.bias`]);
  const out: { name: string; inLen: number; outLen: number; trained: string[] }[] = [
    { name: 'features.0', inLen: IMG, outLen: tokens(0), trained: ['features.0.0.weight', 'features.0.0.bias'] },
  ];
  c.depths.forEach((depth, s) => {
    for (let i = 0; i < depth; i++) out.push({ name: `features.${2 * s + 1}.${i}`, inLen: tokens(s), outLen: tokens(s), trained: linears(`features.${2 * s + 1}.${i}`) });
    if (s + 1 < c.depths.length) out.push({ name: `features.${2 * s + 2}`, inLen: tokens(s), outLen: tokens(s + 1), trained: [`features.${2 * s + 2}.reduction.weight`] });
  });
  const last = c.depths.length - 1;
  out.push({ name: 'head', inLen: tokens(last), outLen: c.numClasses, trained: ['head.weight', 'head.bias'] });
  return out;
}

describe('the stage loss gradient', () => {
  const specs = swinParamSpecs(config);
  const byName = new Map(specs.map((p) => [p.name, p]));
  const plan = planSwinQuantization(config, { bits: 'w4a4', reparameterize: false });
  const addon = nativeAddon();
  const weights = swinFixtureWeights(fx);
  // 4-bit per-channel weight quantizers, and the weights they give as plain floats.
  const fake = new Map(weights);
  const quantizers: WeightQuantizer[] = plan.weights.map((w) => {
    const data = weights.get(w.name)!;
    const rows = byName.get(w.name)!.shape[0];
    const cols = data.length / rows;
    const q = { name: w.name, ...addon.quantSearch(data, rows, cols, 0, w.spec) };
    const out = new Float32Array(data.length);
    for (let r = 0; r < rows; r++) {
      out.set(addon.fakeQuant(data.subarray(r * cols, (r + 1) * cols), { kind: q.kind, bits: q.bits, scale: q.scales[r], zero: q.zeros[r], qmin: q.qmin, qmax: q.qmax }), r * cols);
    }
    fake.set(w.name, out);
    return q;
  });

  it.each(stages(config).map((s) => [s.name, s] as const))('%s: straight-through at the 4-bit weights, equal to central differences; no other tensor moves', async (_name, st) => {
    const batch = 2;
    const model = createSwin(config, weights, { threads: 1, reference: true });
    const reference = createSwin(config, fake, { threads: 1, reference: true });
    try {
      const h = model.nativeHandle();
      await model.exclusive(async () => h.setWeightQuant(quantizers));
      const input = gaussian(batch * st.inLen, 3);
      const target = gaussian(batch * st.outLen, 4, 0.5);
      const { loss, grads } = await model.exclusive(async () => h.stageGradient(st.name, input, target, batch));
      // A second step on the same input computes the same gradient (nothing accumulates).
      expect((await model.exclusive(async () => h.stageGradient(st.name, input, target, batch))).grads).toEqual(grads);
      const r = reference.nativeHandle();
      const lossAt = async (params: Float32Array) => reference.exclusive(async () => {
        r.setParams(params);
        return r.stageGradient(st.name, input, target, batch).loss;
      });
      const base = await reference.exclusive(async () => r.getParams());
      expect(await lossAt(base)).toBeCloseTo(loss, 6); // the reference holds the quantized weights
      const rand = mulberry32(st.inLen);
      const failures: string[] = [];
      for (const name of st.trained) {
        const p = byName.get(name)!;
        const g = grads.subarray(p.offset, p.offset + p.size);
        const rms = rmsOf(g);
        expect({ name, rms: rms > 0 }).toEqual({ name, rms: true });
        for (let k = 0; k < 3; k++) {
          const i = p.offset + Math.floor(rand() * p.size);
          const x = base.slice();
          x[i] += STEP;
          const up = await lossAt(x);
          x[i] -= 2 * STEP;
          const down = await lossAt(x);
          const fd = (up - down) / (2 * STEP);
          if (!agree(fd, grads[i], rms)) failures.push(`${name}[${i - p.offset}]: fd ${fd} vs ${grads[i]}`);
        }
      }
      expect(failures).toEqual([]);
      // LayerNorms, the bias tables and every other stage's tensors are frozen.
      const moved = specs.filter((p) => !st.trained.includes(p.name) && grads.subarray(p.offset, p.offset + p.size).some((v) => v !== 0)).map((p) => p.name);
      expect(moved).toEqual([]);
    } finally {
      await model.dispose();
      await reference.dispose();
    }
  }, 60000);

  it('an unknown stage or lengths that do not fit are errors that name them', async () => {
    const model = createSwin(config, weights, { threads: 1 });
    const h = model.nativeHandle();
    await model.exclusive(async () => {
      expect(() => h.stageGradient('features.9', new Float32Array(4), new Float32Array(4), 1)).toThrow(/unknown Swin reconstruction stage 'features.9': expected one of features.0, features.1.0, .*features.4, .*head/);
      expect(() => h.stageGradient('head', new Float32Array(4), new Float32Array(7), 1)).toThrow(/stage head: expected 288 input and 7 target floats per image for a batch of 1, received 4 and 7/);
    });
    await model.dispose();
  });
});

describe('reconstruction', () => {
  const N = 16;
  const calib = gaussian(N * IMG, 1);
  const test = gaussian(N * IMG, 2);

  it('every stage\'s output error falls; the QDQ export computes the engine\'s logits in onnxruntime', async () => {
    const fp = createSwin(config, swinFixtureWeights(fx), { threads: 2 });
    const progress: string[] = [];
    // The head input at 8 bits, as test/swin.quant.test.ts: a 4-bit one would round away
    // every upstream difference before the logits.
    const q = await quantize(fp, calib, N, {
      bits: 'w4a4', overrides: { head_in: 8 }, reconstruction: { iters: 60, lr: 1e-3 }, threads: 2,
      onProgress: (p) => p.reconstruct && p.reconstruct.iter === p.reconstruct.iters && progress.push(p.reconstruct.stage),
    });
    try {
      const names = stages(config).map((s) => s.name);
      const rep = q.report.reconstruction;
      expect(rep.map((r) => r.stage)).toEqual(names);
      expect(progress).toEqual(names);
      const figures = rep.map((r) => `${r.stage} ${r.mseBefore.toExponential(2)} → ${r.mseAfter.toExponential(2)}`);
      // eslint-disable-next-line no-console
      console.log(`swin_pad W4A4, 60 iterations per stage: ${figures.join(', ')}`);
      for (const r of rep) expect({ stage: r.stage, falls: r.mseAfter < r.mseBefore }).toEqual({ stage: r.stage, falls: true });
      // LSQ's steps: every block's four Linear inputs, exported as learned.
      const blocks = config.depths.reduce((a, b) => a + b, 0);
      expect(rep.filter((r) => r.steps.length === 4).map((r) => r.block)).toEqual(Array.from({ length: blocks }, (_, l) => l));
      for (const r of rep) for (const s of r.steps) expect(q.sites.find((x) => x.site === s.site && x.block === r.block)!.scale).toBe(s.scale);
      // The reconstructed weights are the model's.
      const w = q.getWeights();
      const before = swinFixtureWeights(fx);
      expect(rmsRel(w.get('features.1.0.attn.qkv.weight')!, before.get('features.1.0.attn.qkv.weight')!)).toBeGreaterThan(0);
      expect(w.get('features.1.0.norm1.weight')).toEqual(before.get('features.1.0.norm1.weight'));

      const engine = await q.forward(test, N);
      const exp = exportQuantizedSwinOnnx(q);
      expect(exp.exact).toBe(true);
      const session = await ort.InferenceSession.create(exp.bytes, { intraOpNumThreads: 1, graphOptimizationLevel: 'basic' });
      const onnx = (await session.run({ input: new ort.Tensor('float32', test, [N, config.channels, config.imageHeight, config.imageWidth]) })).logits.data as Float32Array;
      await session.release();
      const agreement = rmsRel(onnx, engine);
      const top1 = argmaxRows(engine, config.numClasses);
      const same = argmaxRows(onnx, config.numClasses).filter((p, i) => p === top1[i]).length;
      // eslint-disable-next-line no-console
      console.log(`onnxruntime on the reconstructed export: RMS rel ${agreement.toExponential(2)}, top-1 equal ${same}/${N}`);
      expect(agreement).toBeLessThan(5e-3);
      expect(same).toBeGreaterThanOrEqual(N - 1);
    } finally {
      await q.dispose();
      await fp.dispose();
    }
  }, 120000);

  it('with AdaRound every stage\'s quantized weights end on their grids and the errors fall', async () => {
    const fp = createSwin(config, swinFixtureWeights(fx), { threads: 2 });
    const q = await quantize(fp, calib, N, { bits: 'w4a4', reconstruction: { iters: 40, rounding: 'adaround', embed: false, head: false }, threads: 2 });
    try {
      const rep = q.report.reconstruction;
      expect(rep.map((r) => r.stage)).toEqual(stages(config).map((x) => x.name).filter((x) => x !== 'features.0' && x !== 'head'));
      const before = rep.reduce((a, r) => a + r.mseBefore, 0);
      const after = rep.reduce((a, r) => a + r.mseAfter, 0);
      expect(after).toBeLessThan(before);
      const w = q.getWeights();
      let off = 0;
      for (const wq of q.weightQuantizers.filter((x) => x.name !== 'features.0.0.weight' && x.name !== 'head.weight')) {
        const data = w.get(wq.name)!;
        const cols = data.length / wq.scales.length;
        for (let r = 0; r < wq.scales.length; r++) {
          for (let j = 0; j < cols; j++) {
            const code = data[r * cols + j] / wq.scales[r] + wq.zeros[r];
            if (Math.abs(code - Math.round(code)) > 1e-3 || code < wq.qmin - 1e-3 || code > wq.qmax + 1e-3) off++;
          }
        }
      }
      expect(off).toBe(0);
    } finally {
      await q.dispose();
      await fp.dispose();
    }
  }, 120000);

  it('LSQ alone (weights frozen) moves every block\'s four steps and lowers the blocks\' summed error; frozen steps change nothing', async () => {
    const fp = createSwin(config, swinFixtureWeights(fx), { threads: 2 });
    const run = (learnSteps: boolean) => quantize(fp, calib, N, { bits: 'w4a4', reconstruction: { iters: 40, lr: 0, learnSteps, stepLr: 0.003, embed: false, head: false }, threads: 2 });
    const frozen = await run(false);
    const learned = await run(true);
    try {
      const a = frozen.report.reconstruction;
      const b = learned.report.reconstruction;
      // LSQ's gradient is a surrogate of a piecewise-constant loss: a block's error may rise
      // a little while the sum falls (here features.3.0's rises by 0.2 %).
      const blocks = b.filter((r) => r.block >= 0);
      expect(blocks.reduce((t, r) => t + r.mseAfter, 0)).toBeLessThan(blocks.reduce((t, r) => t + r.mseBefore, 0));
      for (let k = 0; k < a.length; k++) {
        expect(a[k].steps).toEqual([]);
        // Nothing trains in the frozen run: every stage's error is unchanged.
        expect(a[k].mseAfter).toBeCloseTo(a[k].mseBefore, 12);
        if (a[k].block < 0) {
          expect(b[k].steps).toEqual([]); // a patch merging: no steps learned
          continue;
        }
        expect(b[k].steps.map((x) => x.site)).toEqual(['qkv_in', 'proj_in', 'fc1_in', 'fc2_in']);
        for (const st of b[k].steps) {
          const calibrated = frozen.sites.find((x) => x.site === st.site && x.block === b[k].block)!;
          expect({ stage: b[k].stage, site: st.site, moved: st.scale !== calibrated.scale }).toEqual({ stage: b[k].stage, site: st.site, moved: true });
        }
      }
    } finally {
      await frozen.dispose();
      await learned.dispose();
      await fp.dispose();
    }
  }, 120000);

  it('is cancelled through the signal, and the source model still runs', async () => {
    const fp = createSwin(config, swinFixtureWeights(fx), { threads: 1 });
    const ac = new AbortController();
    let seen = 0;
    const p = quantize(fp, calib.subarray(0, 4 * IMG), 4, {
      bits: 'w4a4', reconstruction: { iters: 100000 }, signal: ac.signal, threads: 1,
      onProgress: (x) => {
        if (x.reconstruct && ++seen === 2) ac.abort();
      },
    });
    await expect(p).rejects.toMatchObject({ code: 'E_CANCELLED' });
    expect(seen).toBeGreaterThanOrEqual(2);
    expect((await fp.forward(calib.subarray(0, IMG), 1)).every(Number.isFinite)).toBe(true);
    await fp.dispose();
  }, 60000);

  it('refuses bad options by name, and reconstruction before quantizers', async () => {
    const fp = createSwin(config, swinFixtureWeights(fx), { threads: 1 });
    await expect(quantize(fp, calib.subarray(0, 4 * IMG), 4, { reconstruction: { rounding: 'nearest' as 'ste' } })).rejects.toThrow(/reconstruction.rounding: expected 'ste' or 'adaround', received 'nearest'/);
    await expect(quantize(fp, calib.subarray(0, 4 * IMG), 4, { reconstruction: { learnSteps: true, qdrop: 0.5 } })).rejects.toThrow(/reconstruction.learnSteps with reconstruction.qdrop 0.5: not supported together/);
    const h = fp.nativeHandle();
    const cfg = { iters: 1, lr: 1e-4, batch: 1, seed: 0, rounding: 'ste' as const, roundLr: 0, roundReg: 0, roundWarmup: 0, qdrop: 0, holdout: 0, checkEvery: 1, embed: false, head: false, learnSteps: false, stepLr: 0 };
    await fp.exclusive(async () => expect(() => h.reconstruct(calib.subarray(0, 4 * IMG), 4, cfg)).toThrow(/reconstruction needs activation and weight quantizers set first/));
    const q = await quantize(fp, calib.subarray(0, 4 * IMG), 4, { bits: 'w4a4', reconstruction: false, threads: 1 });
    const qh = q.model.nativeHandle();
    await q.model.exclusive(async () => {
      expect(() => qh.reconstruct(calib.subarray(0, 4 * IMG), 4, { ...cfg, rounding: 'nearest' as 'ste' })).toThrow(/rounding/);
      await expect(qh.reconstruct(calib.subarray(0, 4 * IMG), 4, { ...cfg, batch: 0 })).rejects.toMatchObject({ code: 'E_CONFIG', message: expect.stringMatching(/batch ≥ 1/) });
    });
    await q.dispose();
    await fp.dispose();
  }, 60000);
});
