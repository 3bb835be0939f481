// `spdfq-native inspect`: the recognized architecture as text and JSON, and a non-zero exit
// with the reason when a file is not a supported ViT.

import * as fs from 'fs';
import * as path from 'path';
import { main } from '../lib/cli/main';
import { onnx } from '../lib/onnx/proto';
import { fixture, tmpDir } from './fixtures/onnx/helpers';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const so = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const se = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
}

test('text report of a distilled DeiT', async () => {
  const r = await run(['inspect', fixture('deit_distilled_op13').path]);
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/family\s+timm DeiT \(distilled\): fused qkv, LayerNorm decomposed, GELU decomposed/);
  expect(r.out).toMatch(/image\s+32×32, 3 channels, patch 8 → 4×4 = 16 patches/);
  expect(r.out).toMatch(/tokens\s+18 \(class token \+ distillation token \+ 16 patches\)/);
  expect(r.out).toMatch(/dim\s+32, 2 heads × 16, MLP 64/);
  expect(r.out).toMatch(/parameters\s+[\d,]+/);
  expect(r.out).toMatch(/compute\s+[\d.]+ [kMG]FLOPs per image/);
  expect(r.out).toMatch(/opset 13/);
});

test('JSON report of a HuggingFace ViT', async () => {
  const f = fixture('hf_vit_op14');
  const r = await run(['inspect', f.path, '--json']);
  expect(r.code).toBe(0);
  const report = JSON.parse(r.out);
  expect(report.family).toBe('huggingface');
  expect(report.config).toEqual({ ...f.meta.config, layerNormEps: 1e-12 });
  expect(report.tokens).toBe(17);
  expect(report.input).toEqual({ name: 'pixel_values', dims: ['batch', 3, 'height', 'width'] });
  expect(report.parameters).toBeGreaterThan(30000);
  expect(report.flopsPerImage).toBe(2 * report.multiplyAddsPerImage);
  expect(report.sourceNames['blocks.0.attn.qkv.bias']).toHaveLength(3);
  expect(report.preprocessing.mean).toEqual([0.485, 0.456, 0.406]);
});

test('DeiT-Tiny cost matches the published 1.26 G multiply-adds', async () => {
  const { vitCost } = await import('../lib/onnx/vit-cost');
  const { completeVitConfig } = await import('../lib/vit-config');
  const cost = vitCost(completeVitConfig({ imageSize: 224, patchSize: 16, embedDim: 192, depth: 12, numHeads: 3, numClasses: 1000 }));
  expect(cost.parameters).toBe(5717416);
  expect(cost.multiplyAdds / 1e9).toBeCloseTo(1.25, 2);
});

test('an unsupported file exits 1 naming the node', async () => {
  const m = onnx.ModelProto.decode(fs.readFileSync(fixture('timm_vit_op17').path));
  const softmax = (m.graph?.node ?? []).find((n) => n.opType === 'Softmax') as onnx.NodeProto;
  softmax.opType = 'Relu';
  softmax.attribute = [];
  const file = path.join(tmpDir('inspect'), 'bad.onnx');
  fs.writeFileSync(file, onnx.ModelProto.encode(m).finish());
  const r = await run(['inspect', file]);
  expect(r.code).toBe(1);
  expect(r.out).toBe('');
  expect(r.err).toMatch(/spdfq-native: not a supported ViT graph: recognition stopped at node '\/blocks\/blocks\.0\/attn\/Softmax' \(Relu\)/);
});

test('a missing file exits 1', async () => {
  const r = await run(['inspect', '/nonexistent.onnx']);
  expect(r.code).toBe(1);
  expect(r.err).toMatch(/cannot read ONNX model/);
});
