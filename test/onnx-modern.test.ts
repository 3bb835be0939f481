/** @jest-environment ./test/helpers/shared-realm-environment.js */
// Exports made with a current PyTorch stack (torch 2.11, torchvision 0.26, timm 1.0.29,
// transformers 5.17: test/fixtures/onnx-modern/versions.json), by both the TorchScript and
// the dynamo exporter (scripts/fixtures/export_modern.py). Debian's torch 1.13, which made
// the other fixtures, has neither the dynamo exporter nor opsets above 17. For each export:
// onnxruntime reproduces PyTorch's logits, and import + our engine reproduce them too.

import * as fs from 'fs';
import * as path from 'path';
import { importBytes } from '../lib/onnx/import-onnx';
import { loadModel } from '../lib/onnx/load-model';
import { loadSwinOnnx } from '../lib/onnx/import-swin';
import { onnx } from '../lib/onnx/proto';
import { decodeNpy } from '../lib/image/npy';
import { LOGIT_TOLERANCE, relativeError } from './fixtures/onnx/helpers';
import * as ort from 'onnxruntime-node';

const DIR = path.join(__dirname, 'fixtures', 'onnx-modern');
const names = fs
  .readdirSync(DIR)
  .filter((f) => f.endsWith('.onnx'))
  .map((f) => f.slice(0, -5))
  .sort();
const npy = (file: string): Float32Array => decodeNpy(fs.readFileSync(path.join(DIR, file)), file).data as Float32Array;

test('the fixtures cover HuggingFace, timm and torchvision, both exporters, opsets 17-21', () => {
  expect(names.filter((n) => n.startsWith('hf_')).length).toBeGreaterThanOrEqual(2);
  expect(names.filter((n) => n.endsWith('_dynamo')).length).toBeGreaterThanOrEqual(3);
  for (const family of ['hf_vit', 'timm_vit', 'tv_vit', 'tv_swin', 'timm_swin']) expect(names.some((n) => n.startsWith(family))).toBe(true);
});

describe.each(names)('%s', (name) => {
  const file = path.join(DIR, `${name}.onnx`);
  const input = npy(`${name}.input.npy`);
  const torchLogits = npy(`${name}.logits.npy`);
  const batch = torchLogits.length / 10;

  test('onnxruntime reproduces the PyTorch logits (the export itself is faithful)', async () => {
    const session = await ort.InferenceSession.create(file);
    const out = await session.run({ input: new ort.Tensor('float32', input, [batch, 3, 32, 32]) });
    expect(relativeError(torchLogits, out.logits.data as Float32Array)).toBeLessThan(LOGIT_TOLERANCE);
  });

  test('import and the native engine reproduce the PyTorch logits', async () => {
    if (name.includes('swin')) {
      const { imported, model } = await loadSwinOnnx(file, { threads: 1 });
      expect(imported.config).toMatchObject({ patchSize: 2, embedDim: 32, depths: [2, 2], numHeads: [2, 4], windowSize: [4, 4] });
      expect(relativeError(torchLogits, await model.forward(input, batch))).toBeLessThan(LOGIT_TOLERANCE);
      await model.dispose();
    } else {
      const model = await loadModel(file, { threads: 1 });
      expect(model.config).toMatchObject({ imageHeight: 32, patchSize: 4, embedDim: 48, depth: 2, numHeads: 3, numClasses: 10 });
      expect(relativeError(torchLogits, await model.forward(input, batch))).toBeLessThan(LOGIT_TOLERANCE);
      await model.dispose();
    }
  });
});

test('an attention mask that masks something is refused, not ignored', () => {
  // transformers 5 adds Where(all-true mask, 0, −inf) to the scores: all zeros, so ignorable.
  // A causal mask in its place changes the model, and import must say it cannot do that.
  const m = onnx.ModelProto.decode(fs.readFileSync(path.join(DIR, 'hf_vit_op17.onnx')));
  const g = m.graph as onnx.GraphProto;
  const nodes = g.node as onnx.NodeProto[];
  const softmax = nodes.find((n) => n.opType === 'Softmax') as onnx.NodeProto;
  const add = nodes.find((n) => (n.output as string[])[0] === (softmax.input as string[])[0]) as onnx.NodeProto;
  expect(add.opType).toBe('Add');
  const N = 65; // 64 patches + the class token
  const mask = new Float32Array(N * N).map((_, i) => (i % N > Math.floor(i / N) ? -1e9 : 0));
  (g.initializer as onnx.TensorProto[]).push(onnx.TensorProto.create({ name: 'causal_mask', dims: [1, 1, N, N], dataType: 1, rawData: new Uint8Array(mask.buffer) }));
  (add.input as string[])[1] = 'causal_mask';
  const bytes = onnx.ModelProto.encode(m).finish();
  expect(() => importBytes(bytes, null)).toThrow(/masked attention is not supported/);
});
