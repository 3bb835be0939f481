/** @jest-environment ./test/helpers/shared-realm-environment.js */
// Quantization of a Swin (docs/swin.md, "Stage: quantization"): quantize() on an imported
// fixture (square, and padded with an odd merge) at W8A8 and W4A4, its QDQ export run by
// onnxruntime — an independent implementation of every quantizer and of the float model —
// against the engine's simulated quantized logits; the plan's sites and reparameterization
// choices; and the errors a Swin quantization refuses with.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildSwinOnnx } from '../lib/onnx/build-swin';
import { completeSwinConfig, createSwin, randomSwinWeights, swinParamSpecs } from '../lib/swin';
import { cli } from './helpers/cli';
import { sampledInputGradient } from './helpers/finite-differences';
import { nativeAddon, SiteQuantizer, TensorQuantizer } from '../lib/native';
import { quantize } from '../lib/quant/quantize';
import { planSwinQuantization } from '../lib/quant/swin-quant-config';
import { exportQuantizedSwinOnnx } from '../lib/quant/export-swin-onnx';
import { loadSwinFixture, swinFixtureWeights } from './helpers/swin-fixtures';
import { mulberry32 } from '../lib/synth/random';
import { argmaxRows, ortSwinLogits, rmsRel } from './helpers/logits';
import { gaussianImages } from './helpers/random';

const CALIB = 16;
const TEST = 16;

describe.each(['swin_small', 'swin_pad'])('%s', (name) => {
  const fx = loadSwinFixture(name);
  const config = completeSwinConfig(fx.config);
  const weights = swinFixtureWeights(fx);
  const len = config.channels * config.imageHeight * config.imageWidth;
  const calib = gaussianImages(CALIB, len, 1);
  const test = gaussianImages(TEST, len, 2);

  it.each([['w8a8'], ['w4a4']] as const)('%s: onnxruntime on the QDQ export computes the engine\'s quantized logits', async (bits) => {
    const fp = createSwin(config, weights, { threads: 2 });
    // The head input at 8 bits: a 4-bit one would round away every upstream difference
    // before the logits, and the comparison would see none.
    const q = await quantize(fp, calib, CALIB, { bits, calibration: 'joint', reconstruction: false, overrides: { head_in: 8 } });
    try {
      const fpLogits = await fp.forward(test, TEST);
      const engine = await q.forward(test, TEST);
      const exp = exportQuantizedSwinOnnx(q);
      expect(exp.exact).toBe(true);
      const top1 = argmaxRows(engine, config.numClasses);
      const figures: string[] = [];
      for (const [level, tol, minSame] of [['basic', 5e-3, TEST - 1], ['all', 2e-2, TEST - 2]] as const) {
        const onnx = await ortSwinLogits(exp.bytes, config, test, TEST, level);
        const agreement = rmsRel(onnx, engine);
        const same = argmaxRows(onnx, config.numClasses).filter((p, i) => p === top1[i]).length;
        figures.push(`onnxruntime ${level}: RMS rel ${agreement.toExponential(2)}, top-1 equal ${same}/${TEST}`);
        // A value within float rounding of a grid step's edge (LayerNorm, exp, erf and sums
        // computed in another order) lands on the other side, and the step propagates; 5e-3
        // is the ViT export test's bar (test/quant.export.test.ts).
        expect(agreement).toBeLessThan(tol);
        expect(same).toBeGreaterThanOrEqual(minSame);
      }
      // The quantized model is a quantized model: near fp at 8 bits, further at 4.
      const drift = rmsRel(engine, fpLogits);
      expect(drift).toBeGreaterThan(0);
      expect(drift).toBeLessThan(bits === 'w8a8' ? 0.1 : 1.5);
      if (bits === 'w4a4') expect(q.sites.some((s) => s.kind === 'log2')).toBe(true);
      // eslint-disable-next-line no-console
      console.log(`${name} ${bits}: ${figures.join('; ')}; quantized vs fp RMS rel ${drift.toExponential(2)}`);
    } finally {
      await q.dispose();
      await fp.dispose();
    }
  }, 60000);
});

describe('plan', () => {
  const pad = completeSwinConfig(loadSwinFixture('swin_pad').config);

  it('puts every RepQ-ViT site on the Swin, reparameterizes post-LayerNorm sites except qkv inputs on padded grids', () => {
    const plan = planSwinQuantization(pad, { bits: 'w4a4' });
    const blocks = pad.depths.reduce((a, b) => a + b, 0);
    expect(plan.sites.length).toBe(1 + 8 * blocks + (pad.depths.length - 1) + 1);
    expect(plan.weights.length).toBe(1 + 4 * blocks + (pad.depths.length - 1) + 1);
    const byKey = new Map(plan.sites.map((s) => [s.key, s]));
    // stage 0's 10×10 grid is padded to 12×12 by the 4×3 window: qkv input per tensor
    expect(byKey.get('features.1.0.qkv_in')?.perChannelForReparam).toBe(false);
    expect(byKey.get('features.1.0.fc1_in')?.reparam).toEqual({ norm: 'features.1.0.norm2', linear: 'features.1.0.mlp.0' });
    expect(byKey.get('features.2.reduce_in')?.reparam).toEqual({ norm: 'features.2.norm', linear: 'features.2.reduction' });
    expect(byKey.get('features.1.0.probs')?.spec?.kind).toBe('log2');
    expect(byKey.get('patch_in')?.spec?.bits).toBe(8);
    expect(plan.notes.some((n) => n.includes('stage 0'))).toBe(true);
    expect(planSwinQuantization(pad, { bits: 'w8a8' }).sites.find((s) => s.site === 'probs')?.spec?.kind).toBe('uniform');
  });

  it('plans block reconstruction with the ViT\'s defaults; refuses bad reconstruction options and unknown overrides with E_CONFIG', () => {
    expect(planSwinQuantization(pad, {}).reconstruction).toMatchObject({ iters: 200, lr: 4e-5, rounding: 'ste', embed: true, head: true, learnSteps: true });
    expect(planSwinQuantization(pad, { reconstruction: false }).reconstruction).toBeNull();
    expect(planSwinQuantization(pad, {}).notes.some((n) => /reconstruction/.test(n))).toBe(false);
    expect(() => planSwinQuantization(pad, { reconstruction: { iters: -1 } })).toThrow(/reconstruction.iters: expected an integer ≥ 0, received -1/);
    expect(() => planSwinQuantization(pad, { overrides: { 'blocks.0.qkv_in': 4 } })).toThrow(/names no quantized weight or activation site/);
    expect(planSwinQuantization(pad, { overrides: { 'features.2.reduce_in': 6 } }).sites.find((s) => s.key === 'features.2.reduce_in')?.spec?.bits).toBe(6);
  });

  it('native: a site the model lacks or a block out of range is a RangeError naming it', async () => {
    const fx = loadSwinFixture('swin_small');
    const m = createSwin(fx.config, swinFixtureWeights(fx), { threads: 1 });
    const q = { kind: 'uniform' as const, bits: 8, scale: 0.1, zero: 128, qmin: 0, qmax: 255 };
    await m.exclusive(async () => {
      expect(() => m.nativeHandle().setActQuant([{ site: 'reduce_in', block: 1, ...q }])).toThrow(/merge index in \[0, 0\]/);
      expect(() => m.nativeHandle().setActQuant([{ site: 'qkv_in', block: 4, ...q }])).toThrow(/block index in \[0, 3\]/);
    });
    await m.dispose();
  });
});

describe('the CLI', () => {
  it('quantize --bits w4a4 on a Swin ONNX file writes a QDQ (and a MatMulNBits) model that onnxruntime runs', async () => {
    const config = completeSwinConfig({ imageSize: 32, patchSize: 2, embedDim: 16, depths: [2, 2, 2], numHeads: [1, 2, 4], windowSize: 4, mlpRatio: 2, numClasses: 10 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swin-quant-'));
    try {
      const model = path.join(dir, 'swin.onnx');
      const out = path.join(dir, 'swin-w4a4.onnx');
      fs.writeFileSync(model, buildSwinOnnx(config, randomSwinWeights(config, 3)));
      const r = await cli(['quantize', '--model', model, '--calib', 'noise', '--images', '8', '--bits', 'w4a4', '--out', out, '--threads', '2']);
      expect(r.stderr).not.toMatch(/error/i);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/wrote .*\(Swin, w4a4, qdq, opset 17, 8 calibration images\)/);
      const x = gaussianImages(2, config.channels * config.imageHeight * config.imageWidth, 5);
      const logits = await ortSwinLogits(new Uint8Array(fs.readFileSync(out)), config, x, 2, 'all');
      expect(logits.length).toBe(20);
      expect(logits.every(Number.isFinite)).toBe(true);
      // Reconstructed by default, every stage reported as it ends.
      for (const stage of ['features.0', 'features.1.0', 'features.2', 'features.5.1', 'head']) expect(r.stderr).toMatch(new RegExp(`reconstructed ${stage.replace(/\./g, '\\.')} \\(`));
      const off = await cli(['quantize', '--model', model, '--calib', 'noise', '--images', '8', '--recon-iters', '0', '--out', out, '--threads', '2']);
      expect(off.code).toBe(0);
      expect(off.stderr).not.toMatch(/reconstructed/);
      // --format matmulnbits: every Linear as a com.microsoft MatMulNBits node (opset 21).
      const nbitsOut = path.join(dir, 'swin-w4a4-nbits.onnx');
      const nb = await cli(['quantize', '--model', model, '--calib', 'noise', '--images', '8', '--bits', 'w4a4', '--format', 'matmulnbits', '--recon-iters', '2', '--out', nbitsOut, '--threads', '2']);
      expect(nb.code).toBe(0);
      expect(nb.stdout).toMatch(/wrote .*\(Swin, w4a4, matmulnbits, opset 21, 8 calibration images\)/);
      const nbLogits = await ortSwinLogits(new Uint8Array(fs.readFileSync(nbitsOut)), config, x, 2, 'all');
      expect(nbLogits.length).toBe(20);
      expect(nbLogits.every(Number.isFinite)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60000);
});

describe('straight-through backward', () => {
  // Two references. (1) With 4-bit weights alone the quantized model is smooth in its
  // input: its input gradient must match central differences (the backward reads the
  // fake-quantized weights; the fp ones would miss the 2 % bar). (2) With every activation
  // site on a 16-bit grid as well, quantization moves no activation by more than ~1e-5 of
  // its range, so the straight-through gradient must equal the float model's gradient with
  // those weights (the float backward checked against torchvision's autograd in
  // test/swin.backward.test.ts), through every quantized copy (att_q included). Central
  // differences cannot check (2): quantization noise dominates them.
  const fx = loadSwinFixture('swin_pad');
  const config = completeSwinConfig(fx.config);
  const batch = 2;
  const images = gaussianImages(batch, config.channels * config.imageHeight * config.imageWidth, 7);
  const G = gaussianImages(1, batch * config.numClasses, 12);
  const plan = planSwinQuantization(config, { bits: 'w4a4', probs: 'uniform', reparameterize: false });

  /** The 4-bit weight quantizers, and the weights they give as plain float weights. */
  function quantizedWeights(weights: Map<string, Float32Array>) {
    const addon = nativeAddon();
    const fake = new Map(weights);
    const quantizers = plan.weights.map((w) => {
      const data = weights.get(w.name)!;
      const rows = shapes.get(w.name)![0];
      const q = { name: w.name, ...addon.quantSearch(data, rows, data.length / rows, 0, w.spec) };
      const out = new Float32Array(data.length);
      const cols = data.length / rows;
      for (let r = 0; r < rows; r++) {
        out.set(addon.fakeQuant(data.subarray(r * cols, (r + 1) * cols), { kind: q.kind, bits: q.bits, scale: q.scales[r], zero: q.zeros[r], qmin: q.qmin, qmax: q.qmax }), r * cols);
      }
      fake.set(w.name, out);
      return q;
    });
    return { quantizers, fake };
  }
  const shapes = new Map(swinParamSpecs(config).map((p) => [p.name, p.shape]));

  it('4-bit weights: the input gradient agrees with central differences', async () => {
    const model = createSwin(config, swinFixtureWeights(fx), { threads: 1, reference: true });
    const fpLogits = await model.forward(images, batch);
    const { quantizers } = quantizedWeights(await model.getWeights());
    await model.exclusive(async () => model.nativeHandle().setWeightQuant(quantizers));
    const objective = async (x: Float32Array) => (await model.forward(x, batch)).reduce((acc, v, i) => acc + v * G[i], 0);
    expect(rmsRel(await model.forward(images, batch), fpLogits)).toBeGreaterThan(1e-2); // the 4-bit weights are in effect
    const { inputGrad } = await model.backward(G);
    expect(await sampledInputGradient(objective, images, inputGrad, mulberry32(11), 8)).toEqual([]);
    await model.dispose();
  }, 60000);

  it('every site on a 16-bit grid: the gradients equal the float model\'s with the quantized weights', async () => {
    const model = createSwin(config, swinFixtureWeights(fx), { threads: 1 });
    const h = model.nativeHandle();
    const { quantizers, fake } = quantizedWeights(await model.getWeights());
    await model.exclusive(async () => h.setWeightQuant(quantizers));
    // The ranges of the model with 4-bit weights (onQuantizedModel), as its activations are.
    const active = plan.sites.filter((x) => x.spec !== null);
    const found = await model.exclusive(() =>
      h.calibrate(images, batch, batch, active.map((x) => ({ site: x.site, block: x.block, perChannel: false, ...x.spec!, bits: 16, method: 'minmax' as const })), true));
    const sites: SiteQuantizer[] = active.map((x, i) => ({ site: x.site, block: x.block, ...(found[i] as TensorQuantizer) }));
    expect(sites.every((x) => x.kind === 'uniform' && x.bits === 16)).toBe(true);
    expect(sites.filter((x) => x.site === 'probs').length).toBe(config.depths.reduce((a, b) => a + b, 0));
    await model.exclusive(async () => h.setActQuant(sites));
    const reference = createSwin(config, fake, { threads: 1 });
    const logits = await model.forward(images, batch);
    const refLogits = await reference.forward(images, batch);
    const delta = rmsRel(logits, refLogits);
    expect(delta).toBeGreaterThan(0); // the activation quantizers are on …
    expect(delta).toBeLessThan(1e-3); // … and 16-bit fine
    const q = await model.backward(G, { weightGrads: true });
    const ref = await reference.backward(G, { weightGrads: true });
    expect(rmsRel(q.inputGrad, ref.inputGrad)).toBeLessThan(2e-3);
    for (const name of ['features.1.1.attn.qkv.weight', 'features.1.1.attn.relative_position_bias_table', 'features.2.reduction.weight', 'head.weight']) {
      expect({ name, rel: rmsRel(q.weightGrads!.get(name)!, ref.weightGrads!.get(name)!) < 2e-3 }).toEqual({ name, rel: true });
    }
    await model.dispose();
    await reference.dispose();
  }, 60000);
});
