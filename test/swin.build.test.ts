/** @jest-environment ./test/helpers/shared-realm-environment.js */
// The Swin ONNX writer (lib/onnx/build-swin.ts, docs/swin.md "The Swin ONNX writer"): for
// each fixture in test/fixtures/swin (square, padded with an odd merge and a stage smaller
// than its window, non-square), onnxruntime on the written graph must give PyTorch's
// logits and the native engine's, at batch 1 and 3 on one dynamic-batch graph, at opsets
// 17 (LayerNormalization) and 14 (decomposed); the graph must import back to the same
// config and bit-identical weights (the bias tables through their folded constants). The
// fp32 export of an imported Swin and `inspect` on a written file are checked at the end.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { main } from '../lib/cli/main';
import { buildSwinOnnx, BuildSwinOptions } from '../lib/onnx/build-swin';
import { exportSwinFp32, exportSwinFp32Bytes } from '../lib/onnx/export-swin';
import { importSwinBytes, importSwinOnnx } from '../lib/onnx/import-swin';
import { completeSwinConfig, createSwin, SwinConfig } from '../lib/swin';
import { relError } from './helpers/compare';
import { loadSwinFixture, swinFixtureWeights, SWIN_FIXTURE_DIR } from './helpers/swin-fixtures';

// The engine fixtures' bar: max |error| / max |reference| of the logits.
const TOL = 1e-4;

/** Images 0, 1, 0 of the fixture's pair: batch 3 from the two PyTorch references. */
const BATCHES: [number, number[]][] = [[1, [0]], [3, [0, 1, 0]]];

function rows(data: Float32Array, rowSize: number, picks: number[]): Float32Array {
  const out = new Float32Array(picks.length * rowSize);
  picks.forEach((p, i) => out.set(data.subarray(p * rowSize, (p + 1) * rowSize), i * rowSize));
  return out;
}

async function ortLogits(model: Uint8Array, c: SwinConfig, x: Float32Array, batch: number, names = { input: 'input', output: 'logits' }): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const out = await session.run({ [names.input]: new ort.Tensor('float32', x, [batch, c.channels, c.imageHeight, c.imageWidth]) });
    return out[names.output].data as Float32Array;
  } finally {
    await session.release();
  }
}

function bitsEqual(a: Float32Array, b: Float32Array | undefined): boolean {
  return b !== undefined && a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

/** Names of the weights that differ from `want` in any bit (or are missing), and extras. */
function weightDifferences(got: Map<string, Float32Array>, want: Map<string, Float32Array>): string[] {
  return [...new Set([...got.keys(), ...want.keys()])].filter((k) => !bitsEqual(want.get(k) as Float32Array, got.get(k)) || !want.has(k)).sort();
}

describe.each(['swin_small', 'swin_pad', 'swin_rect'])('%s', (name) => {
  const fx = loadSwinFixture(name);
  const config = completeSwinConfig(fx.config);
  const weights = swinFixtureWeights(fx);
  const imageSize = config.channels * config.imageHeight * config.imageWidth;
  const input = fx.tensors.get('input')?.data as Float32Array;
  const torchLogits = fx.tensors.get('logits')?.data as Float32Array;

  describe.each([17, 14])('opset %i', (opset) => {
    const bytes = buildSwinOnnx(config, weights, { opset });

    test.each(BATCHES)('batch %i: onnxruntime matches PyTorch and the native engine', async (batch, picks) => {
      const x = rows(input, imageSize, picks);
      const logits = await ortLogits(bytes, config, x, batch);
      const model = createSwin(config, weights, { threads: 1 });
      const native = await model.forward(x, batch);
      await model.dispose();
      const vsTorch = relError(logits, rows(torchLogits, config.numClasses, picks));
      const vsNative = relError(logits, native);
      console.log(`${name} opset ${opset} batch ${batch}: onnxruntime vs PyTorch ${vsTorch.toExponential(2)}, vs native ${vsNative.toExponential(2)}`);
      expect(vsTorch).toBeLessThanOrEqual(TOL);
      expect(vsNative).toBeLessThanOrEqual(TOL);
    });

    test('imports back: the same config, bit-identical weights', () => {
      const m = importSwinBytes(bytes, null);
      expect(m.config).toEqual(config);
      expect(m.opset).toBe(opset);
      expect(m.fixedBatch).toBeNull();
      expect(m.forms.layerNorm).toBe(opset >= 17 ? 'op' : 'decomposed');
      expect(weightDifferences(m.weights, weights)).toEqual([]);
    });
  });
});

describe('other forms (swin_pad)', () => {
  const fx = loadSwinFixture('swin_pad');
  const config = completeSwinConfig(fx.config);
  const weights = swinFixtureWeights(fx);
  const input = fx.tensors.get('input')?.data as Float32Array;
  const torchLogits = fx.tensors.get('logits')?.data as Float32Array;

  test.each([
    ['opset 18, decomposed LayerNorm (ReduceMean axes as an input)', { opset: 18, layerNorm: 'decomposed' }, { layerNorm: 'decomposed', gelu: 'decomposed' }],
    ['opset 20, the Gelu op', { opset: 20 }, { layerNorm: 'op', gelu: 'op' }],
    ['opset 17, fixed batch 2, other names', { opset: 17, batch: 2, inputName: 'pixels', outputName: 'scores' }, { layerNorm: 'op', gelu: 'decomposed' }],
  ] as [string, BuildSwinOptions, object][])('%s', async (_label, options, forms) => {
    const bytes = buildSwinOnnx(config, weights, options);
    const logits = await ortLogits(bytes, config, input, 2, { input: options.inputName ?? 'input', output: options.outputName ?? 'logits' });
    expect(relError(logits, torchLogits)).toBeLessThanOrEqual(TOL);
    const m = importSwinBytes(bytes, null);
    expect(m.config).toEqual(config);
    expect(m.forms).toMatchObject(forms);
    expect(m.fixedBatch).toBe(typeof options.batch === 'number' ? options.batch : null);
    expect([m.inputName, m.outputName]).toEqual([options.inputName ?? 'input', options.outputName ?? 'logits']);
    expect(weightDifferences(m.weights, weights)).toEqual([]);
  });
});

describe('option and weight checks', () => {
  const fx = loadSwinFixture('swin_small');
  const weights = swinFixtureWeights(fx);
  const rejects = (w: Map<string, Float32Array>, options: BuildSwinOptions, pattern: RegExp) => {
    expect(() => buildSwinOnnx(completeSwinConfig(fx.config), w, options)).toThrow(expect.objectContaining({ code: 'E_CONFIG', message: expect.stringMatching(pattern) }));
  };
  test('opset range', () => rejects(weights, { opset: 13 }, /opset must be an integer in \[14, 23\], received 13/));
  test('LayerNormalization needs opset 17', () => rejects(weights, { opset: 16, layerNorm: 'fused' }, /opset ≥ 17/));
  test('a missing weight is named with its shape', () => {
    const w = new Map(weights);
    w.delete('features.1.1.attn.relative_position_bias_table');
    rejects(w, {}, /weight 'features\.1\.1\.attn\.relative_position_bias_table' \[49, 2\]: expected a Float32Array of 98 values, received undefined/);
  });
  test('a short weight', () => {
    const w = new Map(weights);
    w.set('features.2.reduction.weight', new Float32Array(3));
    rejects(w, {}, /weight 'features\.2\.reduction\.weight' \[64, 128\]: expected a Float32Array of 8192 values, received 3 values/);
  });
  test('a weight this config does not use (a deeper model\'s)', () => {
    const w = new Map(weights);
    w.set('features.1.2.norm1.weight', new Float32Array(32));
    w.set('features.1.0.attn.relative_position_index', new Float32Array(256)); // a buffer: ignored
    rejects(w, {}, /weights not used by this config \(check the config\): features\.1\.2\.norm1\.weight$/);
  });
});

describe('fp32 export of an imported Swin (exportSwinFp32)', () => {
  /** The fixture's weights, moved: every value × (1 + 0.01·sin(i)). */
  function moved(w: Map<string, Float32Array>): Map<string, Float32Array> {
    return new Map([...w].map(([k, v]) => [k, Float32Array.from(v, (x, i) => x * (1 + 0.01 * Math.sin(i + k.length)))]));
  }

  test.each([
    ['swin_pad_op17.onnx', 'swin_pad'],
    ['swin_rect_op14_b2.onnx', 'swin_rect'],
  ])('%s: the same config and interface with the new weights', async (file, fixture) => {
    const source = await importSwinOnnx(path.join(SWIN_FIXTURE_DIR, file));
    const fx = loadSwinFixture(fixture);
    const next = moved(source.weights);
    const bytes = exportSwinFp32Bytes(source, next);
    const back = importSwinBytes(bytes, null);
    expect(back.config).toEqual(source.config);
    // the pool is written as ReduceMean whatever the source used (GlobalAveragePool after a permute)
    const forms = (m: typeof source) => [m.opset, m.fixedBatch, m.inputName, m.outputName, m.forms.layerNorm, m.forms.gelu];
    expect(forms(back)).toEqual(forms(source));
    expect(weightDifferences(back.weights, next)).toEqual([]);
    const x = fx.tensors.get('input')?.data as Float32Array;
    const model = createSwin(source.config, next, { threads: 1 });
    const native = await model.forward(x, fx.batch);
    await model.dispose();
    expect(relError(await ortLogits(bytes, source.config, x, fx.batch), native)).toBeLessThanOrEqual(TOL);
  });

  test('writes the file; inspect describes it', async () => {
    const source = await importSwinOnnx(path.join(SWIN_FIXTURE_DIR, 'swin_pad_op17.onnx'));
    const out = path.join(os.tmpdir(), `swin-export-${process.pid}`, 'swin_pad.onnx');
    await exportSwinFp32(source, source.weights, out);
    expect(weightDifferences((await importSwinOnnx(out)).weights, source.weights)).toEqual([]);
    let text = '';
    const so = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((text += String(s)), true));
    let code: number;
    try {
      code = await main(['inspect', out]);
    } finally {
      so.mockRestore();
    }
    expect(code).toBe(0);
    expect(text).toMatch(/torchvision Swin Transformer V1, LayerNorm as LayerNormalization/);
    expect(text).toMatch(/2 blocks × dim 8, 1 heads; 2 blocks × dim 16, 2 heads; 2 blocks × dim 32, 2 heads/);
    expect(text).toMatch(/window +4×3/);
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  });
});
