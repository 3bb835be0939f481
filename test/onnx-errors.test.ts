/** @jest-environment ./test/helpers/shared-realm-environment.js */
// Bad input must fail with a clean SpdfqError that says what was expected and where:
// truncated and bit-flipped files (many offsets, fixed seed), missing or broken external
// data, a wrong input rank, graphs that are not a supported ViT, ORT-fused operators.

import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { SpdfqError } from '../lib/errors';
import { importBytes, importOnnx } from '../lib/onnx/import-onnx';
import { onnx } from '../lib/onnx/proto';
import { fixture, seededValues, tmpDir } from './fixtures/onnx/helpers';

/** Runs `fn` and returns its SpdfqError; fails the test on success or on another error. */
async function spdfqError(fn: () => unknown): Promise<SpdfqError> {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof SpdfqError)) throw new Error(`expected a SpdfqError, got ${String((err as Error)?.stack ?? err)}`);
    return err;
  }
  throw new Error('expected a SpdfqError, but the call succeeded');
}

function edit(name: string, change: (m: onnx.ModelProto) => void): Uint8Array {
  const m = onnx.ModelProto.decode(fs.readFileSync(fixture(name).path));
  change(m);
  return onnx.ModelProto.encode(m).finish();
}

function nodeBy(m: onnx.ModelProto, pred: (n: onnx.INodeProto) => boolean): onnx.INodeProto {
  const n = (m.graph?.node ?? []).find(pred);
  if (!n) throw new Error('node not found');
  return n;
}

describe('corrupt files', () => {
  const original = fs.readFileSync(fixture('timm_vit_op13_gather').path);

  test('every truncation is a clean E_ONNX error', async () => {
    const offsets = new Set<number>([0, 1, 2, 3, 8, 16, 64, original.length - 1, original.length - 2, original.length - 17]);
    const random = seededValues(200, 99, 0.5);
    for (const r of random) offsets.add(Math.floor((r + 0.5) * original.length));
    const started = Date.now();
    for (const n of offsets) {
      const e = await spdfqError(() => importBytes(original.subarray(0, n), null));
      expect(e.code).toBe('E_ONNX');
      expect(e.message).not.toMatch(/internal error/);
    }
    expect(Date.now() - started).toBeLessThan(30000);
  });

  test('bit flips either import or fail cleanly — never crash or hang', async () => {
    // A flip inside a weight's bytes yields a different but valid model (ONNX has no
    // checksum); a flip in the structure must be caught with a clean message.
    const random = seededValues(2 * 600, 2024, 0.5);
    let failures = 0;
    const started = Date.now();
    for (let i = 0; i < 600; i++) {
      const bytes = Uint8Array.from(original);
      const at = Math.floor((random[2 * i] + 0.5) * bytes.length);
      bytes[at] ^= 1 << Math.floor((random[2 * i + 1] + 0.5) * 8);
      try {
        const m = importBytes(bytes, null);
        expect(m.weights.size).toBeGreaterThan(0);
      } catch (err) {
        if (!(err instanceof SpdfqError)) throw new Error(`flip at ${at}: ${String((err as Error).stack)}`);
        expect(err.code).toBe('E_ONNX');
        expect(err.message).not.toMatch(/internal error/);
        failures++;
      }
    }
    expect(failures).toBeGreaterThan(10);
    expect(Date.now() - started).toBeLessThan(60000);
  });

  test('bit flips confined to the graph structure are all caught or harmless', async () => {
    // flips in the first 2 KiB (header, first nodes) hit names, op types and attributes
    const random = seededValues(400, 7, 0.5);
    for (let i = 0; i < 200; i++) {
      const bytes = Uint8Array.from(original);
      const at = Math.floor((random[2 * i] + 0.5) * 2048);
      bytes[at] ^= 1 << Math.floor((random[2 * i + 1] + 0.5) * 8);
      try {
        importBytes(bytes, null);
      } catch (err) {
        if (!(err instanceof SpdfqError)) throw new Error(`flip at ${at}: ${String((err as Error).stack)}`);
        expect(err.message).not.toMatch(/internal error/);
      }
    }
  });

  test('garbage, empty and missing files', async () => {
    expect((await spdfqError(() => importBytes(new Uint8Array(0), null))).message).toMatch(/empty/);
    expect((await spdfqError(() => importBytes(Uint8Array.from(seededValues(4096, 5).map((v) => (v + 1) * 127)), null))).code).toBe('E_ONNX');
    const e = await spdfqError(() => importOnnx('/nonexistent/model.onnx'));
    expect(e.code).toBe('E_IO');
    expect(e.message).toMatch(/ENOENT/);
  });
});

describe('external data', () => {
  const ext = fixture('external/model');

  test('a missing data file names the file and the tensor', async () => {
    const dir = tmpDir('ext-missing');
    fs.copyFileSync(ext.path, path.join(dir, 'model.onnx'));
    const e = await spdfqError(() => importOnnx(path.join(dir, 'model.onnx')));
    expect(e.code).toBe('E_ONNX');
    expect(e.message).toMatch(/external data file 'model\.onnx\.data'/);
    expect(e.message).toMatch(/initializer '/);
  });

  test('a truncated data file', async () => {
    const dir = tmpDir('ext-short');
    fs.copyFileSync(ext.path, path.join(dir, 'model.onnx'));
    const data = fs.readFileSync(path.join(path.dirname(ext.path), 'model.onnx.data'));
    fs.writeFileSync(path.join(dir, 'model.onnx.data'), data.subarray(0, data.length - 100));
    const e = await spdfqError(() => importOnnx(path.join(dir, 'model.onnx')));
    expect(e.message).toMatch(/too short|truncated/);
  });

  test('from a buffer, external data cannot be found: say so', async () => {
    const e = await spdfqError(() => importBytes(fs.readFileSync(ext.path), null));
    expect(e.message).toMatch(/load the model from a file path/);
  });

  test('locations outside the model folder are refused', async () => {
    const dir = tmpDir('ext-escape');
    const m = onnx.ModelProto.decode(fs.readFileSync(ext.path));
    for (const t of m.graph?.initializer ?? []) for (const e of t.externalData ?? []) if (e.key === 'location') e.value = '../../etc/passwd';
    fs.writeFileSync(path.join(dir, 'model.onnx'), onnx.ModelProto.encode(m).finish());
    const e = await spdfqError(() => importOnnx(path.join(dir, 'model.onnx')));
    expect(e.message).toMatch(/outside the model's folder/);
  });
});

describe('wrong inputs', () => {
  test('an input of rank 3 is named, with the expected layout', async () => {
    const bytes = edit('timm_vit_op17', (m) => {
      const dims = m.graph?.input?.[0].type?.tensorType?.shape?.dim as onnx.TensorShapeProto.IDimension[];
      dims.splice(1, 1);
    });
    const e = await spdfqError(() => importBytes(bytes, null));
    expect(e.code).toBe('E_ONNX');
    expect(e.message).toMatch(/input 'input' has rank 3 \[batch, 32, 32\]; expected an image batch of rank 4/);
  });

  test('a float16 input', async () => {
    const bytes = edit('timm_vit_op17', (m) => {
      (m.graph?.input?.[0].type?.tensorType as onnx.TypeProto.ITensor).elemType = 10;
    });
    expect((await spdfqError(() => importBytes(bytes, null))).message).toMatch(/float16; expected float32 images/);
  });

  test('two inputs', async () => {
    const bytes = edit('timm_vit_op17', (m) => {
      m.graph?.input?.push(onnx.ValueInfoProto.create({ name: 'mask', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } }));
    });
    expect((await spdfqError(() => importBytes(bytes, null))).message).toMatch(/expected one image input, found 2: 'input', 'mask'/);
  });

  test('a graph traced with a fixed batch in a Reshape is caught at import', async () => {
    const bytes = edit('timm_vit_op13_gather', (m) => {
      // replace the dynamic target of the first attention Reshape by a constant with batch 1
      const reshape = nodeBy(m, (n) => n.opType === 'Reshape' && (n.name ?? '').includes('blocks.0/attn'));
      m.graph?.initializer?.push(onnx.TensorProto.create({ name: 'fixed_shape', dims: [5], dataType: 7, int64Data: [1, 17, 3, 2, 16] }));
      (reshape.input as string[])[1] = 'fixed_shape';
    });
    const e = await spdfqError(() => importBytes(bytes, null));
    expect(e.message).toMatch(/cannot reshape \[2, 17, 96\] to \[1, 17, 3, 2, 16\].*fixed batch/);
  });
});

describe('unsupported graphs name the node where recognition stopped', () => {
  test('Sigmoid instead of Softmax in block 1', async () => {
    const bytes = edit('timm_vit_op17', (m) => {
      const n = nodeBy(m, (x) => x.opType === 'Softmax' && (x.name ?? '').includes('blocks.1'));
      n.opType = 'Sigmoid';
      n.name = '/blocks/blocks.1/attn/Sigmoid';
      n.attribute = [];
    });
    const e = await spdfqError(() => importBytes(bytes, null));
    expect(e.message).toMatch(/recognition stopped at node '\/blocks\/blocks\.1\/attn\/Sigmoid' \(Sigmoid\) while matching the attention of block 1: expected Softmax/);
    expect(e.message).toMatch(/Supported: timm ViT\/DeiT/);
  });

  test('an activation the engine does not run', async () => {
    const bytes = edit('timm_vit_op17', (m) => {
      nodeBy(m, (x) => x.opType === 'Erf').opType = 'Tanh';
    });
    const e = await spdfqError(() => importBytes(bytes, null));
    expect(e.message).toMatch(/while matching the MLP activation: expected one of gelu, gelu-tanh, quick-gelu, relu, silu; the subgraph computes/);
    expect(e.message).toMatch(/node '\/blocks\/blocks\.0\/mlp\/act\/Mul_1'/);
  });

  test('a non-standard attention scale', async () => {
    const bytes = edit('timm_vit_op14_split', (m) => {
      // timm scale on q: Mul(q, Constant(0.25)) for head dim 8 → 0.5
      const mul = nodeBy(m, (x) => x.opType === 'Mul' && (x.name ?? '').includes('blocks.0/attn'));
      const c = nodeBy(m, (x) => x.opType === 'Constant' && mul.input?.includes(x.output?.[0] as string) === true);
      (c.attribute?.[0].t as onnx.ITensorProto).rawData = new Uint8Array(new Float32Array([0.5]).buffer);
    });
    const e = await spdfqError(() => importBytes(bytes, null));
    expect(e.message).toMatch(/attention scale 1\/√8 = 0\.353553 \(found 0\.500000/);
  });

  test('a patch Conv that no longer fits the position embedding', async () => {
    const bytes = edit('timm_vit_op17', (m) => {
      const conv = nodeBy(m, (x) => x.opType === 'Conv');
      for (const a of conv.attribute ?? []) if (a.name === 'strides') a.ints = [4, 4];
    });
    const e = await spdfqError(() => importBytes(bytes, null));
    expect(e.message).toMatch(/the graph cannot run on input 'input' \[2, 3, 32, 32\].*node '\/Add' \(Add\): Add: shapes \[2, 50, 32\] and \[1, 17, 32\] do not broadcast/);
  });

  test('a patch Conv with padding', async () => {
    const bytes = edit('timm_vit_op17', (m) => {
      const conv = nodeBy(m, (x) => x.opType === 'Conv');
      for (const a of conv.attribute ?? []) if (a.name === 'pads') a.ints = [0, 0, 1, 1];
      for (const a of conv.attribute ?? []) if (a.name === 'strides') a.ints = [8, 8];
    });
    const e = await spdfqError(() => importBytes(bytes, null));
    expect(e.message).toMatch(/node '\/patch_embed\/proj\/Conv' \(Conv\) while matching the patch embedding: expected a square, non-overlapping patch Conv/);
  });

  test('a head that reads a patch token', async () => {
    const bytes = edit('timm_vit_op17', (m) => {
      const gather = nodeBy(m, (x) => x.opType === 'Gather' && (x.attribute ?? []).some((a) => a.name === 'axis' && Number(a.i) === 1));
      m.graph?.initializer?.push(onnx.TensorProto.create({ name: 'token5', dims: [], dataType: 7, int64Data: [5] }));
      (gather.input as string[])[1] = 'token5';
    });
    expect((await spdfqError(() => importBytes(bytes, null))).message).toMatch(/classifier head.*found token 5/);
  });

  test('ONNX Runtime-optimized files (com.microsoft fused ops) are rejected by name', async () => {
    const out = path.join(tmpDir('ort-opt'), 'optimized.onnx');
    await ort.InferenceSession.create(fixture('timm_vit_op17').path, { graphOptimizationLevel: 'extended', optimizedModelFilePath: out, intraOpNumThreads: 1 });
    const e = await spdfqError(() => importOnnx(out));
    expect(e.message).toMatch(/com\.microsoft\.BiasGelu ×2/);
    expect(e.message).toMatch(/ONNX Runtime-optimized model/);
  });

  test('SkipLayerNormalization and FastGelu (transformers optimizer forms) are rejected by name', async () => {
    const bytes = edit('timm_vit_op17', (m) => {
      const ln = nodeBy(m, (x) => x.opType === 'LayerNormalization' && (x.name ?? '').includes('blocks.1'));
      ln.opType = 'SkipLayerNormalization';
      ln.domain = 'com.microsoft';
      const erf = nodeBy(m, (x) => x.opType === 'Erf');
      erf.opType = 'FastGelu';
      erf.domain = 'com.microsoft';
      m.opsetImport.push(onnx.OperatorSetIdProto.create({ domain: 'com.microsoft', version: 1 }));
    });
    const e = await spdfqError(() => importBytes(bytes, null));
    expect(e.message).toMatch(/com\.microsoft\.SkipLayerNormalization ×1/);
    expect(e.message).toMatch(/com\.microsoft\.FastGelu ×1/);
  });

  test('the fused ONNX Attention op (opset 23) gets its own message', async () => {
    const bytes = edit('timm_vit_op17', (m) => {
      nodeBy(m, (x) => x.opType === 'Softmax').opType = 'Attention';
    });
    expect((await spdfqError(() => importBytes(bytes, null))).message).toMatch(/fused ONNX Attention op \(opset 23\) is not supported yet; export at opset ≤ 22/);
  });

  test('a graph with no transformer block', async () => {
    const bytes = edit('timm_vit_op17', (m) => {
      // feed the head directly from the embedded tokens
      const firstLn = nodeBy(m, (x) => x.opType === 'LayerNormalization');
      const finalLn = nodeBy(m, (x) => (x.name ?? '').startsWith('/norm/'));
      (finalLn.input as string[])[0] = (firstLn.input as string[])[0];
    });
    const e = await spdfqError(() => importBytes(bytes, null));
    expect(e.message).toMatch(/not a supported ViT graph/);
  });
});
