/** @jest-environment ./test/helpers/shared-realm-environment.js */
// Stage 2 of the Swin work (docs/swin.md): torchvision Swin V1 ONNX exports imported into
// the native SwinModel. For every export in test/fixtures/swin (scripts/fixtures/
// swin_fixture.py: opsets 14 and 17, dynamic and fixed batch, padded and non-square
// grids), the recognized config must be the one the fixture was built with, the weights
// must be the fixture's bit for bit, and the native forward must match onnxruntime on the
// same file. Broken or foreign graphs must fail with E_ONNX naming what was expected.

import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { cli } from './helpers/cli';
import { SpdfqError } from '../lib/errors';
import { importSwinBytes, importSwinOnnx, loadSwinOnnx } from '../lib/onnx/import-swin';
import { onnx } from '../lib/onnx/proto';
import { importOnnx } from '../lib/onnx/import-onnx';
import { completeSwinConfig, createSwin } from '../lib/swin';
import { relError } from './helpers/compare';
import { loadSwinFixture, swinFixtureWeights, SWIN_FIXTURE_DIR } from './helpers/swin-fixtures';

// The engine fixtures' bar: max |error| / max |reference| of the logits.
const TOL = 1e-4;

interface ExportRecord { file: string; fixture: string; opset: number; dynamicBatch: boolean }
const manifest = JSON.parse(fs.readFileSync(path.join(SWIN_FIXTURE_DIR, 'onnx_exports.json'), 'utf8')) as { exports: ExportRecord[] };
const exportsList: ExportRecord[] = [{ file: 'swin_small_tv.onnx', fixture: 'swin_small', opset: 17, dynamicBatch: true }, ...manifest.exports];

function images(c: { channels: number; imageHeight: number; imageWidth: number }, batch: number, seed: number): Float32Array {
  const n = batch * c.channels * c.imageHeight * c.imageWidth;
  return Float32Array.from({ length: n }, (_, i) => Math.sin(0.37 * i + seed) * 1.3);
}

async function ortRun(file: string, x: Float32Array, dims: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const out = await session.run({ input: new ort.Tensor('float32', x, dims) });
    return out.logits.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe.each(exportsList)('$file (opset $opset, dynamic batch $dynamicBatch)', ({ file, fixture, opset, dynamicBatch }) => {
  const fx = loadSwinFixture(fixture);
  const onnxPath = path.join(SWIN_FIXTURE_DIR, file);

  test('config and weights are the fixture\'s, bit for bit', async () => {
    const m = await importSwinOnnx(onnxPath);
    expect(m.opset).toBe(opset);
    expect(m.fixedBatch).toBe(dynamicBatch ? null : fx.batch);
    expect(m.config).toEqual(completeSwinConfig(fx.config));
    const want = swinFixtureWeights(fx);
    expect([...m.weights.keys()].sort()).toEqual([...want.keys()].sort());
    const differing = [...want].filter(([k, v]) => Buffer.compare(Buffer.from(v.buffer, v.byteOffset, v.byteLength), Buffer.from((m.weights.get(k) as Float32Array).buffer, (m.weights.get(k) as Float32Array).byteOffset, v.byteLength)) !== 0);
    expect(differing.map(([k]) => k)).toEqual([]);
  });

  test.each(dynamicBatch ? [1, 2] : [fx.batch])('native forward matches onnxruntime at batch %i', async (batch) => {
    const { imported, model } = await loadSwinOnnx(onnxPath, { threads: 2 });
    const c = imported.config;
    const x = images(c, batch, batch);
    const ours = await model.forward(x, batch);
    const theirs = await ortRun(onnxPath, x, [batch, c.channels, c.imageHeight, c.imageWidth]);
    const err = relError(ours, theirs);
    console.log(`${file} batch ${batch}: max |native − onnxruntime| / max |onnxruntime| = ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(TOL);
    await model.dispose();
  });
});

describe('broken or foreign Swin graphs fail with E_ONNX naming what was expected', () => {
  const file = path.join(SWIN_FIXTURE_DIR, 'swin_small_tv.onnx');
  const bytes = fs.readFileSync(file);

  function edited(edit: (m: onnx.ModelProto) => void): Uint8Array {
    const m = onnx.ModelProto.decode(bytes);
    edit(m);
    return onnx.ModelProto.encode(m).finish();
  }

  function importError(b: Uint8Array): SpdfqError {
    try {
      importSwinBytes(b, null);
    } catch (e) {
      expect(e).toBeInstanceOf(SpdfqError);
      return e as SpdfqError;
    }
    throw new Error('import succeeded');
  }

  test('a truncated file', () => {
    const e = importError(bytes.subarray(0, Math.floor(bytes.length / 2)));
    expect(e.code).toBe('E_ONNX');
  });

  test('the shift mask altered (−100 → −50 in the first shifted block)', () => {
    const b = edited((m) => {
      const nodes = m.graph?.node as onnx.NodeProto[];
      // masked_fill(attn_mask != 0, -100.0) exports the fill value as a Constant
      const fill = nodes.find((n) => n.opType === 'Constant' && n.output[0].includes('features.1.1/attn') && n.attribute[0]?.t?.rawData?.length === 4 && new DataView(n.attribute[0].t.rawData.buffer, n.attribute[0].t.rawData.byteOffset, 4).getFloat32(0, true) === -100);
      expect(fill).toBeDefined();
      const raw = (fill as onnx.NodeProto).attribute[0].t?.rawData as Uint8Array;
      new DataView(raw.buffer, raw.byteOffset, 4).setFloat32(0, -50, true);
    });
    const e = importError(b);
    expect(e.code).toBe('E_ONNX');
    expect(e.message).toMatch(/stage 0 block 1 .*shift mask .*found -50 instead of -100/);
  });

  test('the roll removed from a shifted block (its Slice + Concat bypassed)', () => {
    const b = edited((m) => {
      const nodes = m.graph?.node as onnx.NodeProto[];
      const pad = nodes.find((n) => n.opType === 'Pad' && n.output[0].includes('features.1.1/attn')) as onnx.NodeProto;
      // the first Concat after the Pad is the roll along the height: read the Pad directly
      const concats = nodes.filter((n) => n.opType === 'Concat' && n.output[0] === '/features/features.1/features.1.1/attn/Concat_3_output_0');
      expect(concats.length).toBe(1);
      for (const n of nodes) n.input.forEach((inp, i) => { if (inp === concats[0].output[0]) n.input[i] = pad.output[0]; });
    });
    const e = importError(b);
    expect(e.code).toBe('E_ONNX');
    expect(e.message).toMatch(/stage 0 block 1.*window partition/);
  });

  test('a node removed (the Softmax of the first block)', () => {
    const b = edited((m) => {
      const nodes = m.graph?.node as onnx.NodeProto[];
      const i = nodes.findIndex((n) => n.opType === 'Softmax');
      const sm = nodes[i];
      for (const n of nodes) n.input.forEach((inp, k) => { if (inp === sm.output[0]) n.input[k] = sm.input[0]; });
      nodes.splice(i, 1);
    });
    const e = importError(b);
    expect(e.code).toBe('E_ONNX');
    expect(e.message).toMatch(/block 0.*Softmax producing the attention probabilities/);
  });

  test('a Swin V2-like graph (a logit_scale parameter)', () => {
    const b = edited((m) => {
      const init = (m.graph?.initializer as onnx.TensorProto[]).find((t) => t.name === 'features.1.0.attn.qkv.bias') as onnx.TensorProto;
      const nodes = m.graph?.node as onnx.NodeProto[];
      for (const n of nodes) n.input.forEach((inp, k) => { if (inp === init.name) n.input[k] = 'features.1.0.attn.logit_scale'; });
      init.name = 'features.1.0.attn.logit_scale';
    });
    const e = importError(b);
    expect(e.code).toBe('E_ONNX');
    expect(e.message).toMatch(/Swin Transformer V2/);
  });

  test('a ViT graph is not taken for a Swin', async () => {
    const vit = path.join(__dirname, 'fixtures', 'onnx', 'torchvision_vit_op17.onnx');
    if (!fs.existsSync(vit)) return;
    await expect(importSwinOnnx(vit)).rejects.toMatchObject({ code: 'E_ONNX' });
  });
});

test('createSwin on the fixture weights gives the imported model\'s logits exactly', async () => {
  const fx = loadSwinFixture('swin_small');
  const { model } = await loadSwinOnnx(path.join(SWIN_FIXTURE_DIR, 'swin_small_tv.onnx'), { threads: 1 });
  const direct = createSwin(fx.config, swinFixtureWeights(fx), { threads: 1 });
  const x = fx.tensors.get('input')!.data;
  expect(Array.from(await model.forward(x, fx.batch))).toEqual(Array.from(await direct.forward(x, fx.batch)));
  await model.dispose();
  await direct.dispose();
});

describe('the CLI', () => {
  const file = path.join(SWIN_FIXTURE_DIR, 'swin_pad_op17.onnx');

  test("the ViT loader refuses a Swin, saying it is a Swin and what takes it (run, compare, synth, quantize)", async () => {
    const err = await importOnnx(file).then(() => null, (e: SpdfqError) => e);
    expect(err?.code).toBe('E_ONNX');
    expect(err?.message).toMatch(/recognized as a torchvision Swin Transformer V1: 20×20×3, patch 2, embed 8, depths \[2, 2, 2\]/);
    expect(err?.message).toMatch(/`run` and `compare` take it, with block reconstruction as for a ViT/);
    expect(err?.message).toMatch(/Synthesis runs on it/);
    expect(err?.message).toMatch(/spdfq-native quantize --model <file>/);
    expect(err?.message).not.toMatch(/not a supported ViT graph/);
  });

  test('inspect describes a Swin graph', async () => {
    const r = await cli(['inspect', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/torchvision Swin Transformer V1/);
    expect(r.stdout).toMatch(/2 blocks × dim 8, 1 heads; 2 blocks × dim 16, 2 heads; 2 blocks × dim 32, 2 heads/);
    expect(r.stdout).toMatch(/window +4×3/);
    const j = await cli(['inspect', file, '--json']);
    expect(JSON.parse(j.stdout).config.depths).toEqual([2, 2, 2]);
  });
});
