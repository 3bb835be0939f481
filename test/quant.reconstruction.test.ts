// Block reconstruction's learned rounding (AdaRound) and QDrop: the soft rounding and its
// regularizer against their definitions and finite differences; a reconstruction that
// ends on the integer grid with each weight rounded down or up; QDrop deterministic for a
// seed; and the exported model equal to the one evaluated.

import * as ort from 'onnxruntime-node';
import { nativeAddon } from '../lib/native';
import { createVit } from '../lib/vit';
import { completeVitConfig, VitConfigInput } from '../lib/vit-config';
import { quantize } from '../lib/quant/quantize';
import { exportQuantizedOnnx } from '../lib/quant/export-onnx';
import { randn, rng } from './helpers/random';
import { scaledRandomWeights } from './helpers/weights';

const CFG: VitConfigInput = { imageSize: 16, channels: 3, patchSize: 4, embedDim: 32, depth: 2, numHeads: 4, mlpDim: 64, numClasses: 6 };
const addon = nativeAddon();

describe('AdaRound soft rounding', () => {
  const q = { kind: 'uniform' as const, bits: 4, scale: 0.05, zero: 7, qmin: 0, qmax: 15 };
  // Reference (AdaRound, Nagel et al. 2020): h = clip(σ(v)(ζ − γ) + γ, 0, 1), ζ = 1.1, γ = −0.1.
  const h = (v: number) => Math.min(Math.max((1 / (1 + Math.exp(-v))) * 1.2 - 0.1, 0), 1);
  const weight = (v: number, base: number) => (Math.min(Math.max(base + h(v) + q.zero, q.qmin), q.qmax) - q.zero) * q.scale;
  const reg = (v: number, beta: number) => 1 - Math.abs(2 * h(v) - 1) ** beta;

  test('values follow the definitions; derivatives match central differences away from the clips', () => {
    const r = rng(3);
    const n = 400;
    const v = Float32Array.from({ length: n }, () => (r() - 0.5) * 8);
    const base = Float32Array.from({ length: n }, () => Math.floor((r() - 0.5) * 20));
    for (const beta of [20, 8, 2]) {
      const out = addon.softRounding(v, base, q, beta);
      let checked = 0;
      for (let i = 0; i < n; i++) {
        expect(out.weight[i]).toBeCloseTo(weight(v[i], base[i]), 5);
        expect(out.reg[i]).toBeCloseTo(reg(v[i], beta), 4);
        const eps = 1e-3;
        const raw = (x: number) => (1 / (1 + Math.exp(-x))) * 1.2 - 0.1;
        // Skip points within a step of a kink (h's clips, the grid clamp, |2h − 1| = 0).
        const code = base[i] + h(v[i]) + q.zero;
        const near = [raw(v[i] - eps), raw(v[i] + eps)].some((x) => x <= 0 || x >= 1) || code < q.qmin + 0.01 || code > q.qmax - 0.01 || Math.abs(2 * h(v[i]) - 1) < 0.01;
        if (near) continue;
        const fdW = (weight(v[i] + eps, base[i]) - weight(v[i] - eps, base[i])) / (2 * eps);
        const fdR = (reg(v[i] + eps, beta) - reg(v[i] - eps, beta)) / (2 * eps);
        expect(Math.abs(out.dWeight[i] - fdW)).toBeLessThan(1e-3 * Math.abs(fdW) + 1e-6);
        expect(Math.abs(out.dReg[i] - fdR)).toBeLessThan(2e-3 * Math.abs(fdR) + 1e-5);
        checked++;
      }
      expect(checked).toBeGreaterThan(100);
    }
  });
});

describe('reconstruction with AdaRound and QDrop', () => {
  async function quantized(reconstruction: object) {
    const model = await createVit(CFG, scaledRandomWeights(CFG, 3), { threads: 2 });
    const n = 16;
    const calib = randn(n * model.imageLength(), rng(5));
    const q = await quantize(model, calib, n, { bits: 'w4a4', reconstruction: { iters: 60, ...reconstruction }, threads: 2 });
    return { model, q };
  }

  test('AdaRound ends on the grid, each weight rounded down or up from where it started, and lowers the block errors', async () => {
    const { model, q } = await quantized({ rounding: 'adaround' });
    const before = await quantize(model, randn(16 * model.imageLength(), rng(5)), 16, { bits: 'w4a4', reconstruction: false, threads: 2 });
    const w0 = before.getWeights();
    const w1 = q.getWeights();
    let moved = 0;
    for (const wq of q.weightQuantizers.filter((x) => x.name.startsWith('blocks.'))) {
      const a = w0.get(wq.name)!;
      const b = w1.get(wq.name)!;
      const cols = a.length / wq.scales.length;
      for (let i = 0; i < a.length; i++) {
        const s = wq.scales[Math.floor(i / cols)];
        const code = b[i] / s;
        expect(Math.abs(code - Math.round(code))).toBeLessThan(1e-3); // on the grid
        expect(Math.abs(code - a[i] / s)).toBeLessThan(1 + 1e-3); // down or up, never further
        if (Math.abs(Math.round(code) - Math.round(a[i] / s)) > 0.5) moved++;
      }
    }
    expect(moved).toBeGreaterThan(0); // some roundings were learned away from nearest
    for (const r of q.report.reconstruction) expect(r.mseAfter).toBeLessThanOrEqual(r.mseBefore * 1.0001);
    // The export writes exactly these weights: onnxruntime agrees with the engine.
    const x = randn(32 * model.imageLength(), rng(9));
    const ours = await q.forward(x, 32);
    const s = await ort.InferenceSession.create(exportQuantizedOnnx(q).bytes, { intraOpNumThreads: 1 });
    const theirs = (await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [32, 3, 16, 16]) }))[s.outputNames[0]].data as Float32Array;
    await s.release();
    let same = 0;
    for (let i = 0; i < 32; i++) {
      const argmax = (a: Float32Array) => a.subarray(i * 6, i * 6 + 6).reduce((best, v, k, arr) => (v > arr[best] ? k : best), 0);
      if (argmax(ours) === argmax(theirs)) same++;
    }
    expect(same).toBeGreaterThanOrEqual(31);
    await before.dispose();
    await q.dispose();
    await model.dispose();
  });

  test('QDrop is deterministic for a seed and changes the result', async () => {
    const a = await quantized({ qdrop: 0.5, seed: 1 });
    const b = await quantized({ qdrop: 0.5, seed: 1 });
    const off = await quantized({ qdrop: 0, seed: 1 });
    const wa = a.q.getWeights().get('blocks.0.attn.qkv.weight')!;
    expect(Array.from(b.q.getWeights().get('blocks.0.attn.qkv.weight')!)).toEqual(Array.from(wa));
    expect(Array.from(off.q.getWeights().get('blocks.0.attn.qkv.weight')!)).not.toEqual(Array.from(wa));
    for (const m of [a, b, off]) {
      await m.q.dispose();
      await m.model.dispose();
    }
  });

  test('bad options are refused by name', async () => {
    const model = await createVit(CFG, scaledRandomWeights(CFG, 3), { threads: 1 });
    const calib = randn(4 * model.imageLength(), rng(5));
    await expect(quantize(model, calib, 4, { reconstruction: { rounding: 'nearest' as 'ste' } })).rejects.toThrow(/reconstruction.rounding: expected 'ste' or 'adaround'/);
    await expect(quantize(model, calib, 4, { reconstruction: { qdrop: 1.5 } })).rejects.toThrow(/reconstruction.qdrop: expected a number in \[0, 0.99\]/);
    await model.dispose();
  });
});

describe('sequential calibration', () => {
  test('the image quantizer is the joint one (nothing is upstream of it); downstream sites see the quantized model', async () => {
    const model = await createVit(CFG, scaledRandomWeights(CFG, 3), { threads: 2 });
    const calib = randn(16 * model.imageLength(), rng(5));
    const joint = await quantize(model, calib, 16, { bits: 'w4a4', reconstruction: false, threads: 2, calibration: 'joint' });
    const seq = await quantize(model, calib, 16, { bits: 'w4a4', reconstruction: false, threads: 2, calibration: 'sequential' });
    const find = (q: typeof joint, site: string, block?: number) => q.sites.find((s) => s.site === site && s.block === block)!;
    expect(find(seq, 'patch_in')).toEqual(find(joint, 'patch_in'));
    expect(seq.weightQuantizers.find((w) => w.name === 'patch_embed.proj.weight')).toEqual(joint.weightQuantizers.find((w) => w.name === 'patch_embed.proj.weight'));
    // The last block's MLP input is computed from quantized activations and weights: its range moves.
    expect(find(seq, 'fc2_in', 1).scale).not.toBe(find(joint, 'fc2_in', 1).scale);
    expect(seq.sites.length).toBe(joint.sites.length);
    expect(seq.weightQuantizers.map((w) => w.name)).toEqual(joint.weightQuantizers.map((w) => w.name));
    for (const q of [joint, seq]) await q.dispose();
    await model.dispose();
  });
});

describe('held-out stopping rule', () => {
  const n = 16;
  async function run(reconstruction: object) {
    const model = await createVit(CFG, scaledRandomWeights(CFG, 3), { threads: 2 });
    const calib = randn(n * model.imageLength(), rng(5));
    const q = await quantize(model, calib, n, { bits: 'w4a4', reconstruction: { iters: 40, ...reconstruction }, threads: 2 });
    return { model, q, calib };
  }
  // Logit error against the fp model on images neither reconstruction trained on.
  async function heldOutError(q: Awaited<ReturnType<typeof run>>['q'], model: Awaited<ReturnType<typeof run>>['model']) {
    const x = randn(8 * model.imageLength(), rng(11));
    const ref = (await model.forward(x, 8)).logits;
    const out = await q.forward(x, 8);
    let e = 0;
    for (let i = 0; i < ref.length; i++) e += (out[i] - ref[i]) ** 2;
    return e / ref.length;
  }

  test('off by default: every block keeps its last iteration', async () => {
    const { model, q } = await run({});
    for (const r of q.report.reconstruction) expect(r.itersKept).toBe(40);
    await q.dispose();
    await model.dispose();
  });

  test('a learning rate that wrecks the blocks is caught: the rule keeps an early check and the model stays close to the fp one', async () => {
    // lr 0.05 on Adam moves every weight by ~0.05 a step: the training MSE explodes after a
    // few steps, so the best held-out check must be an early one.
    const wild = await run({ lr: 0.05, holdout: 0.25, checkEvery: 2 });
    const unguarded = await run({ lr: 0.05 });
    const kept = wild.q.report.reconstruction.map((r) => r.itersKept);
    expect(kept.every((k) => k >= 0 && k <= 40 && k % 2 === 0)).toBe(true);
    expect(Math.min(...kept)).toBeLessThan(40);
    expect(await heldOutError(wild.q, wild.model)).toBeLessThan(0.5 * (await heldOutError(unguarded.q, unguarded.model)));
    for (const m of [wild, unguarded]) {
      await m.q.dispose();
      await m.model.dispose();
    }
  });

  test('deterministic for a seed; bad fractions refused by name', async () => {
    const a = await run({ holdout: 0.25, checkEvery: 5, seed: 2 });
    const b = await run({ holdout: 0.25, checkEvery: 5, seed: 2 });
    expect(b.q.report.reconstruction.map((r) => r.itersKept)).toEqual(a.q.report.reconstruction.map((r) => r.itersKept));
    expect(Array.from(b.q.getWeights().get('blocks.1.mlp.fc1.weight')!)).toEqual(Array.from(a.q.getWeights().get('blocks.1.mlp.fc1.weight')!));
    await expect(quantize(a.model, a.calib, n, { reconstruction: { holdout: 1 } })).rejects.toThrow(/reconstruction.holdout: expected a number in \[0, 0.9\]/);
    await expect(quantize(a.model, a.calib, n, { reconstruction: { checkEvery: 0 } })).rejects.toThrow(/reconstruction.checkEvery: expected a positive integer/);
    for (const m of [a, b]) {
      await m.q.dispose();
      await m.model.dispose();
    }
  });
});

describe('patch embedding and head reconstruction', () => {
  const n = 16;
  async function run(reconstruction: object) {
    const model = await createVit(CFG, scaledRandomWeights(CFG, 3), { threads: 2 });
    const calib = randn(n * model.imageLength(), rng(5));
    const q = await quantize(model, calib, n, { bits: 'w4a4', reconstruction: { iters: 40, ...reconstruction }, threads: 2 });
    return { model, q };
  }
  const dispose = async (...runs: Awaited<ReturnType<typeof run>>[]) => {
    for (const r of runs) {
      await r.q.dispose();
      await r.model.dispose();
    }
  };

  test('the stages run in order and the two new ones lower their output errors', async () => {
    // lr 1e-4: larger steps make the 4-bit patch weights' straight-through updates oscillate.
    const r = await run({ embed: true, head: true, lr: 1e-4 });
    const rep = r.q.report.reconstruction;
    expect(rep.map((s) => s.stage)).toEqual(['patch_embed', 'blocks.0', 'blocks.1', 'head']);
    expect(rep.map((s) => s.block)).toEqual([-1, 0, 1, -1]);
    for (const s of [rep[0], rep[3]]) expect(s.mseBefore).toBeGreaterThan(0);
    expect(rep[0].mseAfter).toBeLessThan(rep[0].mseBefore);
    expect(rep[3].mseAfter).toBeLessThan(0.95 * rep[3].mseBefore);
    await dispose(r);
  });

  test('only the stage\'s own tensors move; at learning rate 0 nothing does', async () => {
    const base = await run({ embed: false, head: false });
    const both = await run({ embed: true, head: true, lr: 1e-3 });
    const frozen = await run({ embed: true, head: true, lr: 0 });
    const w0 = base.q.getWeights();
    const w1 = both.q.getWeights();
    const wf = frozen.q.getWeights();
    for (const name of ['patch_embed.proj.weight', 'patch_embed.proj.bias', 'head.weight', 'head.bias']) {
      expect(Array.from(w1.get(name)!)).not.toEqual(Array.from(w0.get(name)!));
      expect(Array.from(wf.get(name)!)).toEqual(Array.from(w0.get(name)!));
    }
    // Untrained tensors of the embedding and the head stay as they were.
    for (const name of ['pos_embed', 'cls_token', 'norm.weight']) expect(Array.from(w1.get(name)!)).toEqual(Array.from(w0.get(name)!));
    await dispose(base, both, frozen);
  });

  test('with AdaRound the embedding and head weights end on their grids, and the export computes what the engine does', async () => {
    const r = await run({ embed: true, head: true, rounding: 'adaround' });
    const w = r.q.getWeights();
    for (const wq of r.q.weightQuantizers.filter((x) => x.name === 'patch_embed.proj.weight' || x.name === 'head.weight')) {
      const a = w.get(wq.name)!;
      const cols = a.length / wq.scales.length;
      for (let i = 0; i < a.length; i++) {
        const s = wq.scales[Math.floor(i / cols)];
        expect(Math.abs(a[i] / s - Math.round(a[i] / s))).toBeLessThan(1e-3);
      }
    }
    const x = randn(16 * r.model.imageLength(), rng(9));
    const ours = await r.q.forward(x, 16);
    const s = await ort.InferenceSession.create(exportQuantizedOnnx(r.q).bytes, { intraOpNumThreads: 1 });
    const theirs = (await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [16, 3, 16, 16]) }))[s.outputNames[0]].data as Float32Array;
    await s.release();
    let worst = 0;
    for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i] - theirs[i]));
    expect(worst).toBeLessThan(0.05);
    await dispose(r);
  });

  test('options are checked', async () => {
    const model = await createVit(CFG, scaledRandomWeights(CFG, 3), { threads: 1 });
    const calib = randn(4 * model.imageLength(), rng(5));
    await expect(quantize(model, calib, 4, { reconstruction: { embed: 'yes' as unknown as boolean } })).rejects.toThrow(/reconstruction.embed: expected true or false, received yes/);
    await model.dispose();
  });
});

describe('learned step sizes (LSQ)', () => {
  // Reference (Esser et al. 2020): ŷ = (clamp(round(x/s) + z, qmin, qmax) − z)·s with the
  // rounding passed straight through: ∂ŷ/∂s = round(x/s) − x/s inside the grid, qmin − z
  // below and qmax − z above; ∂ŷ/∂x = 1 inside, 0 outside.
  test('the step gradient and the clipped inputs follow the definition (half-even rounding as the forward)', () => {
    const q = { kind: 'uniform' as const, bits: 4, scale: 0.1, zero: 3, qmin: 0, qmax: 15 };
    const r = rng(4);
    const n = 500;
    const x = Float32Array.from({ length: n }, () => (r() - 0.4) * 3);
    const grad = Float32Array.from({ length: n }, () => r() - 0.5);
    const out = addon.lsqStepGradient(x, grad, q);
    const roundHalfEven = (v: number) => {
      const f = Math.floor(v);
      const d = v - f;
      return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
    };
    let step = 0;
    let clipped = 0;
    for (let i = 0; i < n; i++) {
      const v = Math.fround(x[i] / q.scale);
      const code = roundHalfEven(v) + q.zero;
      const inside = code >= q.qmin && code <= q.qmax;
      step += grad[i] * (code < q.qmin ? q.qmin - q.zero : code > q.qmax ? q.qmax - q.zero : roundHalfEven(v) - v);
      expect(out.grad[i]).toBe(inside ? grad[i] : 0);
      if (!inside) clipped++;
    }
    expect(clipped).toBeGreaterThan(20); // both clips are exercised
    expect(out.step).toBeCloseTo(step, 4);
  });

  async function withSteps(reconstruction: object) {
    const model = await createVit(CFG, scaledRandomWeights(CFG, 3), { threads: 2 });
    const n = 16;
    // Blocks only, so that the report's stages are the blocks.
    const q = await quantize(model, randn(n * model.imageLength(), rng(5)), n, { bits: 'w4a4', reconstruction: { iters: 40, embed: false, head: false, ...reconstruction }, threads: 2 });
    return { model, q };
  }

  test('learning the steps alone (weights frozen) lowers every block\'s error; the steps move, are reported and exported', async () => {
    const frozen = await withSteps({ lr: 0, learnSteps: false });
    const learned = await withSteps({ lr: 0, learnSteps: true, stepLr: 0.01 });
    const a = frozen.q.report.reconstruction;
    const b = learned.q.report.reconstruction;
    for (let l = 0; l < a.length; l++) {
      expect(a[l].steps).toEqual([]);
      expect(b[l].steps.map((s) => s.site)).toEqual(['qkv_in', 'proj_in', 'fc1_in', 'fc2_in']);
      // With frozen weights only the steps change a block's error: unchanged without them,
      // lower with them (the first block sees the same input either way).
      expect(a[l].mseAfter).toBeCloseTo(a[l].mseBefore, 12);
      if (l === 0) expect(b[l].mseBefore).toBeCloseTo(a[l].mseBefore, 12);
      expect(b[l].mseAfter).toBeLessThan(0.98 * b[l].mseBefore);
      for (const s of b[l].steps) {
        const calibrated = frozen.q.sites.find((x) => x.site === s.site && x.block === l)!;
        const exported = learned.q.sites.find((x) => x.site === s.site && x.block === l)!;
        expect(s.scale).not.toBe(calibrated.scale);
        expect(exported.scale).toBe(s.scale);
      }
    }
    // The export uses the learned steps: onnxruntime agrees with the engine.
    const x = randn(16 * learned.model.imageLength(), rng(9));
    const ours = await learned.q.forward(x, 16);
    const s = await ort.InferenceSession.create(exportQuantizedOnnx(learned.q).bytes, { intraOpNumThreads: 1 });
    const theirs = (await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [16, 3, 16, 16]) }))[s.outputNames[0]].data as Float32Array;
    await s.release();
    let worst = 0;
    for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i] - theirs[i]));
    expect(worst).toBeLessThan(0.05);
    for (const m of [frozen, learned]) {
      await m.q.dispose();
      await m.model.dispose();
    }
  });

  test('not combined with QDrop; the learning rate is checked', async () => {
    const model = await createVit(CFG, scaledRandomWeights(CFG, 3), { threads: 1 });
    const calib = randn(4 * model.imageLength(), rng(5));
    await expect(quantize(model, calib, 4, { reconstruction: { learnSteps: true, qdrop: 0.5 } })).rejects.toThrow(/reconstruction.learnSteps with reconstruction.qdrop 0.5: not supported together/);
    await expect(quantize(model, calib, 4, { reconstruction: { stepLr: -1 } })).rejects.toThrow(/reconstruction.stepLr: expected a number in \[0, 1\], received -1/);
    await model.dispose();
  });
});
