// The quantized ONNX export against onnxruntime: every format loads and runs, and its
// logits equal our simulation of the same exported quantizers (float rounding only); the
// integer weights and QDQ nodes are where they should be.

import * as ort from 'onnxruntime-node';
import * as onnx from 'onnx-proto';
import { createVit, VitModel } from '../lib/vit';
import { completeVitConfig, VitConfigInput } from '../lib/vit-config';
import { quantize } from '../lib/quant/quantize';
import { exportQuantizedOnnx, QuantExportFormat } from '../lib/quant/export-onnx';
import { simulateExported } from '../lib/quant/quantize';
import { randn, rng } from './helpers/random';
import { rmsRel } from './helpers/logits';
import { scaledRandomWeights } from './helpers/weights';

const CFG: VitConfigInput = { imageSize: 16, channels: 3, patchSize: 4, embedDim: 32, depth: 2, numHeads: 4, mlpDim: 64, numClasses: 6 };

function weightsFor(config: VitConfigInput, seed: number): Map<string, Float32Array> {
  return scaledRandomWeights(config, seed);
}

async function ortLogits(bytes: Uint8Array, x: Float32Array, batch: number, c: { channels: number; imageHeight: number; imageWidth: number }): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [batch, c.channels, c.imageHeight, c.imageWidth]) });
  const logits = out[s.outputNames[0]].data as Float32Array;
  await s.release();
  return logits;
}

function agreement(a: Float32Array, b: Float32Array, K: number): number {
  let same = 0;
  const n = a.length / K;
  for (let i = 0; i < n; i++) {
    let x = 0;
    let y = 0;
    for (let k = 1; k < K; k++) {
      if (a[i * K + k] > a[i * K + x]) x = k;
      if (b[i * K + k] > b[i * K + y]) y = k;
    }
    if (x === y) same++;
  }
  return same / n;
}

describe.each([
  ['W8A8 qdq', { bits: 'w8a8' }, 'qdq'],
  ['W4A4 qdq (4-bit grids in 8-bit containers, Clip before QDQ)', { bits: 'w4a4' }, 'qdq'],
  ['W4A8 qdq-int4 (opset 21 int4 weights)', { bits: 'w4a8' }, 'qdq-int4'],
  ['W6A6 symmetric weights', { bits: 'w6a6', weightMode: 'symmetric' }, 'qdq'],
  ['W8A8 TensorRT (symmetric weights and activations, zero points 0)', { bits: 'w8a8', tensorrt: true }, 'qdq'],
  ['W4A4 post-norm, mean pooling', { bits: 'w4a4', config: { ...CFG, classToken: false, pooling: 'mean', normPlacement: 'post' } }, 'qdq'],
  ['W4A4 distilled', { bits: 'w4a4', config: { ...CFG, distToken: true } }, 'qdq-int4'],
  // K = 40 and 72 are not multiples of the 32-element blocks: padded blocks.
  ['W4A4 MatMulNBits (explicit com.microsoft nodes, padded blocks)', { bits: 'w4a4', config: { ...CFG, embedDim: 40, mlpDim: 72 } }, 'matmulnbits'],
  ['W4A8 MatMulNBits, symmetric weights (signed grid shifted into unsigned codes)', { bits: 'w4a8', weightMode: 'symmetric' }, 'matmulnbits'],
  ['W6A6 MatMulNBits (8-bit containers), distilled', { bits: 'w6a6', config: { ...CFG, distToken: true } }, 'matmulnbits'],
] as [string, { bits: 'w8a8' | 'w4a4' | 'w4a8' | 'w6a6'; weightMode?: 'symmetric'; tensorrt?: boolean; config?: VitConfigInput }, QuantExportFormat][])(
  '%s',
  (_name, o, format) => {
    test('onnxruntime runs the export and matches the simulation of the exported quantizers', async () => {
      const config = o.config ?? CFG;
      const model: VitModel = await createVit(config, weightsFor(config, 3), { threads: 2 });
      const n = 16;
      const calib = randn(n * model.imageLength(), rng(5));
      const q = await quantize(model, calib, n, { bits: o.bits, weightMode: o.weightMode, tensorrt: o.tensorrt, reconstruction: { iters: 10 }, threads: 2 });
      const exp = exportQuantizedOnnx(q, { format });
      // The method form writes the same bytes.
      const file = require('path').join(require('os').tmpdir(), `spdfq-export-${process.pid}.onnx`);
      await q.exportOnnx(file, { format });
      expect(Buffer.compare(require('fs').readFileSync(file), Buffer.from(exp.bytes))).toBe(0);
      expect(exp.opset).toBe(format === 'qdq' ? 13 : 21);
      // log√2 softmax quantizers are written as their own formula: nothing approximated.
      expect(exp.exact).toBe(true);
      expect(exp.warnings.join(' ')).not.toMatch(/log√2/);
      if (o.tensorrt) {
        expect(exp.warnings).toEqual([]);
        // Every zero point is 0 and every grid signed: TensorRT's explicit-quantization rules.
        expect(exp.sites.every((s) => s.zero === 0 && s.qmin < 0)).toBe(true);
        expect(exp.weights.every((w) => w.zeros.every((z) => z === 0) && w.qmin < 0)).toBe(true);
      }
      const sim = await simulateExported(q, exp);
      const x = randn(64 * model.imageLength(), rng(9));
      const ours = await sim.forward(x, 64);
      const theirs = await ortLogits(exp.bytes, x, 64, model.config);
      // Same integer grids; onnxruntime's exact exp/erf vs our fast ones can tip a value
      // sitting on a rounding boundary by one step (which the 8-bit softmax grid then
      // carries), so: close in RMS, and the same predictions.
      expect(rmsRel(theirs, ours)).toBeLessThan(5e-3);
      expect(agreement(theirs, ours, model.config.numClasses)).toBeGreaterThanOrEqual(0.95);
      // The graph holds integer weights behind per-channel DequantizeLinear.
      const m = onnx.onnx.ModelProto.decode(exp.bytes);
      const dq = m.graph!.node!.filter((nd) => nd.opType === 'DequantizeLinear').length;
      const qn = m.graph!.node!.filter((nd) => nd.opType === 'QuantizeLinear').length;
      // One Q→DQ pair per uniform site use (a distilled head quantizes both of its tokens);
      // each log√2 site is Log → QuantizeLinear (the level) → Gather instead.
      const log2Sites = q.sites.filter((st) => st.kind === 'log2').length;
      expect(m.graph!.node!.filter((nd) => nd.opType === 'Log').length).toBe(log2Sites);
      const uses = q.sites.length - log2Sites + (model.config.distToken ? 1 : 0);
      expect(qn).toBe(uses + log2Sites);
      if (format === 'matmulnbits') {
        // Every Linear (qkv, proj, fc1, fc2, heads) is one MatMulNBits node; only the patch
        // Conv keeps a weight DequantizeLinear.
        const nbits = m.graph!.node!.filter((nd) => nd.opType === 'MatMulNBits');
        expect(nbits.every((nd) => nd.domain === 'com.microsoft')).toBe(true);
        expect(nbits.length).toBe(q.weightQuantizers.length - 1);
        expect(dq).toBe(uses + 1);
        expect(m.opsetImport!.some((op) => op.domain === 'com.microsoft')).toBe(true);
        const bitsAttr = new Set(nbits.map((nd) => Number(nd.attribute!.find((a) => a.name === 'bits')!.i)));
        expect([...bitsAttr]).toEqual([o.bits.startsWith('w4') ? 4 : 8]);
      } else {
        expect(dq).toBe(uses + q.weightQuantizers.length);
        const types = new Set(m.graph!.initializer!.filter((t) => t.name!.endsWith('.quantized')).map((t) => t.dataType));
        expect([...types].every((t) => (format === 'qdq-int4' && o.bits.startsWith('w4') ? t === 21 || t === 22 : t === 2 || t === 3))).toBe(true);
      }
      await sim.dispose();
      await q.dispose();
      await model.dispose();
    });
  },
);

test("log2: 'uniform' writes a pure QDQ graph, warns, and onnxruntime matches the simulation of that graph", async () => {
  const model: VitModel = await createVit(CFG, weightsFor(CFG, 3), { threads: 2 });
  const calib = randn(16 * model.imageLength(), rng(5));
  const q = await quantize(model, calib, 16, { bits: 'w4a4', reconstruction: { iters: 10 }, threads: 2 });
  const exp = exportQuantizedOnnx(q, { log2: 'uniform' });
  expect(exp.exact).toBe(false);
  expect(exp.warnings.join(' ')).toMatch(/log√2 softmax quantizers have no ONNX QDQ form/);
  expect(exp.sites.every((st) => st.kind === 'uniform')).toBe(true);
  const m = onnx.onnx.ModelProto.decode(exp.bytes);
  expect(m.graph!.node!.filter((nd) => nd.opType === 'Log').length).toBe(0);
  const sim = await simulateExported(q, exp);
  const x = randn(64 * model.imageLength(), rng(9));
  const ours = await sim.forward(x, 64);
  const theirs = await ortLogits(exp.bytes, x, 64, model.config);
  expect(rmsRel(theirs, ours)).toBeLessThan(5e-3);
  expect(agreement(theirs, ours, model.config.numClasses)).toBeGreaterThanOrEqual(0.95);
  expect(() => exportQuantizedOnnx(q, { log2: 'nearest' as 'exact' })).toThrow(/log2: expected 'exact' or 'uniform', received 'nearest'/);
  await sim.dispose();
  await q.dispose();
  await model.dispose();
});

test('the exported log√2 formula gives the engine\'s quantized values in onnxruntime', async () => {
  // One log√2 site alone as an ONNX graph, against the engine's fake quantization of the
  // same values: softmax-like probabilities over 12 decades, exact zeros, and the values
  // sitting on the quantizer's levels and between them.
  const { GraphBuilder } = require('../lib/onnx/graph-builder') as typeof import('../lib/onnx/graph-builder');
  const { log2Levels } = require('../lib/quant/export-onnx') as typeof import('../lib/quant/export-onnx');
  const { nativeAddon } = require('../lib/native') as typeof import('../lib/native');
  const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
  for (const bits of [3, 4, 8]) {
    const quantizer = { kind: 'log2' as const, bits, scale: 0.7, zero: 0, qmin: 0, qmax: 2 ** bits - 1 };
    const r = rng(bits);
    const n = 20000;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = i % 97 === 0 ? 0 : Math.fround(0.9 * 10 ** (-12 * r()));
    const levels = log2Levels(quantizer);
    for (let i = 0; i < levels.length; i++) x[i * 3 + 1] = levels[i];
    const engine = nativeAddon().fakeQuant(x, quantizer);
    const bytes = buildLog2Graph(GraphBuilder, quantizer, n);
    const session = await ort.InferenceSession.create(bytes);
    const out = (await session.run({ x: new ort.Tensor('float32', x, [n]) })).y.data as Float32Array;
    let differ = 0;
    for (let i = 0; i < n; i++) if (out[i] !== engine[i]) differ++;
    // Equal except where the runtime's logarithm rounds a tie the other way (none expected
    // in practice; a handful in 20,000 would still be a faithful export).
    expect(differ).toBeLessThanOrEqual(2);
    await session.release();
  }
});

test('MatMulNBits layout options are validated with expected vs received', async () => {
  const model = await createVit(CFG, weightsFor(CFG, 3), { threads: 1 });
  const calib = randn(4 * model.imageLength(), rng(5));
  const q = await quantize(model, calib, 4, { bits: 'w4a4', reconstruction: { iters: 0 }, threads: 1 });
  expect(() => exportQuantizedOnnx(q, { format: 'matmulnbits', matmulNBits: { blockSize: 24 } })).toThrow(/power of two ≥ 16, received 24/);
  expect(() => exportQuantizedOnnx(q, { format: 'int3' as QuantExportFormat })).toThrow(/qdq, qdq-int4, matmulnbits, received 'int3'/);
  await q.dispose();
  await model.dispose();
});

/** A graph y = log2Site(x) of one quantizer, through the export's own site writer. */
function buildLog2Graph(GraphBuilder: typeof import('../lib/onnx/graph-builder').GraphBuilder, quantizer: { kind: 'log2'; bits: number; scale: number; zero: number; qmin: number; qmax: number }, n: number): Uint8Array {
  const { log2Site } = require('../lib/quant/export-onnx') as typeof import('../lib/quant/export-onnx');
  const { valueInfo } = require('../lib/onnx/graph-builder') as typeof import('../lib/onnx/graph-builder');
  const g = new GraphBuilder();
  const y = log2Site(g, 'x', quantizer, 'site');
  g.renameOutput(y, 'y');
  return g.model({ opset: 13, inputs: [valueInfo('x', 1, [n])], outputs: [valueInfo('y', 1, [n])], graphName: 'log2', producer: 'test' });
}
